//! The signal store: signals that arrived, waiters that wait for them, and their expiry.
//!
//! Fixes three of Faust's defects: a waiter is woken by its own signal only (Faust wakes every
//! waiter on every signal and re-polls every 2 s); a signal that arrives before its `wait` is kept
//! and found; resolved signals are forgotten `test_expires` after they arrived (Faust keeps them
//! for ever).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The test id and the signal name in one allocation, as `LEN:IDNAME` (LEN the id's length, so
/// no two pairs share a key). A slot is kept for every signal a running test waits for: a pair
/// of `Box<str>` was one more allocation each (docs/benchmarks.md).
type SlotKey = Box<str>;

fn slot_key(key: &str, signal: &str) -> SlotKey {
    let mut text = String::with_capacity(key.len() + signal.len() + 4);
    let _ = write!(text, "{}:", key.len());
    text.push_str(key);
    text.push_str(signal);
    text.into_boxed_str()
}

enum Slot {
    /// The signal arrived; kept until `expires`.
    Resolved(Value),
    /// Tasks waiting for it: the first in place (there is almost always just one), others after.
    Waiting(oneshot::Sender<Value>, Vec<oneshot::Sender<Value>>),
}

#[derive(Default)]
struct Inner {
    slots: HashMap<SlotKey, Slot>,
    expiry: BinaryHeap<Reverse<(Instant, SlotKey)>>,
}

/// Signals by (test id, signal name).
#[derive(Default)]
pub(crate) struct SignalStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SignalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("SignalStore")
            .field("slots", &inner.slots.len())
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
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `signal` arrived for test `key`, wakes its waiters, and keeps it for
    /// `keep_for`. A signal that arrives twice (a redelivery) keeps its first value.
    pub(crate) fn resolve(&self, key: &str, signal: &str, value: Value, keep_for: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        let slot_key = slot_key(key, signal);
        match inner.slots.entry(slot_key.clone()) {
            Entry::Occupied(mut entry) => {
                if let Slot::Resolved(_) = entry.get() {
                    return;
                }
                let waiting = std::mem::replace(entry.get_mut(), Slot::Resolved(value));
                if let (Slot::Waiting(first, more), Slot::Resolved(value)) = (waiting, entry.get())
                {
                    for waiter in std::iter::once(first).chain(more) {
                        let _ = waiter.send(value.clone());
                    }
                }
            }
            Entry::Vacant(entry) => {
                entry.insert(Slot::Resolved(value));
            }
        }
        inner.expiry.push(Reverse((now + keep_for, slot_key)));
        Self::expire_locked(&mut inner, now);
    }

    /// Looks the signal up, registering a waiter if it is not there yet.
    pub(crate) fn wait(&self, key: &str, signal: &str) -> Lookup {
        let mut inner = self.lock();
        match inner.slots.entry(slot_key(key, signal)) {
            Entry::Occupied(mut entry) => match entry.get_mut() {
                Slot::Resolved(value) => Lookup::Ready(value.clone()),
                Slot::Waiting(_, more) => {
                    let (tx, rx) = oneshot::channel();
                    more.push(tx);
                    Lookup::Pending(rx)
                }
            },
            Entry::Vacant(entry) => {
                let (tx, rx) = oneshot::channel();
                entry.insert(Slot::Waiting(tx, Vec::new()));
                Lookup::Pending(rx)
            }
        }
    }

    /// Drops the waiters of a slot whose receivers are gone (a wait that timed out).
    pub(crate) fn forget_waiter(&self, key: &str, signal: &str) {
        let mut inner = self.lock();
        let slot_key = slot_key(key, signal);
        let Some(Slot::Waiting(first, more)) = inner.slots.get_mut(&slot_key) else {
            return;
        };
        more.retain(|w| !w.is_closed());
        if first.is_closed() {
            match more.pop() {
                Some(next) => *first = next,
                None => {
                    inner.slots.remove(&slot_key);
                }
            }
        }
    }

    /// Forgets resolved signals whose time is up, and gives back the room of the tables once
    /// they are mostly empty (a burst of 100,000 tests left ~20 MB of empty table behind).
    pub(crate) fn expire(&self) {
        let mut inner = self.lock();
        Self::expire_locked(&mut inner, Instant::now());
        // Amortized: a table shrinks only after losing three quarters of its entries.
        if inner.slots.capacity() > 1024 && inner.slots.capacity() / 4 > inner.slots.len() {
            inner.slots.shrink_to_fit();
        }
        if inner.expiry.capacity() > 1024 && inner.expiry.capacity() / 4 > inner.expiry.len() {
            inner.expiry.shrink_to_fit();
        }
    }

    fn expire_locked(inner: &mut Inner, now: Instant) {
        while let Some(Reverse((at, _))) = inner.expiry.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, key))) = inner.expiry.pop() else {
                break;
            };
            if let Some(Slot::Resolved(_)) = inner.slots.get(&key) {
                inner.slots.remove(&key);
            }
        }
    }

    /// Number of slots (resolved signals and signals being waited for).
    pub(crate) fn len(&self) -> usize {
        self.lock().slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(3 * 3600);

    #[tokio::test(start_paused = true)]
    async fn signal_before_wait_is_found() {
        let store = SignalStore::default();
        store.resolve("t1", "s", Value::from(7), KEEP);
        match store.wait("t1", "s") {
            Lookup::Ready(v) => assert_eq!(v, 7),
            Lookup::Pending(_) => panic!("the early signal was lost"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_waiter_wakes_on_its_own_signal() {
        let store = std::sync::Arc::new(SignalStore::default());
        let mut receivers = Vec::new();
        for i in 0..10_000 {
            match store.wait(&format!("t{i}"), "s") {
                Lookup::Pending(rx) => receivers.push(rx),
                Lookup::Ready(_) => panic!("nothing was sent yet"),
            }
        }
        // Resolve in reverse order: each receiver must get its own value, not a neighbour's.
        for i in (0..10_000).rev() {
            store.resolve(&format!("t{i}"), "s", Value::from(i), KEEP);
        }
        for (i, rx) in receivers.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap(), Value::from(i));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn resolved_signals_expire() {
        let store = SignalStore::default();
        store.resolve("t1", "s", Value::Null, Duration::from_secs(60));
        store.resolve("t2", "s", Value::Null, Duration::from_secs(120));
        tokio::time::advance(Duration::from_secs(61)).await;
        store.expire();
        assert_eq!(store.len(), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        store.expire();
        assert_eq!(store.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_signal_keeps_first_value_and_abandoned_waits_are_dropped() {
        let store = SignalStore::default();
        store.resolve("t1", "s", Value::from(1), KEEP);
        store.resolve("t1", "s", Value::from(2), KEEP);
        assert!(matches!(store.wait("t1", "s"), Lookup::Ready(v) if v == 1));
        let rx = match store.wait("t2", "s") {
            Lookup::Pending(rx) => rx,
            Lookup::Ready(_) => unreachable!(),
        };
        drop(rx);
        store.forget_waiter("t2", "s");
        assert_eq!(store.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn two_waiters_of_one_signal_both_get_it_and_the_live_one_is_kept() {
        let store = SignalStore::default();
        let pending = |lookup| match lookup {
            Lookup::Pending(rx) => rx,
            Lookup::Ready(_) => panic!("nothing was sent yet"),
        };
        let (first, second) = (pending(store.wait("t", "s")), pending(store.wait("t", "s")));
        drop(first);
        store.forget_waiter("t", "s");
        assert_eq!(store.len(), 1, "the second waiter still waits");
        let third = pending(store.wait("t", "s"));
        store.resolve("t", "s", Value::from(3), KEEP);
        assert_eq!(second.await.unwrap(), 3);
        assert_eq!(third.await.unwrap(), 3);
        // Keys do not collide when the id and the name split differently.
        store.resolve("ab", "c", Value::from(1), KEEP);
        assert!(matches!(store.wait("a", "bc"), Lookup::Pending(_)));
    }
}
