//! The signal store: signals that arrived, waiters that wait for them, and when they are let go.
//!
//! Signals are keyed by (case, test id, signal name), as Faust's `_resolved_signals` index them
//! (faust/livecheck/signals.py:83-84 `_index_key`: signal name, case name, key): two cases
//! triggered with one id, each with a signal of the same name, do not see each other's values.
//! A signal sent twice resolves to the latest value (signals.py:86-87 overwrites the entry).
//!
//! Fixes three of Faust's defects: a waiter is woken by its own signal only (Faust wakes every
//! waiter on every signal and re-polls every 2 s, signals.py:67-78, 171-206); a signal that
//! arrives before its `wait` is kept and found; and memory follows the work in flight: a test's
//! signals are [released](SignalStore::release) once its report is out, and signals whose test
//! is never seen are forgotten `test_expires` after they arrived (Faust keeps every signal for
//! ever, app.py `_resolved_signals`).

// Filled by the worker; a service build keeps it for `Signal::wait` in the cases it compiles.
#![cfg_attr(not(feature = "worker"), allow(dead_code))]

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::lock::lock;

/// A test of a case: the case name and the test id in one allocation, as `LEN:CASEID` (LEN the
/// case name's length, so no two pairs share a key). Shared by the table and its expiry index.
type TestKey = Arc<str>;

fn test_key(case: &str, id: &str) -> String {
    let mut text = String::with_capacity(case.len() + id.len() + 4);
    let _ = write!(text, "{}:", case.len());
    text.push_str(case);
    text.push_str(id);
    text
}

enum Slot {
    /// The signal arrived (its latest value).
    Resolved(Value),
    /// Tasks waiting for it: the first in place (there is almost always just one), others after.
    Waiting(oneshot::Sender<Value>, Vec<oneshot::Sender<Value>>),
}

impl Slot {
    /// Whether a task still waits here.
    fn has_live_waiter(&self) -> bool {
        match self {
            Slot::Resolved(_) => false,
            Slot::Waiting(first, more) => !first.is_closed() || more.iter().any(|w| !w.is_closed()),
        }
    }
}

/// The signals of one test.
struct TestSignals {
    /// Where it sits in the expiry index, once a signal arrived for it.
    expiry: Option<(Instant, u64)>,
    /// By signal name: a name from a `signal!` (a waiter) is borrowed, one from the bus is the
    /// event's own string. A few signals a test, so a vector, grown one at a time.
    signals: Vec<(Cow<'static, str>, Slot)>,
}

impl TestSignals {
    fn slot(&mut self, signal: &str) -> Option<&mut Slot> {
        self.signals
            .iter_mut()
            .find(|(name, _)| name == signal)
            .map(|(_, slot)| slot)
    }

    fn push(&mut self, signal: Cow<'static, str>, slot: Slot) {
        // Exact: a vector's first growth is to 4 entries (256 bytes here), and most tests
        // have 1 to 4 signals.
        self.signals.reserve_exact(1);
        self.signals.push((signal, slot));
    }
}

#[derive(Default)]
struct Inner {
    tests: HashMap<TestKey, TestSignals>,
    /// Tests holding signals, by the instant they may be forgotten; a test leaves it when it
    /// is released, so it holds only the tests in flight or not seen yet (a lazily cleaned heap
    /// would keep an item per test for `test_expires`: ~100 MB at 100 tests/s for 3 h).
    expiry: BTreeMap<(Instant, u64), TestKey>,
    next_seq: u64,
    /// Slots in `tests` (resolved signals and signals being waited for).
    slots: usize,
}

impl Inner {
    /// Drops what `keep` rejects from the test's slots; removes the test when none is left.
    fn retain(&mut self, key: &str, keep: impl Fn(&Slot) -> bool) {
        let Some(test) = self.tests.get_mut(key) else {
            return;
        };
        let before = test.signals.len();
        test.signals.retain(|(_, slot)| keep(slot));
        self.slots -= before - test.signals.len();
        if test.signals.is_empty() {
            if let Some(at) = self.tests.remove(key).and_then(|test| test.expiry) {
                self.expiry.remove(&at);
            }
        }
    }
}

/// Signals by (case, test id, signal name).
#[derive(Default)]
pub(crate) struct SignalStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SignalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = lock(&self.inner);
        f.debug_struct("SignalStore")
            .field("tests", &inner.tests.len())
            .field("slots", &inner.slots)
            .finish()
    }
}

/// What [`SignalStore::wait`] found.
pub(crate) enum Lookup {
    /// Already there.
    Ready(Value),
    /// Not yet: this receiver gets it.
    Pending(oneshot::Receiver<Value>),
}

impl SignalStore {
    /// Records that `signal` of `case` arrived for test `id` and wakes its waiters. A signal
    /// that arrives again replaces the value (Faust: signals.py:86-87), for later waits.
    ///
    /// Unless the test is released first, its signals are forgotten `keep_for` (the case's
    /// `test_expires`) after the first of them arrived.
    pub(crate) fn resolve(
        &self,
        case: &str,
        id: &str,
        signal: impl Into<Cow<'static, str>>,
        value: Value,
        keep_for: Duration,
    ) {
        let now = Instant::now();
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let key = test_key(case, id);
        if !inner.tests.contains_key(key.as_str()) {
            let test = TestSignals {
                expiry: None,
                signals: Vec::new(),
            };
            inner.tests.insert(Arc::from(key.as_str()), test);
        }
        let Some(test) = inner.tests.get_mut(key.as_str()) else {
            return;
        };
        let signal = signal.into();
        match test.slot(&signal) {
            Some(slot @ Slot::Resolved(_)) => *slot = Slot::Resolved(value),
            Some(slot) => {
                if let Slot::Waiting(first, more) =
                    std::mem::replace(slot, Slot::Resolved(value.clone()))
                {
                    for waiter in std::iter::once(first).chain(more) {
                        let _ = waiter.send(value.clone());
                    }
                }
            }
            None => {
                test.push(signal, Slot::Resolved(value));
                inner.slots += 1;
            }
        }
        if test.expiry.is_none() {
            let at = (now + keep_for, inner.next_seq);
            inner.next_seq += 1;
            test.expiry = Some(at);
            if let Some((shared, _)) = inner.tests.get_key_value(key.as_str()) {
                let shared = shared.clone();
                inner.expiry.insert(at, shared);
            }
        }
        Self::expire_locked(inner, now);
    }

    /// Looks the signal up, registering a waiter if it is not there yet.
    pub(crate) fn wait(&self, case: &str, id: &str, signal: &'static str) -> Lookup {
        let mut guard = lock(&self.inner);
        let inner = &mut *guard;
        let key = test_key(case, id);
        if let Some(test) = inner.tests.get_mut(key.as_str()) {
            match test.slot(signal) {
                Some(Slot::Resolved(value)) => return Lookup::Ready(value.clone()),
                Some(Slot::Waiting(_, more)) => {
                    let (tx, rx) = oneshot::channel();
                    more.push(tx);
                    return Lookup::Pending(rx);
                }
                None => {
                    let (tx, rx) = oneshot::channel();
                    test.push(Cow::Borrowed(signal), Slot::Waiting(tx, Vec::new()));
                    inner.slots += 1;
                    return Lookup::Pending(rx);
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        let mut test = TestSignals {
            expiry: None,
            signals: Vec::new(),
        };
        test.push(Cow::Borrowed(signal), Slot::Waiting(tx, Vec::new()));
        inner.tests.insert(Arc::from(key), test);
        inner.slots += 1;
        Lookup::Pending(rx)
    }

    /// Drops the waiters of a signal whose receivers are gone (a wait that timed out or was
    /// dropped); the slot goes when no waiter is left.
    pub(crate) fn forget_waiter(&self, case: &str, id: &str, signal: &str) {
        let mut inner = lock(&self.inner);
        let key = test_key(case, id);
        let Some(test) = inner.tests.get_mut(key.as_str()) else {
            return;
        };
        let emptied = match test.slot(signal) {
            Some(Slot::Waiting(first, more)) => {
                more.retain(|w| !w.is_closed());
                if first.is_closed() {
                    match more.pop() {
                        Some(next) => {
                            *first = next;
                            false
                        }
                        None => true,
                    }
                } else {
                    false
                }
            }
            _ => false,
        };
        if emptied {
            inner.retain(&key, |slot| {
                matches!(slot, Slot::Resolved(_)) || slot.has_live_waiter()
            });
        }
    }

    /// Lets go of the signals of test `id` of `case`: its report is out. Waiters still
    /// waiting (the same test running twice, or a wait for it with `key(id)`) keep their slots.
    ///
    /// A run of the test elsewhere or after a restart finds the signals again: they are on the
    /// bus, replayed on assignment.
    pub(crate) fn release(&self, case: &str, id: &str) {
        let key = test_key(case, id);
        lock(&self.inner).retain(&key, Slot::has_live_waiter);
    }

    /// Forgets signals whose time is up, and gives back the room of the table once it is
    /// mostly empty (a burst of 100,000 tests left ~20 MB of empty table behind).
    pub(crate) fn expire(&self) {
        let mut inner = lock(&self.inner);
        Self::expire_locked(&mut inner, Instant::now());
        // Amortized: a table shrinks only after losing three quarters of its entries.
        if inner.tests.capacity() > 1024 && inner.tests.capacity() / 4 > inner.tests.len() {
            inner.tests.shrink_to_fit();
        }
    }

    fn expire_locked(inner: &mut Inner, now: Instant) {
        while let Some(entry) = inner.expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            if let Some(test) = inner.tests.get_mut(&*key) {
                test.expiry = None;
            }
            // Waiters are dropped by their wait (timeout or drop), never here.
            inner.retain(&key, Slot::has_live_waiter);
        }
    }

    /// Number of slots (resolved signals and signals being waited for).
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).slots
    }

    /// Number of tests holding slots.
    #[cfg(test)]
    pub(crate) fn tests(&self) -> usize {
        lock(&self.inner).tests.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(3 * 3600);

    fn pending(lookup: Lookup) -> oneshot::Receiver<Value> {
        match lookup {
            Lookup::Pending(rx) => rx,
            Lookup::Ready(v) => panic!("nothing was sent yet, found {v}"),
        }
    }

    fn ready(lookup: Lookup) -> Value {
        match lookup {
            Lookup::Ready(v) => v,
            Lookup::Pending(_) => panic!("the signal is not there"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn signal_before_wait_is_found() {
        let store = SignalStore::default();
        store.resolve("c", "t1", "s", Value::from(7), KEEP);
        assert_eq!(ready(store.wait("c", "t1", "s")), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn each_waiter_wakes_on_its_own_signal() {
        let store = SignalStore::default();
        let mut receivers = Vec::new();
        for i in 0..10_000 {
            receivers.push(pending(store.wait("c", &format!("t{i}"), "s")));
        }
        // Resolve in reverse order: each receiver must get its own value, not a neighbour's.
        for i in (0..10_000).rev() {
            store.resolve("c", &format!("t{i}"), "s", Value::from(i), KEEP);
        }
        for (i, rx) in receivers.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap(), Value::from(i));
        }
    }

    /// Faust indexes a signal by (signal name, case name, key) (signals.py:83-84): the same
    /// test id and signal name under two cases are two signals.
    #[tokio::test(start_paused = true)]
    async fn signals_belong_to_their_case() {
        let store = SignalStore::default();
        let b = pending(store.wait("b", "order-1", "stored"));
        store.resolve("a", "order-1", "stored", Value::from("a's"), KEEP);
        assert_eq!(ready(store.wait("a", "order-1", "stored")), "a's");
        assert!(matches!(
            store.wait("b", "order-1", "stored"),
            Lookup::Pending(_)
        ));
        store.resolve("b", "order-1", "stored", Value::from("b's"), KEEP);
        assert_eq!(b.await.unwrap(), "b's");
        assert_eq!(ready(store.wait("a", "order-1", "stored")), "a's");
        // Keys do not collide when the case, the id and the name split differently.
        store.resolve("ab", "c", "s", Value::from(1), KEEP);
        assert!(matches!(store.wait("a", "bc", "s"), Lookup::Pending(_)));
    }

    /// Faust's `resolve` overwrites the entry (signals.py:58-61, 86-87): the latest value wins.
    #[tokio::test(start_paused = true)]
    async fn a_signal_sent_twice_resolves_to_the_latest_value() {
        let store = SignalStore::default();
        store.resolve("c", "t1", "s", Value::from(1), KEEP);
        store.resolve("c", "t1", "s", Value::from(2), KEEP);
        assert_eq!(ready(store.wait("c", "t1", "s")), 2);
        assert_eq!(store.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn two_waiters_of_one_signal_both_get_it_and_the_live_one_is_kept() {
        let store = SignalStore::default();
        let (first, second) = (
            pending(store.wait("c", "t", "s")),
            pending(store.wait("c", "t", "s")),
        );
        drop(first);
        store.forget_waiter("c", "t", "s");
        assert_eq!(store.len(), 1, "the second waiter still waits");
        let third = pending(store.wait("c", "t", "s"));
        store.resolve("c", "t", "s", Value::from(3), KEEP);
        assert_eq!(second.await.unwrap(), 3);
        assert_eq!(third.await.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_waits_leave_nothing_behind() {
        let store = SignalStore::default();
        let kept = pending(store.wait("c", "t", "a"));
        drop(pending(store.wait("c", "t", "b")));
        store.forget_waiter("c", "t", "b");
        assert_eq!((store.tests(), store.len()), (1, 1));
        drop(kept);
        store.forget_waiter("c", "t", "a");
        assert_eq!((store.tests(), store.len()), (0, 0));
    }

    /// Memory follows the work in flight (a long-running worker must not grow). Each step is
    /// (what happens, slots and tests left after it).
    #[tokio::test(start_paused = true)]
    async fn released_tests_and_expired_early_signals_leave_nothing() {
        enum Step {
            Signal(&'static str, &'static str),
            Wait(&'static str, &'static str),
            Release(&'static str),
            Advance(u64),
        }
        use Step::*;
        let keep = Duration::from_secs(600);
        let table: &[(Step, usize, usize)] = &[
            // A test that ran: two signals, one early and one waited for, then its report.
            (Signal("t1", "a"), 1, 1),
            (Wait("t1", "a"), 1, 1),
            (Wait("t1", "b"), 2, 1),
            (Signal("t1", "b"), 2, 1),
            (Release("t1"), 0, 0),
            // A late signal of a test already reported is an early signal again: kept
            // test_expires, then forgotten.
            (Signal("t1", "b"), 1, 1),
            // Signals of a test this worker never runs (another worker's, or never triggered).
            (Advance(300), 1, 1),
            (Signal("t2", "a"), 2, 2),
            (Signal("t2", "b"), 3, 2),
            (Advance(301), 2, 1),
            (Advance(298), 2, 1),
            (Advance(1), 0, 0),
            // Releasing a test that holds nothing is harmless.
            (Release("t3"), 0, 0),
        ];
        let store = SignalStore::default();
        let mut waiting = Vec::new();
        for (i, (step, slots, tests)) in table.iter().enumerate() {
            match step {
                Signal(id, s) => store.resolve("c", id, *s, Value::Null, keep),
                Wait(id, s) => waiting.push(store.wait("c", id, s)),
                Release(id) => {
                    waiting.clear();
                    store.release("c", id);
                }
                Advance(secs) => {
                    tokio::time::advance(Duration::from_secs(*secs)).await;
                    store.expire();
                }
            }
            assert_eq!(
                (store.len(), store.tests()),
                (*slots, *tests),
                "after step {i}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn release_keeps_live_waiters() {
        let store = SignalStore::default();
        store.resolve("c", "t", "a", Value::from(1), KEEP);
        let waiter = pending(store.wait("c", "t", "b"));
        store.release("c", "t");
        assert_eq!(store.len(), 1, "the live waiter keeps its slot");
        store.resolve("c", "t", "b", Value::from(2), KEEP);
        assert_eq!(waiter.await.unwrap(), 2);
        store.release("c", "t");
        assert_eq!((store.len(), store.tests()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_keeps_live_waiters_and_a_released_test_leaves_the_index() {
        let store = SignalStore::default();
        store.resolve("c", "t", "a", Value::from(1), Duration::from_secs(10));
        let waiter = pending(store.wait("c", "t", "b"));
        tokio::time::advance(Duration::from_secs(11)).await;
        store.expire();
        assert_eq!(store.len(), 1, "the resolved signal went, the waiter stays");
        store.resolve("c", "t", "b", Value::from(2), Duration::from_secs(10));
        assert_eq!(waiter.await.unwrap(), 2);
        store.release("c", "t");
        assert!(lock(&store.inner).expiry.is_empty());
        assert_eq!((store.len(), store.tests()), (0, 0));
    }
}
