//! At-least-once offset tracking of the tests topic, and who owns a test while it runs.
//!
//! - A test's offset becomes committable only once its report is published; a partition's commit
//!   point is the lowest offset still in flight (or one past the highest received when none is),
//!   so a crash never skips an unfinished test.
//! - Each running test holds a [`Lease`] on its partition. A rebalance first makes every lease
//!   *pending* (Kafka's eager protocol revokes all partitions before it assigns); the assignment
//!   that follows settles them: partitions kept are owned again and their tests go on (the
//!   consumer resumes after what was already read, so nothing runs twice), partitions lost are
//!   *lost* and their tests stop without a report: the new owner runs them and reports them
//!   once (a revoked worker that kept running them reported TIMEOUTs, issue 9).
//! - Attempts: every commit carries, as its metadata, the highest offset the owner had started
//!   and the highest attempt among the tests it had in flight. A new owner gives the tests up to
//!   that offset the next attempt number: they may have run before, on a worker that died.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::watch;

/// Who owns a running test's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// This worker owns it: the test's report is to be published.
    Owned,
    /// A rebalance is under way: whether the partition stays here is not known yet.
    Pending,
    /// Another worker owns it now: the test stops, its report is not published.
    Lost,
}

/// A running test's hold on its partition of the tests topic; see [`Ownership`].
#[derive(Debug, Clone)]
pub struct Lease(watch::Receiver<Ownership>);

impl Lease {
    /// A lease that is always owned (transports without partitions).
    pub fn owned() -> Self {
        // The sender is dropped: `changed` then never resolves, and the value stays `Owned`.
        Lease(watch::channel(Ownership::Owned).1)
    }

    /// The ownership now.
    pub fn now(&self) -> Ownership {
        *self.0.borrow()
    }

    /// Resolves when the partition is lost (never, while it stays owned).
    pub async fn lost(&mut self) {
        if self.0.wait_for(|o| *o == Ownership::Lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until a rebalance under way has settled; true if the partition is still this
    /// worker's. (The worker bounds the wait by its shutdown.)
    pub async fn settled(&mut self) -> bool {
        let settled = self
            .0
            .wait_for(|o| *o != Ownership::Pending)
            .await
            .map(|o| *o);
        match settled {
            Ok(ownership) => ownership == Ownership::Owned,
            // The tracker is gone (the transport closed): nobody can say otherwise.
            Err(_) => self.now() == Ownership::Owned,
        }
    }
}

#[derive(Debug)]
struct PartitionState {
    generation: u64,
    /// Offsets running now, with their attempt numbers.
    in_flight: BTreeMap<i64, u32>,
    /// One past the highest offset received.
    next: Option<i64>,
    /// The last commit sent: offset and metadata.
    committed: Option<(i64, String)>,
    /// Offsets up to this one may have run on an earlier owner, `retry_attempt` times.
    retry_upto: i64,
    retry_attempt: u32,
    ownership: watch::Sender<Ownership>,
}

impl PartitionState {
    fn new(generation: u64, previous: Option<&str>) -> Self {
        let (retry_upto, retry_attempt) = previous.and_then(parse_metadata).unwrap_or((-1, 0));
        PartitionState {
            generation,
            in_flight: BTreeMap::new(),
            next: None,
            committed: None,
            retry_upto,
            retry_attempt,
            ownership: watch::channel(Ownership::Owned).0,
        }
    }

    fn metadata(&self) -> String {
        let started = self.next.map_or(-1, |n| n - 1);
        let attempt = self.in_flight.values().copied().max().unwrap_or(1);
        format!("livecheck:{started}:{attempt}")
    }
}

/// Reads the metadata of an earlier owner's commit: (highest offset started, its attempt).
fn parse_metadata(metadata: &str) -> Option<(i64, u32)> {
    let mut parts = metadata.strip_prefix("livecheck:")?.split(':');
    let started = parts.next()?.parse().ok()?;
    let attempt = parts.next()?.parse().ok()?;
    Some((started, attempt))
}

/// What to do with a message just read.
#[derive(Debug)]
pub(crate) enum Received {
    /// Run it: hand back `generation` in [`OffsetTracker::done`].
    Run {
        generation: u64,
        attempt: u32,
        lease: Lease,
    },
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

    /// The partitions now assigned, with the metadata of each new one's last commit. Kept
    /// partitions go on where they were; lost ones are dropped and their leases lost; new ones
    /// start afresh. Returns where the consumer should resume each kept partition (one past what
    /// it already read), so nothing is fetched and run twice.
    pub(crate) fn assign(
        &mut self,
        partitions: &[i32],
        previous: &HashMap<i32, String>,
    ) -> Vec<(i32, i64)> {
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
            match self.partitions.get(p) {
                Some(state) => {
                    if let Some(next) = state.next {
                        resume.push((*p, next));
                    }
                }
                None => {
                    let state =
                        PartitionState::new(generation, previous.get(p).map(String::as_str));
                    self.partitions.insert(*p, state);
                }
            }
        }
        resume
    }

    /// Whether `partition` is assigned here.
    pub(crate) fn is_assigned(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// A message was read.
    pub(crate) fn received(&mut self, partition: i32, offset: i64) -> Received {
        let Some(state) = self.partitions.get_mut(&partition) else {
            return Received::NotAssigned;
        };
        if state.next.is_some_and(|next| offset < next) {
            return Received::Seen;
        }
        let attempt = if offset <= state.retry_upto {
            state.retry_attempt + 1
        } else {
            1
        };
        state.in_flight.insert(offset, attempt);
        state.next = Some(offset + 1);
        Received::Run {
            generation: state.generation,
            attempt,
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

    /// Commits to send, (partition, next offset to read, metadata), where either moved since
    /// the last call.
    pub(crate) fn take_commits(&mut self) -> Vec<(i32, i64, String)> {
        let mut out = Vec::new();
        for (partition, state) in &mut self.partitions {
            let Some(next) = state.next else { continue };
            let point = state.in_flight.keys().next().copied().unwrap_or(next);
            let metadata = state.metadata();
            let moved = state
                .committed
                .as_ref()
                .is_none_or(|(c, m)| point > *c || *m != metadata);
            if moved {
                state.committed = Some((point, metadata.clone()));
                out.push((*partition, point, metadata));
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut OffsetTracker, partition: i32, offset: i64) -> (u64, u32, Lease) {
        match t.received(partition, offset) {
            Received::Run {
                generation,
                attempt,
                lease,
            } => (generation, attempt, lease),
            other => panic!("{partition}/{offset} not run: {other:?}"),
        }
    }

    fn points(commits: Vec<(i32, i64, String)>) -> Vec<(i32, i64)> {
        commits.into_iter().map(|(p, o, _)| (p, o)).collect()
    }

    #[test]
    fn commits_stop_below_the_oldest_unfinished_test() {
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1], &HashMap::new());
        let (g, ..) = run(&mut t, 0, 10);
        run(&mut t, 0, 11);
        run(&mut t, 0, 12);
        t.done(0, 11, g);
        t.done(0, 12, g);
        assert_eq!(points(t.take_commits()), [(0, 10)]);
        t.done(0, 10, g);
        assert_eq!(points(t.take_commits()), [(0, 13)]);
        assert_eq!(t.take_commits(), []);
    }

    #[test]
    fn a_kept_partition_goes_on_and_a_lost_one_stops_its_tests() {
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1], &HashMap::new());
        let (g0, _, lease0) = run(&mut t, 0, 5);
        let (_, _, lease1) = run(&mut t, 1, 7);
        t.revoke_all();
        assert_eq!(lease0.now(), Ownership::Pending);
        let resume = t.assign(&[0], &HashMap::new());
        assert_eq!(resume, [(0, 6)], "resume after what was read");
        assert_eq!(lease0.now(), Ownership::Owned);
        assert_eq!(lease1.now(), Ownership::Lost);
        // A redelivery of a test read before the rebalance is not run again.
        assert!(matches!(t.received(0, 5), Received::Seen));
        assert!(matches!(t.received(1, 7), Received::NotAssigned));
        // The running test's ack still counts.
        t.done(0, 5, g0);
        assert_eq!(points(t.take_commits()), [(0, 6)]);
    }

    #[test]
    fn tests_an_earlier_owner_started_are_marked_as_further_attempts() {
        let mut first = OffsetTracker::default();
        first.assign(&[0], &HashMap::new());
        let (g, ..) = run(&mut first, 0, 10);
        run(&mut first, 0, 11);
        run(&mut first, 0, 12);
        first.done(0, 10, g);
        let commits = first.take_commits();
        assert_eq!(commits, [(0, 11, "livecheck:12:1".to_owned())]);
        // The first owner dies; the next one reads its last commit.
        let mut second = OffsetTracker::default();
        second.assign(&[0], &HashMap::from([(0, commits[0].2.clone())]));
        assert_eq!(run(&mut second, 0, 11).1, 2);
        assert_eq!(run(&mut second, 0, 12).1, 2);
        assert_eq!(run(&mut second, 0, 13).1, 1, "never started before");
        assert_eq!(second.take_commits()[0].2, "livecheck:13:2");
        // Metadata of other tools is ignored.
        let mut third = OffsetTracker::default();
        third.assign(&[0], &HashMap::from([(0, "something else".to_owned())]));
        assert_eq!(run(&mut third, 0, 0).1, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_waits_for_the_rebalance_to_settle() {
        let mut t = OffsetTracker::default();
        t.assign(&[0], &HashMap::new());
        let (_, _, mut lease) = run(&mut t, 0, 1);
        assert!(lease.settled().await);
        t.revoke_all();
        let waiting = tokio::spawn({
            let mut lease = lease.clone();
            async move { lease.settled().await }
        });
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "pending until the assignment");
        t.assign(&[], &HashMap::new());
        assert!(!waiting.await.unwrap(), "lost");
        lease.lost().await;
    }
}
