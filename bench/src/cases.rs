//! The cases and signals `livecheck-bench` runs, and the probes through which they report.
//!
//! - `bench.latency` waits for three signals one after another and reports, for each, the time
//!   from the service's `Signal::send` call (carried in the signal's value as nanoseconds since
//!   [`now_ns`]'s epoch: sender and case share this process's monotonic clock) to the moment its
//!   `wait` returned.
//! - `bench.throughput` and `bench.memory` wait for three signals each (the workload of the
//!   throughput and memory figures) and count false timeouts: a TIMEOUT before the wait's
//!   timeout elapsed (Faust's early-timeout defect; ours must stay at zero).
//! - `bench.never` has probability 0: what `maybe_trigger` costs a service on every request that
//!   is not sampled.
//!
//! Run them with `cargo run --release -p bench` (see docs/benchmarks.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use livecheck::{Signal, WaitError};
use tokio::sync::mpsc;

/// The timeout of every wait of `bench.latency` and `bench.throughput` (Faust's bench uses the
/// same).
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The timeout of every wait of `bench.memory`: long enough for 100,000 tests to start and be
/// signalled.
pub(crate) const MEMORY_WAIT_TIMEOUT: Duration = Duration::from_secs(600);

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on this process's monotonic clock (since its first call).
pub(crate) fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What `bench.latency` tells the benchmark.
#[derive(Debug)]
pub(crate) enum Probe {
    /// The case is about to wait for its signal number `signal` (0, 1, 2).
    Waiting {
        /// The test id.
        test: String,
        /// Which signal.
        signal: usize,
    },
    /// The wait for signal number `signal` returned, `latency` after the service's `send` began.
    Received {
        /// The test id.
        test: String,
        /// Which signal.
        signal: usize,
        /// From the `send` call to the return of `wait`.
        latency: Duration,
    },
}

static PROBES: Mutex<Option<mpsc::UnboundedSender<Probe>>> = Mutex::new(None);

/// Routes the probes of `bench.latency` to the returned receiver (replacing an earlier one).
pub(crate) fn probes() -> mpsc::UnboundedReceiver<Probe> {
    let (tx, rx) = mpsc::unbounded_channel();
    *PROBES.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    rx
}

fn probe(probe: Probe) {
    if let Some(tx) = &*PROBES.lock().unwrap_or_else(|e| e.into_inner()) {
        let _ = tx.send(probe);
    }
}

/// Waits for three signals one after another, reporting each one's latency from `send` to here.
#[livecheck::case(
    name = "bench.latency",
    probability = 1.0,
    test_expires = "1h",
    warn_stalled_after = "1h"
)]
pub(crate) async fn latency_probe() -> livecheck::Result {
    let test = livecheck::current_test()
        .map(|t| t.id.clone())
        .unwrap_or_default();
    for (signal, wanted) in [&LAT_1, &LAT_2, &LAT_3].into_iter().enumerate() {
        probe(Probe::Waiting {
            test: test.clone(),
            signal,
        });
        let sent_ns = wanted.wait().timeout(WAIT_TIMEOUT).await?;
        let latency = Duration::from_nanos(now_ns().saturating_sub(sent_ns));
        probe(Probe::Received {
            test: test.clone(),
            signal,
            latency,
        });
    }
    Ok(())
}

livecheck::signal! {
    /// First signal of `bench.latency`: its value is `now_ns()` when the service sent it.
    pub(crate) LAT_1: u64 for latency_probe;
    /// Second signal of `bench.latency`.
    pub(crate) LAT_2: u64 for latency_probe;
    /// Third signal of `bench.latency`.
    pub(crate) LAT_3: u64 for latency_probe;
}

/// Timeouts that fired before their wait's timeout elapsed (must stay 0).
pub(crate) static FALSE_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// Waits for `signal`, counting a timeout that comes before `timeout` as false.
async fn counted_wait(signal: &Signal<u64>, timeout: Duration) -> Result<u64, WaitError> {
    let result = signal.wait().timeout(timeout).await;
    if let Err(WaitError::Timeout { waited, .. }) = &result {
        if *waited < timeout {
            FALSE_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
        }
    }
    result
}

/// The throughput workload: three signals, each carrying the test's number.
#[livecheck::case(
    name = "bench.throughput",
    probability = 1.0,
    test_expires = "1h",
    warn_stalled_after = "1h"
)]
pub(crate) async fn three_signals(n: u64) -> livecheck::Result {
    for signal in [&STEP_1, &STEP_2, &STEP_3] {
        let seen = counted_wait(signal, WAIT_TIMEOUT).await?;
        livecheck::ensure!(seen == n, "{} carried {seen}, want {n}", signal.name());
    }
    Ok(())
}

livecheck::signal! {
    /// First signal of `bench.throughput`.
    pub(crate) STEP_1: u64 for three_signals;
    /// Second signal of `bench.throughput`.
    pub(crate) STEP_2: u64 for three_signals;
    /// Third signal of `bench.throughput`.
    pub(crate) STEP_3: u64 for three_signals;
}

/// The memory workload: as `bench.throughput`, with waits long enough for 100,000 tests.
#[livecheck::case(
    name = "bench.memory",
    probability = 1.0,
    test_expires = "1h",
    warn_stalled_after = "1h"
)]
pub(crate) async fn held(n: u64) -> livecheck::Result {
    for signal in [&HELD_1, &HELD_2, &HELD_3] {
        let seen = counted_wait(signal, MEMORY_WAIT_TIMEOUT).await?;
        livecheck::ensure!(seen == n, "{} carried {seen}, want {n}", signal.name());
    }
    Ok(())
}

livecheck::signal! {
    /// First signal of `bench.memory`.
    pub(crate) HELD_1: u64 for held;
    /// Second signal of `bench.memory`.
    pub(crate) HELD_2: u64 for held;
    /// Third signal of `bench.memory`.
    pub(crate) HELD_3: u64 for held;
}

/// Never sampled: `maybe_trigger` on it is what every unsampled request costs a service.
#[livecheck::case(name = "bench.never", probability = 0.0)]
pub(crate) async fn never(n: u64) -> livecheck::Result {
    livecheck::ensure!(n > 0, "never runs");
    Ok(())
}

/// Always sampled: `maybe_trigger` + `send` on it is a sampled request's whole cost to a
/// service (`request.rs`). No worker runs it there.
#[livecheck::case(name = "bench.request", probability = 1.0)]
pub(crate) async fn sampled(n: u64) -> livecheck::Result {
    let seen = PAID.wait().timeout(WAIT_TIMEOUT).await?;
    livecheck::ensure!(seen == n, "paid {seen}, want {n}");
    Ok(())
}

livecheck::signal! {
    /// The signal of `bench.request`.
    pub(crate) PAID: u64 for sampled;
}
