//! The bus (signals): not consumed as a group; a worker assigns itself the bus partitions
//! numbered like its tests partitions, and reads a new one again from the replay window.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::consume::{next, read_record, Next};
use super::headers::{header, MARKER_KIND, SIGNAL_KIND};
use super::markers::MARKER_CASE;
use super::stats::KafkaStats;
use super::tests_topic::GroupContext;
use crate::transport::Delivery;
use crate::wire::limits::Limits;
use crate::wire::model::SignalEvent;
use crate::wire::signing::{self, Source, HEADER_RECORD_SIGNATURE};

/// What the bus consumer needs beside its consumer and channels.
pub(super) struct BusReader {
    pub(super) topic: String,
    pub(super) replay: Duration,
    /// The tests consumer: markers read go to its group context (see `offsets`).
    pub(super) tests: Arc<StreamConsumer<GroupContext>>,
    pub(super) limits: Limits,
}

/// Reads a bus record as untrusted input: its size before it is decoded, its fields and, where
/// the deployment signs, its signature (`livecheck-signature`) before it is believed. `None`
/// (counted, logged rarely) when it is skipped.
fn read_signal<M: Message>(message: &M, limits: Limits, stats: &KafkaStats) -> Option<SignalEvent> {
    let at = (message.partition(), message.offset());
    let payload = message.payload().unwrap_or_default();
    let signal: SignalEvent = read_record(payload, at, limits, stats)?;
    if let Some(key) = signing::key() {
        let (kind, source) = if signal.case_name == MARKER_CASE {
            (MARKER_KIND, Source::Marker)
        } else {
            (SIGNAL_KIND, Source::Signal)
        };
        let record_key = message.key().unwrap_or_default();
        let signature = header(message, HEADER_RECORD_SIGNATURE);
        if !key.verify_record(kind, record_key, payload, signature) {
            signing::reject(source, &signal.key);
            return None;
        }
    }
    Some(signal)
}

pub(super) async fn consume_bus(
    consumer: Arc<StreamConsumer>,
    reader: BusReader,
    mut assigned: watch::Receiver<Vec<i32>>,
    out: mpsc::Sender<Delivery<SignalEvent>>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let BusReader {
        topic,
        replay,
        tests,
        limits,
    } = reader;
    let mut current: Vec<i32> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            changed = assigned.changed() => {
                if changed.is_err() {
                    break;
                }
                let wanted = assigned.borrow_and_update().clone();
                reassign_bus(&consumer, &topic, replay, &current, &wanted).await;
                current = wanted;
            }
            next = next(&consumer, "bus", &stats), if !current.is_empty() => match next {
                Next::Message(message) if older_than(&message, replay) => {
                    tracing::trace!(partition = message.partition(), offset = message.offset(),
                        "signal older than the replay window skipped");
                }
                Next::Message(message) => {
                    let (partition, offset) = (message.partition(), message.offset());
                    let signal = match read_signal(&message, limits, &stats) {
                        Some(signal) => signal,
                        None => continue,
                    };
                    drop(message);
                    if tests.context().read_marker(&signal, partition, &stats) {
                        continue;
                    }
                    tracing::trace!(partition, offset, "signal read");
                    if out.send(Delivery::new(signal)).await.is_err() {
                        break;
                    }
                }
                Next::End(_) => {}
            },
        }
    }
}

/// How many signals of a bus partition are read again, at most, when the broker cannot say
/// where the replay window starts.
const REPLAY_TAIL: i64 = 100_000;

/// Whether a bus message was written before the replay window (a replayed tail reaches back
/// further than the window).
fn older_than(message: &impl Message, window: Duration) -> bool {
    let Some(written) = message.timestamp().to_millis() else {
        return false;
    };
    let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    written < chrono::Utc::now().timestamp_millis().saturating_sub(window)
}

/// Assigns the bus partitions `wanted`: partitions kept continue where they are; new ones start
/// at the first signal of the replay window, so the store is rebuilt for tests moved here.
async fn reassign_bus(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    replay: Duration,
    current: &[i32],
    wanted: &[i32],
) {
    let since = chrono::Utc::now() - chrono::Duration::from_std(replay).unwrap_or_default();
    let consumer2 = consumer.clone();
    let topic = topic.to_owned();
    let current = current.to_vec();
    let partitions = wanted.to_vec();
    let wanted = wanted.to_vec();
    let result = tokio::task::spawn_blocking(move || {
        let positions = consumer2.position().unwrap_or_default();
        let mut lookup = TopicPartitionList::new();
        let mut tpl = TopicPartitionList::new();
        for &partition in &wanted {
            let kept = current.contains(&partition).then(|| {
                positions
                    .find_partition(&topic, partition)
                    .map(|e| e.offset())
                    .filter(|o| matches!(o, Offset::Offset(_)))
            });
            match kept.flatten() {
                Some(offset) => {
                    let _ = tpl.add_partition_offset(&topic, partition, offset);
                }
                None => {
                    let _ = lookup.add_partition_offset(
                        &topic,
                        partition,
                        Offset::Offset(since.timestamp_millis()),
                    );
                }
            }
        }
        if lookup.count() > 0 {
            match consumer2.offsets_for_times(lookup.clone(), Duration::from_secs(10)) {
                Ok(found) => {
                    for element in found.elements() {
                        let offset = match element.offset() {
                            Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                            // "No message since then" — or a broker that does not look offsets
                            // up by time (librdkafka's mock cluster answers -1 for everything:
                            // starting at the end lost every signal sent before a partition
                            // moved). Replay a bounded tail instead; what is older
                            // than the window is skipped as it is read.
                            _ => Offset::OffsetTail(REPLAY_TAIL),
                        };
                        let _ = tpl.add_partition_offset(&topic, element.partition(), offset);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "bus offsets by time unavailable: replaying from the start");
                    for element in lookup.elements() {
                        let _ = tpl.add_partition_offset(&topic, element.partition(), Offset::Beginning);
                    }
                }
            }
        }
        consumer2.assign(&tpl)
    })
    .await;
    match result {
        Ok(Ok(())) => tracing::debug!(?partitions, "bus partitions assigned"),
        Ok(Err(error)) => tracing::error!(%error, "bus assignment failed"),
        Err(error) => tracing::error!(%error, "bus assignment task failed"),
    }
}
