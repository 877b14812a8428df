//! Logging at most once a minute: what untrusted input makes happen (a skipped record, a
//! forged header) is counted every time and logged rarely, so a flood of bad records cannot
//! flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a throttled message is logged at most.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

/// A gate that opens at most once per [`LOG_EVERY`]: the first call, then the first call a
/// minute or more after the last one that passed.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Milliseconds since [`epoch`] of the last call that passed, plus one (0: never).
    last: AtomicU64,
}

impl Throttle {
    /// A closed-for-nobody gate.
    pub(crate) const fn new() -> Self {
        Throttle {
            last: AtomicU64::new(0),
        }
    }

    /// Whether to log now: true at most once a minute (across threads).
    pub(crate) fn ready(&self) -> bool {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        self.ready_at(now)
    }

    /// [`ready`](Self::ready) at `now` (milliseconds since the epoch, plus one).
    fn ready_at(&self, now: u64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        let every = LOG_EVERY.as_millis() as u64;
        if last != 0 && now.saturating_sub(last) < every {
            return false;
        }
        // One winner among threads that raced here.
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_once_per_minute() {
        let gate = Throttle::new();
        assert!(gate.ready_at(1));
        let passed = (0..1_000).filter(|ms| gate.ready_at(2 + ms * 59)).count();
        assert_eq!(passed, 0, "a thousand calls within the minute: none logged");
        assert!(gate.ready_at(60_001), "a minute later");
        assert!(!gate.ready_at(60_002));
        let real = Throttle::new();
        assert!(real.ready(), "the real clock: the first call passes");
        assert!(!real.ready());
    }
}
