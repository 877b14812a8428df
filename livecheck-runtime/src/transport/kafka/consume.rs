//! What every consumer loop shares: the next message (consumer errors counted, logged rarely
//! and backed off), and a record read as untrusted input (its size checked before it is
//! decoded, its fields before any work is done on it).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;

use super::stats::{consumer_error, count_skip, KafkaStats};
use crate::wire::codec::{decode_report, Codec, DecodeError};
use crate::wire::limits::{Limits, OverLimit};
use crate::wire::model::{SignalEvent, TestExecution, TestReport};

/// What a consumer read next.
pub(super) enum Next<'c> {
    /// A message.
    Message(BorrowedMessage<'c>),
    /// The end of a partition (reported where `enable.partition.eof` is set: the report
    /// reader, which knows so that its look-back is read).
    End(i32),
}

/// The next message of `consumer` (named `name` in logs), or the end of a partition. A
/// consumer error is counted and logged rarely, and the read tried again 100 ms later (the
/// client reconnects by itself). Cancel-safe: each loop awaits it in a `select!` beside its
/// shutdown.
pub(super) async fn next<'c, C: ConsumerContext + 'static>(
    consumer: &'c StreamConsumer<C>,
    name: &str,
    stats: &KafkaStats,
) -> Next<'c> {
    loop {
        match consumer.recv().await {
            Ok(message) => return Next::Message(message),
            Err(KafkaError::PartitionEOF(partition)) => return Next::End(partition),
            Err(error) => {
                consumer_error(stats, name, &error);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A record of one of livecheck's topics, as its reader decodes and checks it.
pub(super) trait Record: Sized {
    /// The topic, as skips are counted.
    const TOPIC: &'static str;
    /// What a record is called in a skip's log line.
    const WHAT: &'static str;
    fn decode(payload: &[u8]) -> Result<Self, DecodeError>;
    fn check(&self, limits: &Limits) -> Result<(), OverLimit>;
    /// Where undecodable records of the topic are counted.
    fn undecodable(stats: &KafkaStats) -> &AtomicU64;
}

impl Record for TestExecution {
    const TOPIC: &'static str = "tests";
    const WHAT: &'static str = "test";
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        Codec::decode_test(payload)
    }
    fn check(&self, limits: &Limits) -> Result<(), OverLimit> {
        limits.check_test(self)
    }
    fn undecodable(stats: &KafkaStats) -> &AtomicU64 {
        &stats.undecodable_tests
    }
}

impl Record for SignalEvent {
    const TOPIC: &'static str = "bus";
    const WHAT: &'static str = "bus record";
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        Codec::decode_signal(payload)
    }
    fn check(&self, limits: &Limits) -> Result<(), OverLimit> {
        limits.check_signal(self)
    }
    fn undecodable(stats: &KafkaStats) -> &AtomicU64 {
        &stats.undecodable_signals
    }
}

impl Record for TestReport {
    const TOPIC: &'static str = "reports";
    const WHAT: &'static str = "report";
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        decode_report(payload)
    }
    fn check(&self, limits: &Limits) -> Result<(), OverLimit> {
        limits.check_report(self)
    }
    fn undecodable(stats: &KafkaStats) -> &AtomicU64 {
        &stats.undecodable_reports
    }
}

/// Reads `payload`, at `partition`/`offset`, as untrusted input: its size is checked before it
/// is decoded, its fields before it is believed. `None` when it is skipped: over a limit
/// (counted among the skips) or undecodable (counted, logged rarely).
pub(super) fn read_record<T: Record>(
    payload: &[u8],
    (partition, offset): (i32, i64),
    limits: Limits,
    stats: &KafkaStats,
) -> Option<T> {
    let read = limits
        .check_record(payload.len())
        .map_err(Skip::Over)
        .and_then(|()| T::decode(payload).map_err(Skip::Undecodable))
        .and_then(|record| match record.check(&limits) {
            Ok(()) => Ok(record),
            Err(over) => Err(Skip::Over(over)),
        });
    match read {
        Ok(record) => Some(record),
        Err(Skip::Over(over)) => {
            let what = format_args!("{} at {partition}/{offset}: {over}", T::WHAT);
            stats.skips.skip(T::TOPIC, over.reason(), what);
            None
        }
        Err(Skip::Undecodable(error)) => {
            let counter = T::undecodable(stats);
            count_skip(counter, T::TOPIC, partition, offset, &error);
            None
        }
    }
}

/// Why a record is skipped.
enum Skip {
    Over(OverLimit),
    Undecodable(DecodeError),
}
