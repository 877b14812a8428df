//! The handover after a partition assignment: the partitions assigned are held (paused) long
//! enough for an earlier owner the broker did not fence to stop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::TopicPartitionList;
use tokio::sync::watch;

use crate::lock::lock;

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

/// Resumes the tests consumer's partitions when each handover ends (see [`Handover`]).
pub(super) async fn resume_after_handover<C: ConsumerContext + 'static>(
    consumer: Arc<StreamConsumer<C>>,
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
}
