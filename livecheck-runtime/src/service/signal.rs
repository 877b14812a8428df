//! Typed signals: what services [`send`](Signal::send) and cases [`wait`](Signal::wait) for.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::service::client::Client;
use crate::service::context::{current_execution, current_test};
use crate::service::execution::Execution;
use crate::service::store::Lookup;
use crate::transport::Queued;
use crate::wire::duration::{DurationError, IntoDuration};
use crate::wire::error::{SendError, WaitError};
use crate::wire::model::SignalEvent;

/// A typed signal bound to a case; declare with [`signal!`](crate::signal!).
pub struct Signal<T> {
    name: &'static str,
    case: &'static str,
    _value: PhantomData<fn() -> T>,
}

impl<T> Signal<T> {
    /// A signal named `name` of the case named `case` (what `signal!` expands to).
    pub const fn new(name: &'static str, case: &'static str) -> Self {
        Signal {
            name,
            case,
            _value: PhantomData,
        }
    }

    /// The signal's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The name of the case it belongs to.
    pub fn case_name(&self) -> &'static str {
        self.case
    }
}

impl<T> fmt::Debug for Signal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("name", &self.name)
            .field("case", &self.case)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> Signal<T> {
    /// Sends the signal for the current test of its case: `.await` it.
    ///
    /// The signal is queued for the broker and the call returns at once: a service is never
    /// slowed by livecheck, even with Kafka down (a signal that does not fit in the queue is
    /// dropped, counted in [`Client::counters`] and logged at most once a minute). To wait until
    /// the broker has it, await [`delivered`](Sending::delivered) instead.
    ///
    /// Outside a test this does nothing (the service is not handling a test request), as in
    /// Faust. Inside a test of another case it does nothing either, where Faust sends it keyed
    /// by that test's id (signals.py:119-125; docs/guide.md, "Differences from Faust"). Use
    /// [`send_to`](Self::send_to) to force a key.
    ///
    /// ```no_run
    /// # livecheck::signal! { pub ORDER_SENT_TO_DB: u64 for test_order; }
    /// # #[livecheck::case] async fn test_order() {}
    /// # async fn place(order: u64) -> Result<(), livecheck::SendError> {
    /// ORDER_SENT_TO_DB.send(&order).await?; // queued: never waits on Kafka
    /// ORDER_SENT_TO_DB.send(&order).delivered().await?; // waits for the broker's acknowledgement
    /// # Ok(()) }
    /// ```
    pub fn send<'a>(&'a self, value: &'a T) -> Sending<'a, T> {
        Sending {
            signal: self,
            key: None,
            value,
            sent: false,
        }
    }

    /// Sends the signal for the test `key`, whatever the current test (Faust's `force=True`);
    /// queued as [`send`](Self::send) is.
    pub fn send_to<'a>(&'a self, key: &'a str, value: &'a T) -> Sending<'a, T> {
        Sending {
            signal: self,
            key: Some(key),
            value,
            sent: false,
        }
    }

    /// Builds the event to send: `None` when there is nothing to send (no current test of
    /// this case and no explicit key).
    fn event(&self, key: Option<&str>, value: &T) -> Result<Option<SignalEvent>, SendError> {
        let key = match key {
            Some(key) => key.to_owned(),
            None => match current_test() {
                Some(test) if test.case_name == self.case => test.id.clone(),
                Some(test) => {
                    tracing::debug!(signal = self.name, case = self.case, other = %crate::text::Escaped(&test.case_name),
                        "signal of another case's test: not sent");
                    return Ok(None);
                }
                None => return Ok(None),
            },
        };
        let value = serde_json::to_value(value).map_err(|cause| SendError::Encode {
            signal: self.name.to_owned(),
            cause,
        })?;
        Ok(Some(SignalEvent {
            signal_name: self.name.to_owned(),
            case_name: self.case.to_owned(),
            key,
            value,
        }))
    }

    /// Waits for the signal of the current test. Chain [`timeout`](Wait::timeout),
    /// [`deadline`](Wait::deadline) or [`key`](Wait::key), then `.await`.
    ///
    /// Without a timeout the wait lasts until the test expires. The timeout is a deadline for the
    /// whole wait: other signals arriving meanwhile do not shorten or lengthen it (Faust's wait
    /// subtracted elapsed time on every wake-up and gave up early).
    ///
    /// A timed-out wait's error, and the report, say where it was called.
    #[track_caller]
    pub fn wait(&self) -> Wait<'_, T> {
        Wait {
            signal: self,
            key: None,
            timeout: None,
            deadline: None,
            location: Location::caller(),
        }
    }
}

/// A pending [`Signal::send`] or [`Signal::send_to`].
///
/// `.await` it to queue the signal without waiting on the broker (`Ok` even when the signal was
/// dropped for lack of room: that is counted and logged, and the service goes on); or await
/// [`delivered`](Self::delivered) to wait for the broker's acknowledgement and learn of any
/// failure.
#[must_use = "a signal is sent only when awaited"]
pub struct Sending<'a, T> {
    signal: &'a Signal<T>,
    key: Option<&'a str>,
    value: &'a T,
    sent: bool,
}

impl<T: Serialize + DeserializeOwned> Sending<'_, T> {
    /// Queues the signal; the transport's acknowledgement to come, if anything was queued.
    fn queue(&self) -> Result<Option<Queued>, SendError> {
        let Some(event) = self.signal.event(self.key, self.value)? else {
            return Ok(None);
        };
        let client = Client::current().ok_or(SendError::NoClient)?;
        let within = crate::service::context::current_test();
        Ok(client
            .transport()
            .publish_signal(&event, within.as_deref())
            .ok())
    }

    /// Sends the signal and waits until the broker has it.
    ///
    /// # Errors
    /// As `.await`, and [`SendError::Transport`] when the signal could not be queued or
    /// delivered (e.g. the broker stayed down longer than librdkafka's `message.timeout.ms`).
    pub async fn delivered(self) -> Result<(), SendError> {
        let Some(event) = self.signal.event(self.key, self.value)? else {
            return Ok(());
        };
        let client = Client::current().ok_or(SendError::NoClient)?;
        let within = crate::service::context::current_test();
        let queued = client
            .transport()
            .publish_signal(&event, within.as_deref())?;
        queued.await?;
        Ok(())
    }
}

impl<T: Serialize + DeserializeOwned> Future for Sending<'_, T> {
    type Output = Result<(), SendError>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Queued once, on the first poll (the current test and client are read there, in the
        // caller's task); nothing to wait for after that.
        if std::mem::replace(&mut self.sent, true) {
            return Poll::Ready(Ok(()));
        }
        // A queued signal's delivery is not awaited: fire-and-forget.
        Poll::Ready(self.queue().map(drop))
    }
}

impl<T> fmt::Debug for Sending<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sending")
            .field("signal", &self.signal.name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A pending [`Signal::wait`]; `.await` it.
#[must_use = "a wait does nothing unless awaited"]
pub struct Wait<'a, T> {
    signal: &'a Signal<T>,
    key: Option<String>,
    timeout: Option<Result<Duration, DurationError>>,
    deadline: Option<Instant>,
    location: &'static Location<'static>,
}

impl<T> fmt::Debug for Wait<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("signal", &self.signal.name)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<T> Wait<'_, T> {
    /// Gives up after this long: a [`Duration`], `"30s"`, or seconds.
    pub fn timeout(mut self, timeout: impl IntoDuration) -> Self {
        self.timeout = Some(timeout.into_duration());
        self
    }

    /// Gives up at this instant.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Waits for the signal of another test id.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl<'a, T: DeserializeOwned + Send + 'a> IntoFuture for Wait<'a, T> {
    type Output = Result<T, WaitError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        // Memory: a waiting test holds this future for as long as it waits, so the lookup is
        // done here and only a pending wait gets a future, holding what it needs. As one
        // `async` block it also kept the `Wait` and the key beside the timer: 304 bytes a
        // waiting test instead of ~200 (docs/benchmarks.md).
        let name = self.signal.name;
        let Some(execution) = current_execution() else {
            return Box::pin(std::future::ready(Err(WaitError::NoTest(name.to_owned()))));
        };
        let started = Instant::now();
        let timeout = match self.timeout.transpose() {
            Ok(timeout) => timeout,
            Err(error) => return Box::pin(std::future::ready(Err(error.into()))),
        };
        let deadline = match (timeout, self.deadline) {
            (Some(timeout), Some(deadline)) => deadline.min(started + timeout),
            (Some(timeout), None) => started + timeout,
            (None, Some(deadline)) => deadline,
            (None, None) => started + execution.time_to_expiry(),
        };
        execution.log(format_args!("waiting for signal {name}"));
        if timeout.is_some() || self.deadline.is_some() {
            // A wait with no timeout ends at the test's expiry: `max_runtime` bounds it by
            // design, nothing to warn about.
            execution.check_wait_deadline(name, deadline, self.location);
        }
        // Keyed by the signal's case, as Faust's index (signals.py:83-84).
        let case = self.signal.case;
        let lookup = execution.store.wait(
            case,
            self.key.as_deref().unwrap_or(&execution.test.id),
            name,
        );
        match lookup {
            Lookup::Ready(value) => Box::pin(std::future::ready(received(
                &execution, name, started, value,
            ))),
            Lookup::Pending(rx) => {
                execution.set_waiting(Some((name, self.location)));
                let guard = WaitGuard {
                    execution,
                    case,
                    name,
                    key: self.key,
                    armed: true,
                };
                let location = self.location;
                Box::pin(tokio::time::timeout_at(deadline, rx).map(move |outcome| {
                    let mut guard = guard;
                    match outcome {
                        Ok(Ok(value)) => {
                            guard.armed = false;
                            received(&guard.execution, name, started, value)
                        }
                        Ok(Err(_)) => {
                            guard.armed = false;
                            Err(WaitError::Closed(name.to_owned()))
                        }
                        // The guard, dropped here, forgets the waiter.
                        Err(_) => Err(WaitError::Timeout {
                            signal: name.to_owned(),
                            waited: started.elapsed(),
                            location,
                        }),
                    }
                }))
            }
        }
    }
}

/// Cleans up after a pending wait that ends without its signal: timed out, or dropped (by a
/// `select!`, a case's `max_runtime`, a shutdown), so no waiter is left in the store.
struct WaitGuard {
    execution: Arc<Execution>,
    case: &'static str,
    name: &'static str,
    key: Option<String>,
    armed: bool,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        // A wait dropped by the test's `max_runtime` leaves its note for the report (the
        // case's future is dropped before the report is made).
        if !self.armed || !self.execution.is_past_max_runtime() {
            self.execution.set_waiting(None);
        }
        if self.armed {
            let key = self.key.as_deref().unwrap_or(&self.execution.test.id);
            self.execution
                .store
                .forget_waiter(self.case, key, self.name);
        }
    }
}

/// A waited-for signal arrived: its latency is recorded and its value decoded.
fn received<T: DeserializeOwned>(
    execution: &Execution,
    name: &'static str,
    started: Instant,
    value: serde_json::Value,
) -> Result<T, WaitError> {
    execution.record_signal(name, started.elapsed());
    serde_json::from_value(value).map_err(|cause| WaitError::Decode {
        signal: name.to_owned(),
        cause,
    })
}
