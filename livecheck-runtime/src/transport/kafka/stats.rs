//! Counters of the Kafka transport, and how its errors are counted, logged and named.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::transport::{DropCounter, SkipCounter, TransportError};

/// Counters of the Kafka transport, as it updates them (a snapshot: the `counters` of
/// [`Introspect::snapshot`](crate::transport::Introspect::snapshot)).
#[derive(Debug, Default)]
pub(crate) struct KafkaStats {
    /// Messages on the tests topic that did not decode (skipped).
    pub(super) undecodable_tests: AtomicU64,
    /// Messages on the bus that did not decode (skipped).
    pub(super) undecodable_signals: AtomicU64,
    /// Consumer errors seen (the client reconnects by itself).
    pub(super) consumer_errors: AtomicU64,
    /// Messages on the report topic that did not decode (skipped).
    pub(super) undecodable_reports: AtomicU64,
    /// Tests and signals that could not be queued (queue full): dropped.
    pub(super) dropped: DropCounter,
    /// Messages queued that the broker never acknowledged.
    pub(super) undelivered: DropCounter,
    /// Records skipped as untrusted input (over a limit, a claim or suite report not believed).
    pub(super) skips: SkipCounter,
}

impl KafkaStats {
    /// Tests and signals a service published that could not be queued (the producer's queue
    /// was full: the broker is gone or too slow), dropped without waiting.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.total()
    }

    /// Messages queued that the broker never acknowledged (within librdkafka's
    /// `message.timeout.ms`), reports included.
    pub(super) fn undelivered(&self) -> u64 {
        self.undelivered.total()
    }
}

pub(super) fn broker_error(
    context: impl Into<String>,
    error: rdkafka::error::KafkaError,
) -> TransportError {
    TransportError::Broker {
        context: context.into(),
        cause: Box::new(error),
    }
}

/// Counts a consumer error and logs it: the first, then one in a hundred (a broker outage makes
/// every consumer loop fail many times a second; the client reconnects by itself).
pub(super) fn consumer_error(stats: &KafkaStats, consumer: &str, error: &dyn std::fmt::Display) {
    let n = stats.consumer_errors.fetch_add(1, Ordering::Relaxed) + 1;
    if rarely(n, 100) {
        tracing::warn!(consumer, errors = n, %error, "consumer error (the client retries)");
    } else {
        tracing::debug!(consumer, %error, "consumer error (the client retries)");
    }
}

pub(super) fn count_skip(
    counter: &AtomicU64,
    topic: &str,
    partition: i32,
    offset: i64,
    error: &dyn std::fmt::Display,
) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    // One warning, then one per hundred: a flood of bad messages must not flood the log.
    if rarely(n, 100) {
        tracing::warn!(topic, partition, offset, skipped = n, %error,
            "undecodable message skipped");
    } else {
        tracing::debug!(topic, partition, offset, %error, "undecodable message skipped");
    }
}

/// Whether the `n`th of a run of failures is logged as a warning: the first, then one in
/// `every` (a broker outage makes a loop fail many times a second).
pub(super) fn rarely(n: u64, every: u64) -> bool {
    n == 1 || n.is_multiple_of(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_then_one_in_every_is_said() {
        let said: Vec<u64> = (1..=250).filter(|&n| rarely(n, 100)).collect();
        assert_eq!(said, [1, 100, 200]);
        let said: Vec<u64> = (1..=61).filter(|&n| rarely(n, 30)).collect();
        assert_eq!(said, [1, 30, 60]);
    }
}
