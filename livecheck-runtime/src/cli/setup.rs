//! The binary's set-up hook ([`super::main_with`]): what it gets ([`Started`]), how it holds
//! `run --once` until its services are up or fails the start ([`SetupReady`]), and how it is
//! spawned.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::service::client::Client;
use crate::transport::embedded::EmbeddedCluster;
use crate::transport::kafka::KafkaConfig;

/// What a binary's set-up hook gets once the worker's transport is up (see
/// [`main_with`](super::main_with)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Started {
    /// The bootstrap servers in use (the embedded broker's, if it was started).
    pub brokers: String,
    /// The embedded broker, if it was started (e.g. to create the topics a demo's services use).
    pub embedded: Option<Arc<EmbeddedCluster>>,
    /// The Kafka settings in use.
    pub kafka: KafkaConfig,
    /// The worker's client (also installed for the process).
    pub client: Client,
    /// Where the status page listens, unless `--no-web` (or `run --once`).
    pub status: Option<SocketAddr>,
    /// Hold the start of `run --once` until services are up, or fail the start (see
    /// [`SetupReady`]).
    pub ready: SetupReady,
}

/// How a set-up hook holds `run --once` until it is ready ([`SetupReady::defer`]), or fails
/// the start ([`SetupReady::fail`]: livecheck stops with the message and exit code 1).
///
/// The set-up counts as done once the hook's future has been polled once with no
/// [`SetupGuard`] held: a hook that does not defer is done at once. A hook that starts
/// services takes a guard before its first `.await`, and drops it (or calls
/// [`SetupGuard::done`]) once they listen:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     livecheck::main_with(|started| async move {
///         let ready = started.ready.defer();
///         let listener = match tokio::net::TcpListener::bind("127.0.0.1:8080").await {
///             Ok(listener) => listener,
///             Err(error) => return ready.fail(format!("cannot listen on 127.0.0.1:8080: {error}")),
///         };
///         ready.done();
///         // serve on `listener`...
/// #       drop(listener);
///     })
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SetupReady(Arc<tokio::sync::watch::Sender<SetupState>>);

/// Where a set-up stands.
#[derive(Debug, Default)]
pub(crate) struct SetupState {
    polled: bool,
    guards: usize,
    failure: Option<String>,
}

/// Holds the set-up as not done while it lives (see [`SetupReady::defer`]).
#[derive(Debug)]
#[must_use = "the set-up is done when the guard is dropped"]
pub struct SetupGuard(Option<SetupReady>);

impl SetupReady {
    pub(crate) fn new() -> (SetupReady, SetupWatch) {
        let (tx, rx) = tokio::sync::watch::channel(SetupState::default());
        (SetupReady(Arc::new(tx)), SetupWatch(rx))
    }

    /// The set-up is not done until the guard is dropped (or [`SetupGuard::done`]); take it
    /// before the hook's first `.await`.
    pub fn defer(&self) -> SetupGuard {
        self.0.send_modify(|state| state.guards += 1);
        SetupGuard(Some(self.clone()))
    }

    /// The set-up failed: livecheck stops, printing `message`, with exit code 1.
    pub fn fail(&self, message: impl fmt::Display) {
        let message = message.to_string();
        self.0.send_modify(|state| {
            state.failure.get_or_insert(message);
        });
    }

    fn polled(&self) {
        self.0.send_modify(|state| state.polled = true);
    }
}

impl SetupGuard {
    /// The set-up is done (as dropping the guard says).
    pub fn done(self) {}

    /// The set-up failed ([`SetupReady::fail`]).
    pub fn fail(mut self, message: impl fmt::Display) {
        if let Some(ready) = self.0.take() {
            ready.fail(message);
            ready.0.send_modify(|state| state.guards -= 1);
        }
    }
}

impl Drop for SetupGuard {
    fn drop(&mut self) {
        if let Some(ready) = self.0.take() {
            ready.0.send_modify(|state| state.guards -= 1);
        }
    }
}

/// The other end of [`SetupReady`].
pub(crate) struct SetupWatch(tokio::sync::watch::Receiver<SetupState>);

impl SetupWatch {
    /// Done (Ok) or failed (Err).
    pub(crate) async fn outcome(&mut self) -> Result<(), String> {
        let state = self
            .0
            .wait_for(|s| s.failure.is_some() || (s.polled && s.guards == 0))
            .await;
        match state {
            Ok(state) => state.failure.clone().map_or(Ok(()), Err),
            Err(_) => Ok(()),
        }
    }

    /// Completes only if the set-up fails, with its message.
    pub(super) async fn failure(mut self) -> String {
        match self.0.wait_for(|s| s.failure.is_some()).await {
            Ok(state) => state.failure.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }
}

/// Spawns the set-up hook; its first poll is noted (a hook that took no guard by then is done).
pub(crate) fn spawn_setup<F, Fut>(setup: F, started: Started) -> tokio::task::JoinHandle<()>
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ready = started.ready.clone();
    let mut hook = Box::pin(setup(started));
    let mut first = Some(ready);
    tokio::spawn(std::future::poll_fn(move |cx| {
        let poll = hook.as_mut().poll(cx);
        if let Some(ready) = first.take() {
            ready.polled();
        }
        poll
    }))
}
