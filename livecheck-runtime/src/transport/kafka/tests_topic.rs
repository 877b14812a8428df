//! The tests topic: its consumer (one group, offsets committed by hand), the rebalance
//! callbacks that keep livecheck's bookkeeping, and the markers read back for it from the bus.

use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::claims::ClaimRead;
use super::consume::{next, read_record, Next};
use super::handover::Handover;
use super::headers::{header, trace_of};
use super::markers::{commit_done, read_marker, MarkerRead, Markers, COMMIT_REFUSED_LOG};
use super::members::{membership, Membership};
use super::stats::KafkaStats;
use crate::lock::lock;
use crate::text::Escaped;
use crate::transport::offsets::{OffsetTracker, Received};
use crate::transport::Delivery;
use crate::wire::limits::Limits;
use crate::wire::model::{SignalEvent, TestExecution};
use crate::wire::signing::{self, HEADER_TEST_SIGNATURE};

/// Rebalance callbacks of the tests consumer: track offsets and leases, tell the bus which
/// partitions to read, and who leads.
pub(super) struct GroupContext {
    pub(super) tests_topic: String,
    pub(super) tracker: Arc<Mutex<OffsetTracker>>,
    pub(super) assigned: watch::Sender<Vec<i32>>,
    pub(super) leader: watch::Sender<bool>,
    pub(super) handover: Arc<Handover>,
    /// Claims at each assignment, progress while it works (see `offsets`).
    pub(super) markers: Arc<Markers>,
    /// This worker's membership, set at each assignment (shared with the transport).
    pub(super) membership: Arc<Mutex<Option<Membership>>>,
    /// Claims of other members to be checked with the coordinator before they fence.
    pub(super) claims: mpsc::Sender<ClaimRead>,
}

impl ClientContext for GroupContext {}

impl GroupContext {
    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        partitions_of(tpl, &self.tests_topic)
    }

    /// Settles the leases on the partitions now owned, and returns where kept partitions resume.
    fn settle(&self, partitions: Vec<i32>, membership: Option<Membership>) -> Vec<(i32, i64)> {
        let (resume, generation) = {
            let mut tracker = lock(&self.tracker);
            (tracker.assign(&partitions), tracker.generation())
        };
        if membership.is_some() {
            *lock(&self.membership) = membership.clone();
        }
        self.markers
            .claim(&partitions, generation, membership.as_ref());
        tracing::info!(?partitions, "partitions assigned");
        self.leader.send_replace(partitions.contains(&0));
        self.assigned.send_replace(partitions);
        resume
    }
}

impl GroupContext {
    /// A claim of another instance, read back from the bus after this worker's own and vouched
    /// for by the coordinator (see `offsets`,
    /// [`judge_claims`](super::group_watch::judge_claims)): fences the partition here.
    pub(super) fn claim_read(&self, partition: i32, instance: &str) {
        if !lock(&self.tracker).fence(partition) {
            return;
        }
        tracing::warn!(
            partition,
            by = %Escaped(signing::truncated(instance)),
            "partition claimed by another worker (the coordinator agrees): its tests stop here \
             unreported (fenced until the group assigns it back)"
        );
        if partition == 0 {
            self.leader.send_replace(false);
        }
        // Not this worker's any more: the bus reader lets the partition go, so that when an
        // assignment gives it back it replays the window again. A test that comes back here
        // then finds the signals it had before (they were let go when it stopped; a fault run
        // saw a test come back and TIMEOUT for a signal read before the fence).
        self.assigned
            .send_modify(|assigned| assigned.retain(|&p| p != partition));
    }
}

impl GroupContext {
    /// Reads a marker from bus partition `partition` (a progress marker of another instance,
    /// or a claim; see [`read_marker`]); true if `signal` was one.
    pub(super) fn read_marker(
        &self,
        signal: &SignalEvent,
        partition: i32,
        stats: &KafkaStats,
    ) -> bool {
        let read = read_marker(signal, &self.markers.group, &self.markers.instance);
        let (member, generation) = match read {
            MarkerRead::NotMarker => return false,
            MarkerRead::Ignored => return true,
            MarkerRead::Progress {
                started_upto,
                attempt,
            } => {
                lock(&self.tracker).note_progress(partition, &signal.key, started_upto, attempt);
                return true;
            }
            MarkerRead::OwnClaim { assignment } => {
                lock(&self.tracker).note_own_claim(partition, assignment);
                return true;
            }
            MarkerRead::Claim { member, generation } => (member, generation),
        };
        // Claims read before this worker's own are earlier owners': nothing to judge, but the
        // partition had an owner before (it keeps its handover; see `Handover`).
        {
            let mut tracker = lock(&self.tracker);
            if !tracker.claimed_here(partition) {
                tracker.note_earlier_claim(partition);
                return true;
            }
        }
        let (Some(member), Some(generation)) = (member, generation) else {
            stats.skips.skip(
                "bus",
                "claim_not_believed",
                format_args!("claim of partition {partition} names no member and generation"),
            );
            return true;
        };
        let claim = ClaimRead {
            partition,
            instance: signal.key.clone(),
            member,
            generation,
        };
        if self.claims.try_send(claim).is_err() {
            stats.skips.skip(
                "bus",
                "claim_not_believed",
                format_args!("claim of partition {partition}: too many claims waiting"),
            );
        }
        true
    }
}

impl ConsumerContext for GroupContext {
    /// A commit the broker refused (asynchronous commits report only here): the offsets are
    /// committed again at the next tick. Left alone, a refused commit (tansu refuses some
    /// across rebalances) kept a partition's committed offset behind until its next test — so
    /// the orphaned-partitions watch saw tests waiting with no progress on a partition that was
    /// done, and a restart ran its last tests again.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let Err(error) = result else {
            return;
        };
        let refused: Vec<(i32, i64)> = offsets
            .elements()
            .iter()
            .filter(|e| e.topic() == self.tests_topic)
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect();
        lock(&self.tracker).commit_refused(&refused);
        if COMMIT_REFUSED_LOG.ready() {
            tracing::warn!(%error, partitions = ?refused,
                "offset commit refused; committing again (logged at most once a minute)");
        }
    }

    /// Kafka's rebalance, with livecheck's bookkeeping around it:
    /// - revoke (eager protocol: every partition, before any assignment): commit what is done,
    ///   then every running test's lease is pending;
    /// - assign: leases of partitions kept are owned again and those partitions resume after
    ///   what this worker already read (not at the committed offset, which would run the tests
    ///   in flight a second time); leases of partitions lost are lost.
    ///
    /// The cooperative protocol (`-X partition.assignment.strategy=cooperative-sticky`) moves
    /// only some partitions: its revocations are final at once.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::consumer::RebalanceProtocol;
        use rdkafka::types::RDKafkaRespErr as Code;
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            Code::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let held = self.assigned.borrow().clone();
                let partitions = owned_after_assign(&held, self.partitions(tpl), cooperative);
                for (partition, next) in self.settle(partitions, membership(consumer.client())) {
                    if let Some(mut element) = tpl.find_partition(&self.tests_topic, partition) {
                        let _ = element.set_offset(Offset::Offset(next));
                    }
                }
                let tpl = &*tpl;
                self.handover.assign(consumer, tpl, || {
                    if cooperative {
                        consumer.incremental_assign(tpl)
                    } else {
                        consumer.assign(tpl)
                    }
                })
            }
            Code::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.handover.revoked();
                commit_done(consumer, &self.tests_topic, &self.tracker, CommitMode::Sync);
                tracing::info!("partitions revoked");
                self.leader.send_replace(false);
                // Not borrowed across `settle`, which sends on the same watch.
                let held = self.assigned.borrow().clone();
                match after_revoke(&held, &self.partitions(tpl), cooperative) {
                    Revocation::Keep(kept) => {
                        self.settle(kept, membership(consumer.client()));
                        consumer.incremental_unassign(tpl)
                    }
                    Revocation::All => {
                        lock(&self.tracker).revoke_all();
                        consumer.unassign()
                    }
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                // As librdkafka does on an error: drop the assignment; the group rejoins.
                lock(&self.tracker).revoke_all();
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "partition (un)assignment failed");
        }
    }
}

/// The partitions of `topic` in `tpl`, sorted, once each.
fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    let mut partitions: Vec<i32> = tpl
        .elements()
        .iter()
        .filter(|e| e.topic() == topic)
        .map(|e| e.partition())
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
}

/// The partitions of the tests topic this worker owns after an assignment of `assigned`, while
/// it held `held`: the eager protocol assigns the whole set, the cooperative one
/// (`-X partition.assignment.strategy=cooperative-sticky`) adds to what is held.
fn owned_after_assign(held: &[i32], mut assigned: Vec<i32>, cooperative: bool) -> Vec<i32> {
    if cooperative {
        assigned.extend(held.iter().copied());
        assigned.sort_unstable();
        assigned.dedup();
    }
    assigned
}

/// What a revocation does to this worker's partitions of the tests topic.
#[derive(Debug, PartialEq, Eq)]
enum Revocation {
    /// The cooperative protocol revokes only some: the rest are kept (and settled again).
    Keep(Vec<i32>),
    /// The eager protocol revokes every partition before it assigns any: all are let go.
    All,
}

/// What the revocation of `revoked` does while this worker holds `held`.
fn after_revoke(held: &[i32], revoked: &[i32], cooperative: bool) -> Revocation {
    if !cooperative {
        return Revocation::All;
    }
    Revocation::Keep(
        held.iter()
            .copied()
            .filter(|p| !revoked.contains(p))
            .collect(),
    )
}

/// What the tests consumer needs beside its consumer and channel.
pub(super) struct TestsReader {
    pub(super) tracker: Arc<Mutex<OffsetTracker>>,
    pub(super) limits: Limits,
    /// Bytes of test records decoded and not yet acknowledged (queued for a slot, or running):
    /// one permit a byte. A flood of large records waits in Kafka, not in memory.
    pub(super) budget: Arc<tokio::sync::Semaphore>,
}

/// Bytes of test records a worker holds decoded at once (see [`TestsReader::budget`]); a record
/// larger than this takes the whole budget.
pub(super) const TEST_BYTES_BUDGET: usize = 64 * 1024 * 1024;

pub(super) async fn consume_tests(
    consumer: Arc<StreamConsumer<GroupContext>>,
    reader: TestsReader,
    out: mpsc::Sender<Delivery<TestExecution>>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let TestsReader {
        tracker,
        limits,
        budget,
    } = reader;
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            next = next(&consumer, "tests", &stats) => match next {
                Next::Message(message) => message,
                Next::End(_) => continue,
            },
        };
        let (partition, offset) = (message.partition(), message.offset());
        let received = lock(&tracker).received(partition, offset);
        let (generation, lease) = match received {
            Received::Run { generation, lease } => (generation, lease),
            Received::Seen => {
                tracing::debug!(partition, offset, "test already read here: not run twice");
                continue;
            }
            Received::NotAssigned => continue,
        };
        // Untrusted input: its size is checked before it is decoded, its fields before any
        // work is done on it. What is over a limit is skipped and acknowledged (its offset is
        // committed past: a restart does not read it again).
        let payload = message.payload().unwrap_or_default();
        let size = payload.len();
        let Some(mut test) =
            read_record::<TestExecution>(payload, (partition, offset), limits, &stats)
        else {
            lock(&tracker).done(partition, offset, generation);
            continue;
        };
        // The bincode record has no trace nor signature: its headers carry them.
        if test.traceparent.is_none() {
            if let Some((parent, state)) = trace_of(&message) {
                test.traceparent = Some(parent);
                test.tracestate = state;
            }
        }
        if test.signature.is_none() {
            test.signature = header(&message, HEADER_TEST_SIGNATURE)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .filter(|text| text.len() <= 128)
                .map(Box::from);
        }
        drop(message);
        let permits = u32::try_from(size.clamp(1, TEST_BYTES_BUDGET)).unwrap_or(u32::MAX);
        let held = tokio::select! {
            _ = shutdown.changed() => break,
            held = budget.clone().acquire_many_owned(permits) => held,
        };
        let (done, attempt) = (tracker.clone(), tracker.clone());
        let delivery = Delivery::with_ack(test, move || {
            lock(&done).done(partition, offset, generation);
            drop(held);
        })
        .with_lease(lease, move || lock(&attempt).attempt(partition, offset));
        if out.send(delivery).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tests_topics_partitions_count_once_each() {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in [
            ("livecheck", 3),
            ("livecheck-bus", 0),
            ("livecheck", 1),
            ("livecheck", 3),
        ] {
            tpl.add_partition(topic, partition);
        }
        assert_eq!(partitions_of(&tpl, "livecheck"), [1, 3]);
        assert_eq!(partitions_of(&tpl, "other"), Vec::<i32>::new());
    }

    #[test]
    fn an_eager_assignment_is_the_whole_set_a_cooperative_one_adds() {
        assert_eq!(owned_after_assign(&[0, 5], vec![2, 1], false), [2, 1]);
        assert_eq!(
            owned_after_assign(&[0, 5], vec![2, 1, 5], true),
            [0, 1, 2, 5]
        );
        assert_eq!(owned_after_assign(&[], vec![], true), Vec::<i32>::new());
    }

    #[test]
    fn a_cooperative_revocation_keeps_the_rest_an_eager_one_revokes_all() {
        assert_eq!(
            after_revoke(&[0, 1, 2], &[1], true),
            Revocation::Keep(vec![0, 2])
        );
        assert_eq!(
            after_revoke(&[0, 1], &[0, 1], true),
            Revocation::Keep(vec![])
        );
        assert_eq!(
            after_revoke(&[0, 1], &[7], true),
            Revocation::Keep(vec![0, 1])
        );
        assert_eq!(after_revoke(&[0, 1, 2], &[1], false), Revocation::All);
    }
}
