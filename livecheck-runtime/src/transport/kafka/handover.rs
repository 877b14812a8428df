//! The handover after a partition assignment: the partitions assigned are held (paused) long
//! enough for an earlier owner the broker did not fence to stop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::members::{list_members, Member, Membership, Unasked};
use crate::lock::lock;
use crate::transport::offsets::OffsetTracker;

/// How often the early end of a hold looks whether this worker's claims are read back.
const CLAIMS_POLL: Duration = Duration::from_millis(20);
/// How long the early end of a hold waits for the committed offsets.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(2);

/// The handover after each partition assignment: the partitions assigned are paused, and
/// resumed `hold` later.
///
/// Apache Kafka's eager protocol revokes every member before it assigns anyone, so a partition
/// never has two owners. tansu 0.6.0 does not wait: it completes a rebalance as soon as its
/// leader syncs, the other members hear of it at their next heartbeat (up to
/// `heartbeat.interval.ms` later), and it does not fence their commits. For that while the old
/// owner goes on running the partition's new tests (the fault tests saw them reported
/// twice). Paused for twice the heartbeat interval, the new owner reads those tests only once
/// the old owner has stopped, finds their reports already read back and skips them. Pausing
/// (not sleeping in the consumer loop) keeps the consumer polled, so the rebalances that follow
/// are served at once.
///
/// The hold ends early where no other member can hold the partitions (see [`nobody_before`]):
/// the first assignment of a fresh group runs its first test at once, not a hold later.
#[derive(Debug)]
pub(super) struct Handover {
    hold: Duration,
    /// Bumped at every (re)assignment, under the lock the rebalance callback holds while it
    /// assigns and pauses: a resume meant for an earlier assignment is dropped.
    epoch: Mutex<Epochs>,
    /// The latest assignment's epoch and when its partitions resume.
    wake: watch::Sender<(u64, Option<Instant>)>,
}

impl Handover {
    pub(super) fn new(hold: Duration) -> (Arc<Self>, watch::Receiver<(u64, Option<Instant>)>) {
        let (wake, rx) = watch::channel((0, None));
        let handover = Handover {
            hold,
            epoch: Mutex::new(Epochs::default()),
            wake,
        };
        (Arc::new(handover), rx)
    }

    /// Assigns through `assign`, then pauses the partitions assigned (`tpl`) for the hold.
    pub(super) fn assign<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        assign: impl FnOnce() -> KafkaResult<()>,
    ) -> KafkaResult<()> {
        let mut epochs = lock(&self.epoch);
        let epoch = epochs.assigned();
        assign()?;
        if !holds(self.hold, tpl.count()) {
            return Ok(());
        }
        if let Err(error) = consumer.pause(tpl) {
            tracing::warn!(%error, "could not pause the partitions assigned for the handover");
            return Ok(());
        }
        tracing::debug!(hold = ?self.hold, partitions = tpl.count(), "handover: paused");
        self.wake
            .send_replace((epoch, Some(Instant::now() + self.hold)));
        Ok(())
    }

    /// A revocation: a pending resume no longer applies.
    pub(super) fn revoked(&self) {
        lock(&self.epoch).revoked();
    }

    /// The hold of assignment `epoch` is over: resumes what is assigned, unless a later
    /// assignment came meanwhile (it has a hold of its own).
    fn resume<C: ConsumerContext>(&self, consumer: &impl Consumer<C>, epoch: u64) {
        let epochs = lock(&self.epoch);
        if !epochs.resumes(epoch) {
            return;
        }
        let resumed = consumer
            .assignment()
            .and_then(|assigned| consumer.resume(&assigned));
        match resumed {
            Ok(()) => tracing::debug!("handover: resumed"),
            Err(error) => {
                tracing::warn!(%error, "could not resume the partitions after the handover")
            }
        }
    }
}

/// The handover's count of (re)assignments and revocations: a hold's end applies only to the
/// latest assignment.
#[derive(Debug, Default)]
struct Epochs {
    latest: u64,
}

impl Epochs {
    /// A (re)assignment: its epoch.
    fn assigned(&mut self) -> u64 {
        self.latest += 1;
        self.latest
    }

    /// A revocation: the hold of any earlier assignment no longer ends in a resume.
    fn revoked(&mut self) {
        self.latest += 1;
    }

    /// Whether the end of the hold of assignment `epoch` resumes the partitions (no assignment
    /// nor revocation came since).
    fn resumes(&self, epoch: u64) -> bool {
        self.latest == epoch
    }
}

/// Whether an assignment of `partitions` partitions is held for `hold` (no hold, or nothing
/// assigned: nothing to pause).
fn holds(hold: Duration, partitions: usize) -> bool {
    !hold.is_zero() && partitions > 0
}

/// Resumes the tests consumer's partitions when each handover ends (see [`Handover`]): when
/// its hold is over, or as soon as no other member can hold them ([`nobody_before`]).
pub(super) async fn resume_after_handover<C: ConsumerContext + 'static>(
    consumer: Arc<StreamConsumer<C>>,
    group: GroupLook,
    handover: Arc<Handover>,
    mut wake: watch::Receiver<(u64, Option<Instant>)>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (epoch, until) = *wake.borrow_and_update();
        if let Some(until) = until {
            tokio::select! {
                _ = shutdown.changed() => break,
                changed = wake.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(until.into()) => {
                    handover.resume(consumer.as_ref(), epoch);
                }
                true = nobody_before(&consumer, &group) => {
                    tracing::debug!("handover: no other member can hold the partitions: resumed at once");
                    handover.resume(consumer.as_ref(), epoch);
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            changed = wake.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

/// What the early end of a hold looks at: the tests consumer's group and bookkeeping.
pub(super) struct GroupLook {
    /// The consumer group.
    pub(super) group: String,
    /// The tests topic.
    pub(super) topic: String,
    /// The partitions of the tests topic assigned here.
    pub(super) assigned: watch::Receiver<Vec<i32>>,
    /// The tests topic's offsets and the bus's claims and markers read back.
    pub(super) tracker: Arc<Mutex<OffsetTracker>>,
    /// This worker's membership, as its latest assignment set it.
    pub(super) membership: Arc<Mutex<Option<Membership>>>,
}

/// Whether no other member can be running the partitions just assigned, so their hold may end
/// at once. Each source must agree, and any doubt keeps the hold:
/// - the bus: this worker's claims of them are read back, and no other instance's claim or
///   progress marker came before (nobody owned them within the bus's replay window);
/// - the coordinator: the group has one member, this worker;
/// - the tests topic: the group never committed an offset on them (nobody owned them before
///   the replay window either).
///
/// A forged claim or marker on the bus can only keep a hold, never end one.
async fn nobody_before<C: ConsumerContext + 'static>(
    consumer: &Arc<StreamConsumer<C>>,
    group: &GroupLook,
) -> bool {
    let partitions = group.assigned.borrow().clone();
    if partitions.is_empty() {
        return false;
    }
    let first = loop {
        let known = lock(&group.tracker).first_owner(&partitions);
        match known {
            Some(first) => break first,
            None => tokio::time::sleep(CLAIMS_POLL).await,
        }
    };
    if !first {
        return false;
    }
    let look = list_members(consumer, &group.group, &group.topic).await;
    let ours = lock(&group.membership).clone();
    if !coordinator_agrees(ours.as_ref(), look) {
        return false;
    }
    let mut tpl = TopicPartitionList::new();
    for &partition in &partitions {
        tpl.add_partition(&group.topic, partition);
    }
    let asked = consumer.clone();
    let committed = tokio::task::spawn_blocking(move || {
        asked.committed_offsets(tpl, COMMITTED_TIMEOUT).map(|list| {
            list.elements()
                .iter()
                .map(|e| e.offset())
                .collect::<Vec<_>>()
        })
    })
    .await;
    matches!(committed, Ok(Ok(offsets)) if never_committed(&offsets, partitions.len()))
}

/// Whether the coordinator's look at the group leaves this worker (`ours`) alone in it. A
/// broker that cannot describe groups at all (librdkafka's mock cluster, the embedded broker)
/// leaves the word to the bus and the commits: it is no tansu, and rebalances as Apache Kafka
/// does, revoking every member before it assigns anyone. A look that failed keeps the hold.
fn coordinator_agrees(
    ours: Option<&Membership>,
    look: Result<(String, Vec<Member>), Unasked>,
) -> bool {
    match look {
        Ok((_, members)) => sole_member(ours, &members),
        Err(Unasked::Unsupported) => true,
        Err(Unasked::Failed(_)) => false,
    }
}

/// Whether the coordinator lists this worker (`ours`) as the group's only member.
fn sole_member(ours: Option<&Membership>, members: &[Member]) -> bool {
    match (ours, members) {
        (Some(ours), [only]) => only.id == ours.member,
        _ => false,
    }
}

/// Whether the committed offsets of `expected` partitions say that none was ever committed.
fn never_committed(offsets: &[Offset], expected: usize) -> bool {
    offsets.len() == expected && offsets.iter().all(|o| matches!(o, Offset::Invalid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_assignments_hold_ends_in_a_resume() {
        let mut epochs = Epochs::default();
        let first = epochs.assigned();
        assert!(epochs.resumes(first));
        let second = epochs.assigned();
        assert!(
            !epochs.resumes(first),
            "a later assignment has a hold of its own"
        );
        assert!(epochs.resumes(second));
        epochs.revoked();
        assert!(
            !epochs.resumes(second),
            "revoked meanwhile: nothing to resume"
        );
        let third = epochs.assigned();
        assert!(third > second && epochs.resumes(third));
    }

    #[test]
    fn nothing_is_paused_without_a_hold_or_partitions() {
        let hold = Duration::from_secs(6);
        assert!(holds(hold, 2));
        assert!(!holds(Duration::ZERO, 2));
        assert!(!holds(hold, 0));
    }

    #[test]
    fn only_a_group_of_this_worker_alone_is_nobody_else() {
        use super::super::members::member;
        let ours = Membership {
            member: "me".into(),
            generation: 1,
        };
        assert!(sole_member(Some(&ours), &[member("me", &[0, 1])]));
        assert!(!sole_member(
            Some(&ours),
            &[member("me", &[0]), member("other", &[1])]
        ));
        assert!(!sole_member(Some(&ours), &[member("other", &[0, 1])]));
        assert!(
            !sole_member(Some(&ours), &[]),
            "a coordinator listing nobody says nothing"
        );
        assert!(
            !sole_member(None, &[member("me", &[0])]),
            "not joined: unknown"
        );
        let alone = Ok((String::from("Stable"), vec![member("me", &[0])]));
        assert!(coordinator_agrees(Some(&ours), alone));
        assert!(coordinator_agrees(Some(&ours), Err(Unasked::Unsupported)));
        assert!(!coordinator_agrees(
            Some(&ours),
            Err(Unasked::Failed("timed out".into()))
        ));
    }

    #[test]
    fn only_partitions_never_committed_are_fresh() {
        assert!(never_committed(&[Offset::Invalid, Offset::Invalid], 2));
        assert!(!never_committed(&[Offset::Invalid, Offset::Offset(4)], 2));
        assert!(
            !never_committed(&[Offset::Invalid], 2),
            "an answer missing a partition"
        );
        assert!(!never_committed(&[Offset::Offset(0)], 1));
    }
}
