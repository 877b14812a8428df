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
use crate::lock::lock;
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
const PROGRESS: &str = "progress";
/// The `signal_name` of a claim.
const CLAIM: &str = "claim";

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

/// A record of the bus, as this worker takes it: a signal, or a marker (see [`read_marker`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum MarkerRead {
    /// Not a marker: a signal.
    NotMarker,
    /// A marker this worker does nothing with: another group's, its own progress, a progress
    /// or own claim missing a field, a kind it does not know.
    Ignored,
    /// Another instance's progress on the partition.
    Progress { started_upto: i64, attempt: u32 },
    /// This instance's own claim, of its assignment `assignment`, read back.
    OwnClaim { assignment: u64 },
    /// Another instance's claim, with the member and generation it names (`None` where it
    /// names none: not believed).
    Claim {
        member: Option<String>,
        generation: Option<i64>,
    },
}

/// What `signal` is to instance `instance` of consumer group `group`: markers of other groups
/// (a `run --once`, a second deployment on the same topics) are not about this group's
/// partitions; a worker's own progress is nothing to it.
pub(super) fn read_marker(signal: &SignalEvent, group: &str, instance: &str) -> MarkerRead {
    if signal.case_name != MARKER_CASE {
        return MarkerRead::NotMarker;
    }
    if signal.value["group"].as_str() != Some(group) {
        return MarkerRead::Ignored;
    }
    let mine = signal.key == instance;
    match &*signal.signal_name {
        PROGRESS if !mine => {
            let started_upto = signal.value["started_upto"].as_i64();
            let attempt = signal.value["attempt"]
                .as_u64()
                .and_then(|a| u32::try_from(a).ok());
            match (started_upto, attempt) {
                (Some(started_upto), Some(attempt)) => MarkerRead::Progress {
                    started_upto,
                    attempt,
                },
                _ => MarkerRead::Ignored,
            }
        }
        CLAIM if mine => match signal.value["assignment"].as_u64() {
            Some(assignment) => MarkerRead::OwnClaim { assignment },
            None => MarkerRead::Ignored,
        },
        CLAIM => MarkerRead::Claim {
            member: signal.value["member"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
            generation: signal.value["generation"].as_i64(),
        },
        _ => MarkerRead::Ignored,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(name: &str, key: &str, value: serde_json::Value) -> SignalEvent {
        SignalEvent {
            signal_name: name.into(),
            case_name: MARKER_CASE.into(),
            key: key.into(),
            value,
        }
    }

    fn read(signal: &SignalEvent) -> MarkerRead {
        read_marker(signal, "livecheck", "me")
    }

    #[test]
    fn a_signal_is_no_marker_and_another_groups_marker_is_ignored() {
        let mut signal = marker(PROGRESS, "other", serde_json::json!({"group": "livecheck"}));
        signal.case_name = "orders.Checkout".into();
        assert_eq!(read(&signal), MarkerRead::NotMarker);
        let value = serde_json::json!({"group": "once", "started_upto": 3, "attempt": 1});
        assert_eq!(read(&marker(PROGRESS, "other", value)), MarkerRead::Ignored);
        let value = serde_json::json!({"started_upto": 3, "attempt": 1});
        assert_eq!(read(&marker(PROGRESS, "other", value)), MarkerRead::Ignored);
        let value = serde_json::json!({"group": "livecheck"});
        assert_eq!(read(&marker("lease", "other", value)), MarkerRead::Ignored);
    }

    #[test]
    fn progress_counts_only_from_another_instance_and_whole() {
        let value = serde_json::json!({"group": "livecheck", "started_upto": 12, "attempt": 2});
        assert_eq!(
            read(&marker(PROGRESS, "other", value.clone())),
            MarkerRead::Progress {
                started_upto: 12,
                attempt: 2
            }
        );
        assert_eq!(read(&marker(PROGRESS, "me", value)), MarkerRead::Ignored);
        let no_attempt = serde_json::json!({"group": "livecheck", "started_upto": 12});
        assert_eq!(
            read(&marker(PROGRESS, "other", no_attempt)),
            MarkerRead::Ignored
        );
        let huge =
            serde_json::json!({"group": "livecheck", "started_upto": 1, "attempt": 1u64 << 40});
        assert_eq!(read(&marker(PROGRESS, "other", huge)), MarkerRead::Ignored);
    }

    #[test]
    fn claims_are_told_apart_by_instance_and_keep_what_they_name() {
        let own = serde_json::json!({"group": "livecheck", "assignment": 4, "member": "m"});
        assert_eq!(
            read(&marker(CLAIM, "me", own)),
            MarkerRead::OwnClaim { assignment: 4 }
        );
        let own_without = serde_json::json!({"group": "livecheck", "generation": 7});
        assert_eq!(read(&marker(CLAIM, "me", own_without)), MarkerRead::Ignored);
        let other = serde_json::json!({"group": "livecheck", "generation": 7, "member": "m"});
        assert_eq!(
            read(&marker(CLAIM, "other", other)),
            MarkerRead::Claim {
                member: Some("m".into()),
                generation: Some(7)
            }
        );
        // Without a membership a worker claims with no member and generation -1.
        let unnamed = serde_json::json!({"group": "livecheck", "generation": -1, "member": null});
        let read_unnamed = MarkerRead::Claim {
            member: None,
            generation: Some(-1),
        };
        assert_eq!(read(&marker(CLAIM, "other", unnamed)), read_unnamed);
        let empty = serde_json::json!({"group": "livecheck", "generation": -1, "member": ""});
        assert_eq!(read(&marker(CLAIM, "other", empty)), read_unnamed);
        let no_generation = serde_json::json!({"group": "livecheck", "member": "m"});
        assert_eq!(
            read(&marker(CLAIM, "other", no_generation)),
            MarkerRead::Claim {
                member: Some("m".into()),
                generation: None
            }
        );
    }
}
