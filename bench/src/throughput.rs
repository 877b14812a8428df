//! Throughput: tests per second one worker completes, each test waiting for three signals, with
//! `test_concurrency` at its default (100).
//!
//! A service in this process (a client with a producer of its own) calls
//! `three_signals.maybe_trigger` (probability 1.0) and sends the test's three signals in its
//! scope, for `tests` tests, as fast as its producer takes them (at most `SERVICE_CONCURRENCY`
//! requests at once), which is the workload of Faust's bench. The figure is tests reported per
//! second from the first trigger to the last report; signals per second are three times that.
//! Part of `cargo run --release -p bench`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use livecheck::{Case, CaseConfig, WorkerSettings};

use crate::cases::{three_signals, FALSE_TIMEOUTS, STEP_1, STEP_2, STEP_3};
use crate::setup::{service_client, unique_config, Reports, RunningWorker};
use crate::stats::CpuMeter;

/// Requests the service handles at once.
const SERVICE_CONCURRENCY: usize = 256;

/// What one run gave.
#[derive(Debug)]
pub(crate) struct Throughput {
    /// Tests triggered.
    pub(crate) tests: u64,
    /// From the first trigger to the last report.
    pub(crate) elapsed: Duration,
    /// From the first trigger to the service's last signal sent.
    pub(crate) service_elapsed: Duration,
    /// PASS reports.
    pub(crate) passed: u64,
    /// TIMEOUT reports.
    pub(crate) timeouts: u64,
    /// TIMEOUTs before the wait's timeout elapsed.
    pub(crate) false_timeouts: u64,
    /// Other reports (FAIL, ERROR, SKIP).
    pub(crate) others: u64,
    /// Tests per second over the first and the last third of the reports: the broker slows
    /// down as it stores more.
    pub(crate) thirds: Option<(f64, f64)>,
    /// Cores this process (worker and service) used during the run.
    pub(crate) own_cores: Option<f64>,
    /// Cores the broker used during the run, when the benchmark started it.
    pub(crate) broker_cores: Option<f64>,
}

impl Throughput {
    /// Tests completed per second.
    pub(crate) fn tests_per_sec(&self) -> f64 {
        (self.passed + self.timeouts + self.others) as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `tests` tests through one worker.
pub(crate) async fn run(
    brokers: &str,
    tests: u64,
    broker_pid: Option<u32>,
) -> Result<Throughput, String> {
    let config = unique_config(brokers, "throughput");
    let reports = Reports::with_timeline(usize::try_from(tests).unwrap_or(0));
    let worker = RunningWorker::start(
        &config,
        vec![CaseConfig::from(three_signals.descriptor())],
        WorkerSettings::default(),
        reports.clone(),
    )
    .await?;
    let service = service_client(&config)?;
    let false_before = FALSE_TIMEOUTS.load(Ordering::Relaxed);

    let started = Instant::now();
    let (own_cpu, broker_cpu) = (CpuMeter::this(), CpuMeter::start(broker_pid));
    let errors = service
        .scope(
            futures::stream::iter(0..tests)
                .map(|n| async move { request(n).await })
                .buffer_unordered(SERVICE_CONCURRENCY)
                .filter_map(|result| async move { result.err() })
                .collect::<Vec<String>>(),
        )
        .await;
    let service_elapsed = started.elapsed();
    if let Some(error) = errors.first() {
        return Err(format!("{} service requests failed: {error}", errors.len()));
    }
    let dropped = service.counters().dropped;
    if dropped > 0 {
        return Err(format!("the service dropped {dropped} tests or signals"));
    }
    let complete = reports.wait_for(tests, Duration::from_secs(600)).await;
    let (own_cores, broker_cores) = (own_cpu.cores(), broker_cpu.cores());
    let last = reports.last().unwrap_or_else(Instant::now);
    let result = Throughput {
        tests,
        elapsed: last.duration_since(started),
        service_elapsed,
        passed: reports.passed(),
        timeouts: reports.timeouts(),
        false_timeouts: FALSE_TIMEOUTS.load(Ordering::Relaxed) - false_before,
        others: reports.others(),
        thirds: thirds(started, &reports.timeline()),
        own_cores,
        broker_cores,
    };
    worker.stop().await;
    if !complete {
        return Err(format!(
            "only {} of {tests} tests reported within 600 s",
            reports.total()
        ));
    }
    Ok(result)
}

/// Tests per second over the first third of `timeline` (from `started`) and over the last.
fn thirds(started: Instant, timeline: &[Instant]) -> Option<(f64, f64)> {
    let third = timeline.len() / 3;
    if third == 0 {
        return None;
    }
    let first = timeline[third - 1].duration_since(started);
    let last = timeline[timeline.len() - 1].duration_since(timeline[timeline.len() - 1 - third]);
    Some((
        third as f64 / first.as_secs_f64(),
        third as f64 / last.as_secs_f64().max(1e-9),
    ))
}

/// What the service does for request `n`: maybe trigger a test (always, at probability 1.0) and
/// send its three signals in its scope.
async fn request(n: u64) -> Result<(), String> {
    let test = three_signals
        .maybe_trigger(format!("throughput-{n}"), n)
        .await
        .map_err(|e| format!("trigger: {e}"))?;
    let Some(test) = test else { return Ok(()) };
    livecheck::with_test(test, async {
        // Each request waits for its signals' delivery, so the service's pace follows the
        // broker's (a service that does not wait would outrun the producer's queue here).
        for signal in [&STEP_1, &STEP_2, &STEP_3] {
            signal
                .send(&n)
                .delivered()
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        Ok(())
    })
    .await
}
