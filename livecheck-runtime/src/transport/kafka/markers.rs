//! Progress markers and claims, which a worker writes to the bus (see `offsets`), and the
//! commits of the tests consumer's offsets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::headers::MARKER_KIND;
use super::members::Membership;
use super::produce::ProduceContext;
use crate::codec::Codec;
use crate::execution::lock;
use crate::model::SignalEvent;
use crate::signing::{self, HEADER_RECORD_SIGNATURE};
use crate::transport::offsets::OffsetTracker;
use crate::transport::Queued;

/// Refused commits are logged at most once a minute (they are retried every tick).
pub(super) static COMMIT_REFUSED_LOG: crate::throttle::Throttle = crate::throttle::Throttle::new();

/// Commits what the tracker allows, now.
pub(super) fn commit_done<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    tracker: &Mutex<OffsetTracker>,
    mode: CommitMode,
) {
    let commits = lock(tracker).take_commits();
    if commits.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in commits {
        let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    if let Err(error) = consumer.commit(&tpl, mode) {
        // Not sent at all: commit these again at the next tick.
        let refused: Vec<(i32, i64)> = tpl
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect();
        lock(tracker).commit_refused(&refused);
        if COMMIT_REFUSED_LOG.ready() {
            tracing::warn!(%error, "offset commit failed; committing again (logged at most once a minute)");
        }
    }
}

/// Where a worker writes its markers — progress and claims (see `offsets`): the bus, as this
/// instance.
pub(super) struct Markers {
    pub(super) producer: Arc<ThreadedProducer<ProduceContext>>,
    pub(super) bus: String,
    /// The consumer group: markers of other groups on the same topics (a `run --once`, a
    /// second deployment) are not about this group's partitions.
    pub(super) group: String,
    pub(super) instance: String,
    pub(super) codec: Codec,
}

/// The `case_name` of markers on the bus: no case has it (case names are paths).
pub(super) const MARKER_CASE: &str = "__livecheck";
/// The `signal_name` of a progress marker.
pub(super) const PROGRESS: &str = "progress";
/// The `signal_name` of a claim.
pub(super) const CLAIM: &str = "claim";

impl Markers {
    /// Writes one marker to bus partition `partition`, without waiting for its delivery.
    fn write(&self, partition: i32, name: &str, mut value: serde_json::Value) {
        value["group"] = self.group.clone().into();
        let marker = SignalEvent {
            signal_name: name.into(),
            case_name: MARKER_CASE.into(),
            key: self.instance.clone(),
            value,
        };
        let payload = self.codec.encode_signal(&marker);
        // Nobody awaits its delivery; a failure is still counted.
        let (ack, _delivery) = Queued::pending();
        let mut record = BaseRecord::with_opaque_to(&self.bus, Box::new(ack))
            .partition(partition)
            .key(&self.instance)
            .payload(&payload);
        if let Some(key) = signing::key() {
            let signature = key.sign_record(MARKER_KIND, self.instance.as_bytes(), &payload);
            record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                key: HEADER_RECORD_SIGNATURE,
                value: Some(signature.as_bytes()),
            }));
        }
        if let Err((error, _)) = self.producer.send(record) {
            tracing::debug!(%error, partition, marker = name, "marker not written");
        }
    }

    /// Writes the progress markers that changed (a lost one only makes a later re-run's attempt
    /// number one too low).
    fn progress(&self, tracker: &Mutex<OffsetTracker>) {
        for (partition, started_upto, attempt) in lock(tracker).take_progress() {
            let value = serde_json::json!({"started_upto": started_upto, "attempt": attempt});
            self.write(partition, PROGRESS, value);
        }
    }

    /// Claims the partitions of this worker's assignment `assignment` (its own count), made
    /// in the group's generation and under the member id of `membership` (a lost claim, or one
    /// without a membership, only leaves the partition unfenced: the handover alone guards it).
    pub(super) fn claim(
        &self,
        partitions: &[i32],
        assignment: u64,
        membership: Option<&Membership>,
    ) {
        let (member, generation) = membership.map_or((None, -1), |m| {
            (Some(m.member.as_str()), i64::from(m.generation))
        });
        for &partition in partitions {
            let value = serde_json::json!({
                "assignment": assignment,
                "generation": generation,
                "member": member,
            });
            self.write(partition, CLAIM, value);
        }
    }
}

/// Commits what the tracker allows and writes progress markers, every 100 ms, and commits once
/// more (synchronously) at shutdown.
///
/// The last commit blocks on the broker: it runs on the blocking pool, not on a runtime
/// thread (`block_in_place` panicked on a current-thread runtime).
pub(super) async fn commit_loop<C: ConsumerContext + 'static>(
    consumer: Arc<StreamConsumer<C>>,
    topic: String,
    markers: Arc<Markers>,
    tracker: Arc<Mutex<OffsetTracker>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {
                markers.progress(&tracker);
                commit_done(&*consumer, &topic, &tracker, CommitMode::Async);
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        commit_done(&*consumer, &topic, &tracker, CommitMode::Sync)
    })
    .await;
}
