//! [`Worker::spawn`]: a worker running in a task of its own, stopped gracefully by
//! [`SpawnedWorker::stop`] — what tests, benches and embedding services otherwise write by hand
//! with a oneshot channel as [`Worker::run`]'s shutdown future.

use std::fmt;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::service::client::Client;
use crate::wire::error::StartError;

use super::{Worker, WorkerHandle};

impl Worker {
    /// Starts the worker in a task of its own on the current tokio runtime, and returns at once:
    /// [`SpawnedWorker::stop`] stops it as [`run`](Self::run)'s shutdown future would, and
    /// returns what `run` returned.
    ///
    /// ```
    /// # mod demo {
    /// #[livecheck::case]
    /// async fn always_passes() -> livecheck::Result {
    ///     Ok(())
    /// }
    ///
    /// # pub async fn main() -> Result<(), livecheck::StartError> {
    /// use livecheck::{Case, CaseConfig, MemoryTransport, Worker};
    ///
    /// let worker = Worker::builder(MemoryTransport::new())
    ///     .cases([CaseConfig::from(always_passes.descriptor())])
    ///     .build()?;
    /// let running = worker.spawn();
    /// running.client().scope(always_passes.trigger("t1")).await.unwrap();
    /// while running.handle().stats().tests_received == 0 {
    ///     tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    /// }
    /// running.stop().await // stops taking tests, lets running ones finish, closes
    /// # }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() { demo::main().await.unwrap() }
    /// ```
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(self) -> SpawnedWorker {
        let handle = self.handle();
        let client = self.client();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async {
            // A sent stop, or a dropped `SpawnedWorker`.
            let _ = stopped.await;
        }));
        SpawnedWorker {
            handle,
            client,
            stop: Some(stop),
            task,
        }
    }
}

/// A worker running in a task of its own ([`Worker::spawn`]).
///
/// [`stop`](Self::stop) stops it gracefully and returns [`Worker::run`]'s result. Dropping it
/// also asks the worker to stop (gracefully, in the background, its result unseen); to stop at
/// once, without the grace period, [`abort`](Self::abort) it.
#[must_use = "dropping a SpawnedWorker stops the worker"]
pub struct SpawnedWorker {
    handle: WorkerHandle,
    client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StartError>>,
}

impl fmt::Debug for SpawnedWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnedWorker")
            .field("handle", &self.handle)
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl SpawnedWorker {
    /// A view of the worker (health, counters, readiness), valid after it stopped too.
    pub fn handle(&self) -> &WorkerHandle {
        &self.handle
    }

    /// The client publishing through the worker's transport.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the worker's task has ended: stopped, or failed to start (its error is what
    /// [`stop`](Self::stop) returns).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the worker gracefully — no new test taken, fake requests stopped, running tests
    /// given [`WorkerSettings::shutdown_grace`](super::WorkerSettings::shutdown_grace), the
    /// transport closed — and returns what [`Worker::run`] returned.
    ///
    /// # Panics
    /// If the worker's task panicked (the panic goes on here), or was cancelled by its runtime
    /// shutting down.
    pub async fn stop(mut self) -> Result<(), StartError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        join(&mut self.task).await
    }

    /// Stops the worker at once, as a crash would: running tests are dropped unreported and
    /// unacknowledged (the group runs them again), the transport is not closed.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// The worker's result, its task's panic resumed.
async fn join(task: &mut JoinHandle<Result<(), StartError>>) -> Result<(), StartError> {
    match task.await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("the worker's task did not finish: {error}"),
    }
}
