//! The signal store: signals that arrived, waiters that wait for them, and their expiry.
//!
//! Fixes three of Faust's defects: a waiter is woken by its own signal only (Faust wakes every
//! waiter on every signal and re-polls every 2 s); a signal that arrives before its `wait` is kept
//! and found; resolved signals are forgotten `test_expires` after they arrived (Faust keeps them
//! for ever).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// (test id, signal name).
type SlotKey = (Box<str>, Box<str>);

enum Slot {
    /// The signal arrived; kept until `expires`.
    Resolved(Value),
    /// Tasks waiting for it.
    Waiting(Vec<oneshot::Sender<Value>>),
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
        let slot_key: SlotKey = (key.into(), signal.into());
        match inner.slots.entry(slot_key.clone()) {
            Entry::Occupied(mut entry) => match entry.get_mut() {
                Slot::Resolved(_) => return,
                Slot::Waiting(waiters) => {
                    for waiter in waiters.drain(..) {
                        let _ = waiter.send(value.clone());
                    }
                    entry.insert(Slot::Resolved(value));
                }
            },
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
        let slot = inner
            .slots
            .entry((key.into(), signal.into()))
            // Room for the one waiter a signal almost always has (a `Vec` grows to 4).
            .or_insert_with(|| Slot::Waiting(Vec::with_capacity(1)));
        match slot {
            Slot::Resolved(value) => Lookup::Ready(value.clone()),
            Slot::Waiting(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Lookup::Pending(rx)
            }
        }
    }

    /// Drops the waiters of a slot whose receivers are gone (a wait that timed out).
    pub(crate) fn forget_waiter(&self, key: &str, signal: &str) {
        let mut inner = self.lock();
        let slot_key: SlotKey = (key.into(), signal.into());
        if let Some(Slot::Waiting(waiters)) = inner.slots.get_mut(&slot_key) {
            waiters.retain(|w| !w.is_closed());
            if waiters.is_empty() {
                inner.slots.remove(&slot_key);
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
}
