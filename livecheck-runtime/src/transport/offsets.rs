//! At-least-once offset tracking of the Kafka transport's tests topic, and the leases of its
//! running tests.
//!
//! - A test's offset becomes committable only once its report is published; a partition's commit
//!   point is the lowest offset still in flight (or one past the highest received when none is),
//!   so a crash never skips an unfinished test.
//! - Each running test holds a [`Lease`] on its partition. A rebalance first makes every lease
//!   *pending* (Kafka's eager protocol revokes all partitions before it assigns); the assignment
//!   that follows settles them: partitions kept are owned again and their tests go on (the
//!   consumer resumes after what was already read, so nothing runs twice), partitions lost are
//!   *lost* and their tests stop without a report: the new owner runs them and reports them
//!   once (a revoked worker that kept running them reported TIMEOUTs).
//! - Attempts: every 100 ms while it works, the owner of a partition writes a *progress marker*
//!   to the bus partition of the same number: the highest offset it has started, and the highest
//!   attempt among its tests in flight. A new owner replays the bus anyway (for the signals), so
//!   it reads the markers of earlier owners and gives the tests up to their offsets the next
//!   attempt number: they may have run before, on a worker that died. (Kafka's commit metadata
//!   would be the natural place, but tansu 0.6.0 drops it.)
//! - Fencing: at every assignment the owner also writes a *claim* on the bus partition of each
//!   partition it was given: its instance, its member id and the group's generation. The claims
//!   of a partition are totally ordered by their bus offsets, and every reader sees the same
//!   order. An owner that reads another instance's claim *after* its own current claim may have
//!   been superseded — but the bus is untrusted input (anyone can write a claim), so the claim
//!   fences only once the group's coordinator agrees: this worker is no longer a member, or the
//!   claiming member is one, in a generation at least this worker's, and (where the broker
//!   describes assignments) owns the partition. Then the partition is *fenced* here — its tests
//!   stop unreported (the new owner runs them), nothing more of it is run or committed, until an
//!   assignment gives it back. Apache Kafka never needs this (it revokes before it assigns);
//!   tansu 0.6.0 completes a rebalance before the other members hear of it, and an old owner
//!   that did not hear for longer than the new owner's handover ran tests twice.
//!   Claims written before one's own are earlier owners'; an earlier owner's claim that lands
//!   after the new owner's (its producer slow) names an older generation and is not believed.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::watch;

use super::lease::{Lease, Ownership};

/// What an earlier owner of a partition said of its progress.
#[derive(Debug)]
struct Earlier {
    instance: String,
    started_upto: i64,
    attempt: u32,
}

#[derive(Debug)]
struct PartitionState {
    generation: u64,
    /// Offsets running now.
    in_flight: BTreeSet<i64>,
    /// One past the highest offset received.
    next: Option<i64>,
    /// The last offset committed.
    committed: Option<i64>,
    /// The last progress marker written: (highest offset started, attempt).
    marked: Option<(i64, u32)>,
    /// Progress markers of earlier owners, one per worker instance.
    earlier: Vec<Earlier>,
    /// The generation of this worker's latest claim on the partition.
    claimed: u64,
    /// Whether that claim has been read back from the bus (claims of others read before it are
    /// earlier owners'; after it, a successor's).
    claim_read: bool,
    /// Whether a claim of another instance was read before this worker's own: an earlier owner,
    /// which may still be running the partition's tests.
    earlier_claim: bool,
    ownership: watch::Sender<Ownership>,
}

impl PartitionState {
    fn new(generation: u64) -> Self {
        PartitionState {
            generation,
            in_flight: BTreeSet::new(),
            next: None,
            committed: None,
            marked: None,
            earlier: Vec::new(),
            claimed: generation,
            claim_read: false,
            earlier_claim: false,
            ownership: watch::channel(Ownership::Owned).0,
        }
    }

    /// The run number of the test at `offset`: one more than the most any earlier owner that
    /// got that far had.
    fn attempt(&self, offset: i64) -> u32 {
        // Saturating: a marker is untrusted input, and `attempt` may be u32::MAX.
        self.earlier
            .iter()
            .filter(|e| e.started_upto >= offset)
            .map(|e| e.attempt)
            .max()
            .unwrap_or(0)
            .saturating_add(1)
    }
}

/// What to do with a message just read.
#[derive(Debug)]
pub(crate) enum Received {
    /// Run it: hand back `generation` in [`OffsetTracker::done`].
    Run { generation: u64, lease: Lease },
    /// Already read under the current ownership (running or done): skip it.
    Seen,
    /// The partition is not assigned here (a message fetched before a revocation).
    NotAssigned,
}

/// Per-partition in-flight offsets of the tests topic.
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
    generation: u64,
}

impl OffsetTracker {
    /// A rebalance began: every lease is pending until [`assign`](Self::assign) settles it.
    pub(crate) fn revoke_all(&mut self) {
        for state in self.partitions.values() {
            state.ownership.send_replace(Ownership::Pending);
        }
    }

    /// The partitions now assigned. Kept partitions go on where they were; lost ones are
    /// dropped and their leases lost; new ones start afresh. Returns where the consumer should
    /// resume each kept partition (one past what it already read), so nothing is fetched and
    /// run twice.
    pub(crate) fn assign(&mut self, partitions: &[i32]) -> Vec<(i32, i64)> {
        self.generation += 1;
        let generation = self.generation;
        self.partitions.retain(|p, state| {
            let kept = partitions.contains(p);
            state.ownership.send_replace(if kept {
                Ownership::Owned
            } else {
                Ownership::Lost
            });
            kept
        });
        let mut resume = Vec::new();
        for p in partitions {
            match self.partitions.get_mut(p) {
                Some(state) => {
                    state.claimed = generation;
                    state.claim_read = false;
                    if let Some(next) = state.next {
                        resume.push((*p, next));
                    }
                }
                None => {
                    self.partitions.insert(*p, PartitionState::new(generation));
                }
            }
        }
        resume
    }

    /// The generation of the latest assignment: the claim this worker writes for it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// This worker's own claim of `partition` for its assignment `assignment`, read back from
    /// the bus: claims of others read from now on are a successor's, not an earlier owner's.
    pub(crate) fn note_own_claim(&mut self, partition: i32, assignment: u64) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            if assignment == state.claimed {
                state.claim_read = true;
            }
        }
    }

    /// A claim of `partition` by another instance, read before this worker's own: an earlier
    /// owner's (see [`first_owner`](Self::first_owner)).
    pub(crate) fn note_earlier_claim(&mut self, partition: i32) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.earlier_claim = true;
        }
    }

    /// Whether this worker is the first owner of each of `partitions` as far as the bus tells:
    /// each is new here at the latest assignment, its own claim is read back (so the bus replay
    /// has passed every claim written before it), and no other instance's claim nor progress
    /// marker came before. `None` while some claim is not read back yet.
    pub(crate) fn first_owner(&self, partitions: &[i32]) -> Option<bool> {
        let mut first = true;
        for partition in partitions {
            let state = self.partitions.get(partition)?;
            if !state.claim_read || state.claimed != self.generation {
                return None;
            }
            first &= state.generation == self.generation
                && !state.earlier_claim
                && state.earlier.is_empty();
        }
        Some(first)
    }

    /// Whether this worker's current claim of `partition` has been read back: a claim of
    /// another instance read now came after it.
    pub(crate) fn claimed_here(&self, partition: i32) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|state| state.claim_read)
    }

    /// Fences `partition` here: another instance claimed it after this worker's current claim,
    /// and the coordinator vouched for it. Its tests in flight are lost (they stop
    /// unreported), its later messages are not run, nothing more of it is committed — until an
    /// assignment gives it back (see the module docs). True if it fenced.
    pub(crate) fn fence(&mut self, partition: i32) -> bool {
        let Some(state) = self.partitions.get(&partition) else {
            return false;
        };
        if !state.claim_read {
            return false; // reassigned meanwhile: its claim is newer than the one judged
        }
        state.ownership.send_replace(Ownership::Lost);
        self.partitions.remove(&partition);
        true
    }

    /// A message was read.
    pub(crate) fn received(&mut self, partition: i32, offset: i64) -> Received {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return Received::NotAssigned;
        };
        if state.next.is_some_and(|next| offset < next) {
            return Received::Seen;
        }
        state.in_flight.insert(offset);
        state.next = Some(offset.saturating_add(1));
        Received::Run {
            generation: state.generation,
            lease: Lease(state.ownership.subscribe()),
        }
    }

    /// The message is fully handled.
    pub(crate) fn done(&mut self, partition: i32, offset: i64, generation: u64) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            if state.generation == generation {
                state.in_flight.remove(&offset);
            }
        }
    }

    /// The run number of the test at `offset` (1 if nothing says it ran before).
    pub(crate) fn attempt(&self, partition: i32, offset: i64) -> u32 {
        self.partitions
            .get(&partition)
            .map_or(1, |state| state.attempt(offset))
    }

    /// Another worker instance's progress marker, read from the bus.
    pub(crate) fn note_progress(
        &mut self,
        partition: i32,
        instance: &str,
        started_upto: i64,
        attempt: u32,
    ) {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return; // read again when the partition is assigned here
        };
        match state.earlier.iter_mut().find(|e| e.instance == instance) {
            Some(earlier) => {
                earlier.started_upto = earlier.started_upto.max(started_upto);
                earlier.attempt = earlier.attempt.max(attempt);
            }
            None => state.earlier.push(Earlier {
                instance: instance.to_owned(),
                started_upto,
                attempt,
            }),
        }
    }

    /// Commits to send, (partition, next offset to read), that moved since the last call.
    pub(crate) fn take_commits(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (partition, state) in &mut self.partitions {
            let Some(next) = state.next else { continue };
            let point = state.in_flight.first().copied().unwrap_or(next);
            if state.committed.is_none_or(|c| point > c) {
                state.committed = Some(point);
                out.push((*partition, point));
            }
        }
        out.sort_unstable();
        out
    }

    /// Commits the broker refused, (partition, offset): each is sent again by the next
    /// [`take_commits`](Self::take_commits), unless a later one was taken meanwhile.
    pub(crate) fn commit_refused(&mut self, refused: &[(i32, i64)]) {
        for (partition, offset) in refused {
            if let Some(state) = self.partitions.get_mut(partition) {
                if state.committed == Some(*offset) {
                    state.committed = None;
                }
            }
        }
    }

    /// Progress markers to write, (partition, highest offset started, highest attempt in
    /// flight), that changed since the last call.
    pub(crate) fn take_progress(&mut self) -> Vec<(i32, i64, u32)> {
        let mut out = Vec::new();
        for (partition, state) in &mut self.partitions {
            let Some(next) = state.next else { continue };
            // Only the oldest test in flight can have the highest attempt (earlier owners'
            // markers cover every offset up to theirs).
            let attempt = state
                .in_flight
                .first()
                .map_or(1, |oldest| state.attempt(*oldest));
            let mark = (next.saturating_sub(1), attempt);
            if state.marked != Some(mark) {
                state.marked = Some(mark);
                out.push((*partition, mark.0, mark.1));
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut OffsetTracker, partition: i32, offset: i64) -> (u64, Lease) {
        match t.received(partition, offset) {
            Received::Run { generation, lease } => (generation, lease),
            other => panic!("{partition}/{offset} not run: {other:?}"),
        }
    }

    #[test]
    fn commits_stop_below_the_oldest_unfinished_test() {
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1]);
        let (g, _) = run(&mut t, 0, 10);
        run(&mut t, 0, 11);
        run(&mut t, 0, 12);
        t.done(0, 11, g);
        t.done(0, 12, g);
        assert_eq!(t.take_commits(), [(0, 10)]);
        t.done(0, 10, g);
        assert_eq!(t.take_commits(), [(0, 13)]);
        assert_eq!(t.take_commits(), []);
    }

    #[test]
    fn a_refused_commit_is_sent_again() {
        let mut t = OffsetTracker::default();
        t.assign(&[0]);
        let (g, _) = run(&mut t, 0, 10);
        t.done(0, 10, g);
        assert_eq!(t.take_commits(), [(0, 11)]);
        assert_eq!(t.take_commits(), [], "sent once while it stands");
        t.commit_refused(&[(0, 11)]);
        assert_eq!(
            t.take_commits(),
            [(0, 11)],
            "sent again after the broker refused it"
        );
        // A refusal of an older commit, after a later one was taken, changes nothing.
        let (g, _) = run(&mut t, 0, 11);
        t.done(0, 11, g);
        assert_eq!(t.take_commits(), [(0, 12)]);
        t.commit_refused(&[(0, 11)]);
        assert_eq!(t.take_commits(), []);
    }

    #[test]
    fn a_kept_partition_goes_on_and_a_lost_one_stops_its_tests() {
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1]);
        let (g0, lease0) = run(&mut t, 0, 5);
        let (_, lease1) = run(&mut t, 1, 7);
        t.revoke_all();
        assert_eq!(lease0.now(), Ownership::Pending);
        let resume = t.assign(&[0]);
        assert_eq!(resume, [(0, 6)], "resume after what was read");
        assert_eq!(lease0.now(), Ownership::Owned);
        assert_eq!(lease1.now(), Ownership::Lost);
        // A redelivery of a test read before the rebalance is not run again.
        assert!(matches!(t.received(0, 5), Received::Seen));
        assert!(matches!(t.received(1, 7), Received::NotAssigned));
        // The running test's ack still counts.
        t.done(0, 5, g0);
        assert_eq!(t.take_commits(), [(0, 6)]);
    }

    #[test]
    fn tests_an_earlier_owner_started_are_marked_as_further_attempts() {
        let mut first = OffsetTracker::default();
        first.assign(&[0]);
        let (g, _) = run(&mut first, 0, 10);
        run(&mut first, 0, 11);
        run(&mut first, 0, 12);
        first.done(0, 10, g);
        let progress = first.take_progress();
        assert_eq!(progress, [(0, 12, 1)]);
        assert_eq!(first.take_progress(), [], "written once");
        // The first owner dies; the next one reads its marker from the bus.
        let mut second = OffsetTracker::default();
        second.assign(&[0]);
        second.note_progress(0, "first", 12, 1);
        run(&mut second, 0, 11);
        assert_eq!(second.attempt(0, 11), 2);
        assert_eq!(second.attempt(0, 12), 2);
        assert_eq!(second.attempt(0, 13), 1, "never started before");
        assert_eq!(second.take_progress(), [(0, 11, 2)]);
        // A third owner after the second died too.
        let mut third = OffsetTracker::default();
        third.assign(&[0]);
        third.note_progress(0, "first", 12, 1);
        third.note_progress(0, "second", 11, 2);
        assert_eq!(third.attempt(0, 11), 3);
        assert_eq!(third.attempt(0, 12), 2);
        // Markers of partitions not assigned here are not kept.
        third.note_progress(5, "first", 1, 1);
        assert_eq!(third.attempt(5, 0), 1);
    }

    #[test]
    fn a_claim_after_the_own_one_fences_the_partition() {
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1]);
        let g = t.generation();
        let (_, lease) = run(&mut t, 0, 5);
        t.done(0, 5, g);
        let (_, running) = run(&mut t, 0, 6);
        assert_eq!(t.take_commits(), [(0, 6)]);
        // Claims read before this worker's own are earlier owners'.
        assert!(!t.claimed_here(0));
        assert!(!t.fence(0), "no own claim read yet");
        assert_eq!(running.now(), Ownership::Owned);
        // A claim of this worker's for an earlier assignment is not the current one.
        t.note_own_claim(0, g - 1);
        assert!(!t.claimed_here(0));
        // Its own current claim, then a successor's (vouched for): fenced.
        t.note_own_claim(0, g);
        assert!(t.claimed_here(0));
        assert!(t.fence(0));
        assert_eq!(running.now(), Ownership::Lost, "the test in flight stops");
        assert_eq!(lease.now(), Ownership::Lost);
        assert!(
            matches!(t.received(0, 7), Received::NotAssigned),
            "nothing more runs"
        );
        t.done(0, 6, g);
        assert_eq!(t.take_commits(), [], "nothing more is committed");
        assert_eq!(t.take_progress(), [], "nor marked");
        // Partition 1 is not touched; an assignment gives partition 0 back.
        assert!(!t.fence(1), "no own claim read yet on 1");
        t.assign(&[0, 1]);
        assert!(
            matches!(t.received(0, 6), Received::Run { .. }),
            "from the committed offset"
        );
        assert!(!t.claimed_here(0), "the new own claim is not read yet");
    }

    #[test]
    fn a_first_owner_is_known_once_its_claims_are_read_back_with_nobody_before() {
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1]);
        let g = t.generation();
        assert_eq!(t.first_owner(&[0, 1]), None, "no own claim read back yet");
        t.note_own_claim(0, g);
        assert_eq!(t.first_owner(&[0, 1]), None, "partition 1's not yet");
        t.note_own_claim(1, g);
        assert_eq!(
            t.first_owner(&[0, 1]),
            Some(true),
            "nobody claimed them before"
        );
        assert_eq!(t.first_owner(&[2]), None, "not assigned here");

        // An earlier owner's claim, read before the own one: not the first owner.
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1]);
        let g = t.generation();
        t.note_earlier_claim(1);
        t.note_own_claim(0, g);
        t.note_own_claim(1, g);
        assert_eq!(t.first_owner(&[0, 1]), Some(false));
        assert_eq!(t.first_owner(&[0]), Some(true));

        // An earlier owner's progress marker: the same.
        let mut t = OffsetTracker::default();
        t.assign(&[0]);
        t.note_progress(0, "earlier", 4, 1);
        t.note_own_claim(0, t.generation());
        assert_eq!(t.first_owner(&[0]), Some(false));

        // A partition kept from an earlier assignment of this worker was owned before.
        let mut t = OffsetTracker::default();
        t.assign(&[0]);
        t.assign(&[0, 1]);
        let g = t.generation();
        t.note_own_claim(0, g);
        t.note_own_claim(1, g);
        assert_eq!(t.first_owner(&[1]), Some(true));
        assert_eq!(t.first_owner(&[0, 1]), Some(false));
    }

    #[test]
    fn markers_with_extreme_numbers_saturate() {
        let mut t = OffsetTracker::default();
        t.assign(&[0]);
        t.note_progress(0, "forger", i64::MAX, u32::MAX);
        assert_eq!(t.attempt(0, 3), u32::MAX, "saturates, no overflow");
        run(&mut t, 0, i64::MAX);
        assert_eq!(t.take_progress(), [(0, i64::MAX - 1, u32::MAX)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_waits_for_the_rebalance_to_settle() {
        let mut t = OffsetTracker::default();
        t.assign(&[0]);
        let (_, mut lease) = run(&mut t, 0, 1);
        assert!(lease.settled().await);
        t.revoke_all();
        let waiting = tokio::spawn({
            let mut lease = lease.clone();
            async move { lease.settled().await }
        });
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "pending until the assignment");
        t.assign(&[]);
        assert!(!waiting.await.unwrap(), "lost");
        lease.lost().await;
    }
}
