//! Prometheus metrics of a worker: what its reports say (tests by case and state, runtimes,
//! signal latencies) and what its snapshots say (case state, consecutive failures, in-flight
//! tests, skipped messages).
//!
//! [`Metrics`] is an [`Observer`]: add it to a worker and every report is counted as it is
//! produced, so the counters match the reports one for one. Gauges and the counters the worker
//! and transport keep themselves are read from the [`WorkerHandle`] when the metrics are
//! rendered (a scrape of `/metrics`). Each `Metrics` owns its registry — nothing is global — so
//! several workers in one process (as in tests) keep separate figures.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use livecheck::metrics::Metrics;
//!
//! let metrics = Metrics::new();
//! let worker = livecheck::Worker::builder(livecheck::MemoryTransport::new())
//!     .observer(metrics.clone())
//!     .build()?;
//! let text = metrics.render(&worker.handle()); // Prometheus text format
//! # Ok(()) }
//! ```
//!
//! Every series is listed in `docs/operations.md`.

mod families;
mod refresh;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, GaugeVec, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
    TextEncoder,
};

use crate::lock::lock;
use crate::ops::alerts::{AlertCounters, Webhook};
use crate::wire::model::{State, TestReport};
use crate::worker::{Observer, WorkerHandle};

use families::Family;

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of one worker; cheap to clone (clones share the registry).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    /// Every family registered, in order: what `Debug` shows and the docs must list.
    families: Vec<Family>,
    // Counted from reports, as they are produced.
    tests: IntCounterVec,
    suite_reports: IntCounterVec,
    runtime: HistogramVec,
    signal_latency: HistogramVec,
    signal_timeouts: IntCounterVec,
    last_test: GaugeVec,
    last_failure: GaugeVec,
    // Read from snapshots at render time.
    case_state: IntGaugeVec,
    suite_failing: IntGaugeVec,
    consecutive_failures: IntGaugeVec,
    in_flight: IntGauge,
    ready: IntGauge,
    leader: IntGauge,
    stored_signals: IntGauge,
    orphaned_partitions: IntGauge,
    consumer_lag: IntGaugeVec,
    tests_moved: IntCounter,
    tests_received: IntCounter,
    signals_received: IntCounter,
    skipped: IntCounterVec,
    report_publish_errors: IntCounter,
    fake_request_errors: IntCounter,
    consumer_errors: IntCounter,
    messages_dropped: IntCounterVec,
    peer_reports: IntCounter,
    already_reported: IntCounterVec,
    alerts: IntCounterVec,
    otel_spans: IntCounterVec,
    untrusted: IntCounterVec,
    alert_sources: Mutex<Vec<Arc<AlertCounters>>>,
    // One refresh at a time: counters mirrored from atomics are advanced by their difference.
    refresh: Mutex<()>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.families.iter().map(|f| f.name).collect();
        f.debug_struct("Metrics")
            .field("families", &names)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Exports the counters of an alert webhook (`livecheck_alerts_total`) with these metrics.
    pub fn track_alerts(&self, webhook: &Webhook) {
        lock(&self.0.alert_sources).push(webhook.counters());
    }

    /// The registry, to add metrics of your own or to gather them yourself.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Reads `worker`'s snapshots into the gauges and mirrored counters, then renders every
    /// metric in the Prometheus text format.
    pub fn render(&self, worker: &WorkerHandle) -> String {
        self.refresh(worker);
        self.encode()
    }

    fn encode(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into memory fails only for invalid metric families, which we do not build.
        let _ = TextEncoder::new().encode(&self.0.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Now, in seconds since the Unix epoch, as Prometheus timestamps are.
fn unix_now() -> f64 {
    let now = chrono::Utc::now();
    now.timestamp() as f64 + f64::from(now.timestamp_subsec_micros()) / 1e6
}

impl Observer for Metrics {
    fn on_report(&self, report: &TestReport) {
        let m = &*self.0;
        let case = report.case_name.as_str();
        if report.is_suite() {
            m.suite_reports
                .with_label_values(&[case, report.state.as_str()])
                .inc();
            return;
        }
        m.tests
            .with_label_values(&[case, report.state.as_str()])
            .inc();
        let now = unix_now();
        m.last_test.with_label_values(&[case]).set(now);
        if matches!(report.state, State::Fail | State::Error | State::Timeout) {
            m.last_failure.with_label_values(&[case]).set(now);
        }
        // A skipped test did not run: its runtime of 0 would only drag the percentiles down.
        if let (Some(runtime), false) = (report.runtime, report.state == State::Skip) {
            m.runtime.with_label_values(&[case]).observe(runtime);
        }
        for (signal, latency) in &report.signal_latency {
            m.signal_latency
                .with_label_values(&[case, signal.as_str()])
                .observe(*latency);
            // The signal exists: its timeout series too, at 0, so `increase()` sees its first.
            m.signal_timeouts
                .with_label_values(&[case, signal.as_str()]);
        }
        if let (State::Timeout, Some(signal)) = (report.state, &report.timed_out_signal) {
            m.signal_timeouts
                .with_label_values(&[case, signal.as_str()])
                .inc();
        }
    }
}
