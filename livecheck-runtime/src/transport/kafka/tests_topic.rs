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
use super::markers::{commit_done, Markers, CLAIM, COMMIT_REFUSED_LOG, MARKER_CASE, PROGRESS};
use super::members::{membership, Membership};
use super::stats::KafkaStats;
use crate::execution::lock;
use crate::limits::Limits;
use crate::model::{SignalEvent, TestExecution};
use crate::signing::{self, HEADER_TEST_SIGNATURE};
use crate::text::Escaped;
use crate::transport::offsets::{OffsetTracker, Received};
use crate::transport::Delivery;

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
        let mut partitions: Vec<i32> = tpl
            .elements()
            .iter()
            .filter(|e| e.topic() == self.tests_topic)
            .map(|e| e.partition())
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        partitions
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
    /// for by the coordinator (see `offsets`, [`judge_claims`](super::group_watch::judge_claims)): fences the partition here.
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
                let mut partitions = self.partitions(tpl);
                if cooperative {
                    partitions.extend(self.assigned.borrow().iter().copied());
                    partitions.sort_unstable();
                    partitions.dedup();
                }
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
                if cooperative {
                    let revoked = self.partitions(tpl);
                    let kept: Vec<i32> = self
                        .assigned
                        .borrow()
                        .iter()
                        .copied()
                        .filter(|p| !revoked.contains(p))
                        .collect();
                    self.settle(kept, membership(consumer.client()));
                    consumer.incremental_unassign(tpl)
                } else {
                    lock(&self.tracker).revoke_all();
                    consumer.unassign()
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

/// Reads a marker from bus partition `partition` (a progress marker of another instance, or
/// a claim); true if `signal` was one.
pub(super) fn read_marker(
    signal: &SignalEvent,
    partition: i32,
    group: &GroupContext,
    stats: &KafkaStats,
) -> bool {
    if signal.case_name != MARKER_CASE {
        return false;
    }
    if signal.value["group"].as_str() != Some(&group.markers.group) {
        return true;
    }
    let mine = signal.key == group.markers.instance;
    match &*signal.signal_name {
        PROGRESS if !mine => {
            let started_upto = signal.value["started_upto"].as_i64();
            let attempt = signal.value["attempt"]
                .as_u64()
                .and_then(|a| u32::try_from(a).ok());
            if let (Some(started_upto), Some(attempt)) = (started_upto, attempt) {
                lock(&group.tracker).note_progress(partition, &signal.key, started_upto, attempt);
            }
        }
        CLAIM if mine => {
            if let Some(assignment) = signal.value["assignment"].as_u64() {
                lock(&group.tracker).note_own_claim(partition, assignment);
            }
        }
        CLAIM => {
            // Claims read before this worker's own are earlier owners': nothing to judge.
            if !lock(&group.tracker).claimed_here(partition) {
                return true;
            }
            let member = signal.value["member"].as_str().filter(|m| !m.is_empty());
            let generation = signal.value["generation"].as_i64();
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
                member: member.to_owned(),
                generation,
            };
            if group.claims.try_send(claim).is_err() {
                stats.skips.skip(
                    "bus",
                    "claim_not_believed",
                    format_args!("claim of partition {partition}: too many claims waiting"),
                );
            }
        }
        _ => {}
    }
    true
}
