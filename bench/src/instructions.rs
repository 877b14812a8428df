//! Instructions per test: the throughput run's worker and service, and the floor's load with
//! the same messages per test, each under callgrind (`callgrind.rs`), on a small run paced at
//! the same rate for both — instructions, unlike CPU time, do not vary with what else the
//! machine runs, so this is the figure to compare across commits. The pace matters (idle
//! polling is counted per second, so per test it shrinks as the rate grows): livecheck and the
//! floor get the same. Part of `cargo run --release -p bench` (`--only instructions`).

use std::path::PathBuf;

use crate::throughput::{self, Load, Messages};
use crate::{callgrind, floor_load, Outcome};

/// What the counted runs gave.
#[derive(Debug)]
pub(crate) struct Instructions {
    /// Tests of each run.
    pub(crate) tests: u64,
    /// Their pace, tests per second.
    pub(crate) rate: f64,
    /// The worker's instructions.
    pub(crate) worker: u64,
    /// The service's instructions.
    pub(crate) service: u64,
    /// The floor's instructions, for the same messages per test.
    pub(crate) floor: u64,
    /// Kafka messages livecheck wrote in its run.
    pub(crate) messages: Messages,
    /// Why `perf stat` was not used.
    pub(crate) perf: String,
}

impl Instructions {
    /// Worker, service, and floor instructions per test.
    pub(crate) fn per_test(&self) -> [f64; 3] {
        [self.worker, self.service, self.floor].map(|n| n as f64 / self.tests.max(1) as f64)
    }
}

/// Where callgrind's dumps go: `target/bench-callgrind`.
fn dump_dir() -> Result<PathBuf, String> {
    let dir = crate::render::target_dir().join("bench-callgrind");
    // Only this benchmark's own dumps are there: start from none.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs `tests` tests at `rate` tests/s, and the floor's load alike, under callgrind.
/// [`Outcome::NotApplicable`] where neither perf nor callgrind can count here (not a failure:
/// the cells say "n/a" and why).
pub(crate) async fn run(brokers: &str, tests: u64, rate: f64) -> Result<Instructions, Outcome> {
    if let Err(reason) = callgrind::available().await {
        return Err(Outcome::NotApplicable(format!(
            "{}; {reason}",
            callgrind::perf_counter().await
        )));
    }
    Ok(count(brokers, tests, rate).await?)
}

async fn count(brokers: &str, tests: u64, rate: f64) -> Result<Instructions, String> {
    let perf = callgrind::perf_counter().await;
    let dir = dump_dir()?;
    let load = Load {
        tests,
        rate: Some(rate),
        callgrind: Some(&dir),
        broker_pid: None,
    };
    let livecheck = throughput::run(brokers, load).await?;
    if livecheck.reported() != tests || livecheck.passed != tests {
        return Err(format!(
            "under callgrind {} of {tests} tests passed ({} TIMEOUT)",
            livecheck.passed, livecheck.timeouts
        ));
    }
    let (worker, service) = livecheck
        .instructions
        .ok_or("the run under callgrind counted nothing")?;
    let floor = floor_load::run(
        brokers,
        tests,
        livecheck.messages_per_test(),
        rate,
        Some(&dir),
        None,
    )
    .await?;
    Ok(Instructions {
        tests,
        rate,
        worker,
        service,
        floor: floor
            .instructions
            .ok_or("the floor under callgrind counted nothing")?,
        messages: livecheck.messages,
        perf,
    })
}
