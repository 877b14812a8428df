//! The one way livecheck takes a mutex: a poisoned lock (a thread panicked holding it) is taken
//! anyway. Every mutex guards bookkeeping that stays consistent between statements, and a case
//! that panics must not take the worker's counters, store or health down with it.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
