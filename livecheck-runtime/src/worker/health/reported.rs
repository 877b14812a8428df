//! The tests whose report the group has published: the worker runs a test delivered again
//! once, and counts a second report of a test once.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Utc};

/// The tests whose report the group has published, by case and test id (two cases may be
/// triggered with one id, Faust's `order.id` pattern), remembered for a while: a test delivered
/// again (after a rebalance or a restart) is not run again, and a second report of a test is
/// not counted twice. Bounded by count, and each test is forgotten once it has expired (a test
/// past its `expires` is skipped anyway).
///
/// Ids are kept as 64-bit hashes (about 30 bytes a test instead of about 150 with the strings):
/// at the default capacity of 100,000, two ids share a hash with a probability near 3 × 10⁻¹⁰.
#[derive(Debug)]
pub(crate) struct ReportedTests {
    ids: HashSet<u64>,
    /// In insertion order, with the test's expiry (Unix milliseconds).
    order: VecDeque<(u64, i64)>,
    capacity: usize,
}

impl ReportedTests {
    /// Remembers at most `capacity` tests.
    pub(crate) fn new(capacity: usize) -> Self {
        ReportedTests {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn key(case: &str, id: &str) -> u64 {
        let mut hasher = DefaultHasher::new();
        (case, id).hash(&mut hasher);
        hasher.finish()
    }

    /// Whether a report of `case`'s test `id` was published.
    pub(crate) fn contains(&self, case: &str, id: &str) -> bool {
        self.ids.contains(&Self::key(case, id))
    }

    /// Records a report of `case`'s test `id` (which expires at `expires`); false if one was
    /// recorded already.
    pub(crate) fn insert(&mut self, case: &str, id: &str, expires: DateTime<Utc>) -> bool {
        let now = Utc::now().timestamp_millis();
        while let Some(&(old, _)) = self.order.front().filter(|(_, until)| *until <= now) {
            self.order.pop_front();
            self.ids.remove(&old);
        }
        if self.capacity == 0 {
            return true;
        }
        let key = Self::key(case, id);
        if !self.ids.insert(key) {
            return false;
        }
        self.order.push_back((key, expires.timestamp_millis()));
        while self.order.len() > self.capacity {
            if let Some((old, _)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }

    /// Forgets `case`'s test `id` (its report could not be published after all).
    pub(crate) fn remove(&mut self, case: &str, id: &str) {
        let key = Self::key(case, id);
        if self.ids.remove(&key) {
            self.order.retain(|(k, _)| *k != key);
        }
    }

    /// Tests remembered.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_tests_are_bounded_by_count_and_expiry() {
        let soon = Utc::now() + chrono::Duration::hours(1);
        let mut reported = ReportedTests::new(3);
        assert!(reported.insert("c", "a", soon));
        assert!(
            !reported.insert("c", "a", soon),
            "a second report of a test"
        );
        assert!(reported.contains("c", "a"));
        assert!(!reported.contains("other case", "a"), "ids are per case");
        assert!(reported.insert("other case", "a", soon));
        for id in ["b", "c", "d"] {
            assert!(reported.insert("c", id, soon));
        }
        assert_eq!(reported.len(), 3);
        assert!(
            !reported.contains("c", "a"),
            "the oldest is forgotten first"
        );
        let expired = Utc::now() - chrono::Duration::seconds(1);
        let mut reported = ReportedTests::new(10);
        assert!(reported.insert("c", "old", expired));
        assert!(reported.insert("c", "new", soon));
        assert!(
            !reported.contains("c", "old"),
            "expired tests are forgotten"
        );
        reported.remove("c", "new");
        assert!(!reported.contains("c", "new"));
        assert_eq!(reported.len(), 0);
    }
}
