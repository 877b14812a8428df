//! What a service's publish returns: [`Queued`], the broker's acknowledgement to come, and the
//! counting of what could not be queued or delivered.
//!
//! Services trigger tests and send signals on their request path, so those publishes never wait
//! on the broker (with Kafka down, a service's first `maybe_trigger().await` once blocked
//! 300 s). A transport queues the message and returns at once; when it cannot (queue
//! full, broker gone, transport closed) the message is dropped, counted and logged — at most
//! once a minute, so an outage does not flood the service's log. Whoever wants to know that a
//! message reached the broker awaits its [`Queued`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::TransportError;

/// A message accepted by a transport: queued for the broker (or already there).
///
/// Dropping it is fire-and-forget: the message is still delivered. Awaiting it waits for the
/// broker's acknowledgement, and returns the error if the message could not be delivered (e.g.
/// the broker stayed away longer than librdkafka's `message.timeout.ms`).
#[must_use = "await it to wait for delivery, or drop it explicitly (`let _ = ...`) not to"]
pub struct Queued {
    state: State,
}

enum State {
    Done(Option<Result<(), TransportError>>),
    Pending(oneshot::Receiver<Result<(), TransportError>>),
}

impl Queued {
    /// A message already delivered (in-process transports).
    pub fn delivered() -> Self {
        Queued {
            state: State::Done(Some(Ok(()))),
        }
    }

    /// A message whose delivery is to be told through the returned [`Acknowledger`].
    pub fn pending() -> (Acknowledger, Self) {
        let (tx, rx) = oneshot::channel();
        (
            Acknowledger(tx),
            Queued {
                state: State::Pending(rx),
            },
        )
    }
}

impl Future for Queued {
    type Output = Result<(), TransportError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Done(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            State::Pending(rx) => Pin::new(rx)
                .poll(cx)
                // The transport went away without telling: the message's fate is unknown.
                .map(|told| told.unwrap_or(Err(TransportError::Closed))),
        }
    }
}

impl fmt::Debug for Queued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Done(_) => "delivered",
            State::Pending(_) => "pending",
        };
        f.debug_tuple("Queued").field(&state).finish()
    }
}

/// Tells a [`Queued`] how its delivery went (what a transport's delivery callback holds).
pub struct Acknowledger(oneshot::Sender<Result<(), TransportError>>);

impl Acknowledger {
    /// Reports the delivery's outcome; nobody listening is fine (fire-and-forget).
    pub fn acknowledge(self, outcome: Result<(), TransportError>) {
        let _ = self.0.send(outcome);
    }
}

impl fmt::Debug for Acknowledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Acknowledger")
    }
}

/// How often a run of drops is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Counts messages a transport dropped, logging the first one and then at most one line a
/// minute (with the count since the last line).
#[derive(Debug, Default)]
pub(crate) struct DropCounter {
    total: AtomicU64,
    /// Milliseconds since [`epoch`] before which nothing more is logged (0: log the next one).
    quiet_until_ms: AtomicU64,
    /// The total at the last line logged.
    logged: AtomicU64,
}

impl DropCounter {
    /// Messages dropped so far.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts one dropped message; `message` says what happened, `error` why.
    pub(crate) fn count(&self, message: &'static str, topic: &str, error: &dyn fmt::Display) {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        let now = epoch().elapsed().as_millis() as u64;
        let quiet_until = self.quiet_until_ms.load(Ordering::Relaxed);
        let next = now + LOG_EVERY.as_millis() as u64;
        // One thread wins the slot; the others stay silent. Never blocks.
        if now >= quiet_until
            && self
                .quiet_until_ms
                .compare_exchange(quiet_until, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let since = total - self.logged.swap(total, Ordering::Relaxed);
            tracing::warn!(
                topic,
                %error,
                total,
                since_last_warning = since,
                "{message} (at most one warning a minute)"
            );
        }
    }
}

/// What a service's publish that found no room logs.
#[cfg(any(feature = "kafka", test))]
pub(crate) const QUEUE_FULL: &str =
    "livecheck: message dropped, the queue to Kafka is full (services never wait for room)";
/// What a publish to a closed transport logs.
pub(crate) const CLOSED: &str = "livecheck: message dropped, the transport is closed";
/// What a message the broker never acknowledged logs (after librdkafka's `message.timeout.ms`,
/// or purged when its producer was dropped; the error says which).
#[cfg(feature = "kafka")]
pub(crate) const UNDELIVERED: &str = "livecheck: message not delivered to Kafka";

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_acknowledged_message_resolves_with_its_outcome() {
        let (ack, queued) = Queued::pending();
        ack.acknowledge(Err(TransportError::Closed));
        assert!(matches!(queued.await, Err(TransportError::Closed)));
        let (ack, queued) = Queued::pending();
        ack.acknowledge(Ok(()));
        assert!(queued.await.is_ok());
        assert!(Queued::delivered().await.is_ok());
    }

    #[tokio::test]
    async fn a_forgotten_message_is_not_reported_delivered() {
        let (ack, queued) = Queued::pending();
        drop(ack);
        assert!(matches!(queued.await, Err(TransportError::Closed)));
    }

    #[test]
    fn drops_are_all_counted_and_logged_rarely() {
        let counter = DropCounter::default();
        for _ in 0..1000 {
            counter.count(QUEUE_FULL, "bus", &"queue full");
        }
        assert_eq!(counter.total(), 1000);
        // One line for the first drop; the rest fall in the quiet minute.
        assert_eq!(counter.logged.load(Ordering::Relaxed), 1);
    }
}
