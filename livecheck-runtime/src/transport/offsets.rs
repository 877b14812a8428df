//! At-least-once offset tracking: a test's offset becomes committable only once its report is
//! published, and a partition's commit point is the lowest offset still in flight (or one past
//! the highest received when none is), so a crash never skips an unfinished test.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct PartitionState {
    generation: u64,
    in_flight: BTreeSet<i64>,
    next: Option<i64>,
    committed: Option<i64>,
}

/// Per-partition in-flight offsets of the tests topic.
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
    generation: u64,
}

impl OffsetTracker {
    /// The partitions now assigned: new ones start afresh, others are forgotten, and acks of
    /// messages read under an earlier assignment are ignored from now on.
    pub(crate) fn assign(&mut self, partitions: &[i32]) {
        self.generation += 1;
        let generation = self.generation;
        self.partitions.retain(|p, _| partitions.contains(p));
        for p in partitions {
            let state = self.partitions.entry(*p).or_default();
            *state = PartitionState {
                generation,
                ..PartitionState::default()
            };
        }
    }

    /// A message was read; returns the generation to hand back in [`done`](Self::done).
    pub(crate) fn received(&mut self, partition: i32, offset: i64) -> Option<u64> {
        let state = self.partitions.get_mut(&partition)?;
        state.in_flight.insert(offset);
        state.next = Some(state.next.map_or(offset + 1, |n| n.max(offset + 1)));
        Some(state.generation)
    }

    /// The message is fully handled.
    pub(crate) fn done(&mut self, partition: i32, offset: i64, generation: u64) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            if state.generation == generation {
                state.in_flight.remove(&offset);
            }
        }
    }

    /// Offsets to commit (partition, next offset to read) that moved since the last call.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_stop_below_the_oldest_unfinished_test() {
        let mut t = OffsetTracker::default();
        t.assign(&[0, 1]);
        let g = t.received(0, 10).unwrap();
        t.received(0, 11);
        t.received(0, 12);
        t.done(0, 11, g);
        t.done(0, 12, g);
        assert_eq!(t.take_commits(), [(0, 10)]);
        t.done(0, 10, g);
        assert_eq!(t.take_commits(), [(0, 13)]);
        assert_eq!(t.take_commits(), []);
    }

    #[test]
    fn acks_from_an_old_assignment_are_ignored() {
        let mut t = OffsetTracker::default();
        t.assign(&[0]);
        let old = t.received(0, 5).unwrap();
        t.assign(&[0]);
        let new = t.received(0, 5).unwrap();
        t.done(0, 5, old);
        assert_eq!(t.take_commits(), [(0, 5)]);
        t.done(0, 5, new);
        assert_eq!(t.take_commits(), [(0, 6)]);
        assert_eq!(t.received(3, 1), None, "unassigned partition");
    }
}
