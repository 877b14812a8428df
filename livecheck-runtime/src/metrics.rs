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

use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::alerts::AlertStats;
use crate::model::{State, TestReport};
use crate::worker::{Observer, WorkerHandle};

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Runtime buckets, in seconds: a case runs from milliseconds (signals already there) to
/// minutes (slow pipelines, long timeouts).
const RUNTIME_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// Signal latency buckets, in seconds: one Kafka hop is about a millisecond on a good broker.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// States a test report can have (the `state` label of `livecheck_tests_total`).
const TEST_STATES: [State; 5] = [
    State::Pass,
    State::Fail,
    State::Error,
    State::Timeout,
    State::Skip,
];

/// States a case can be in (the `state` label of `livecheck_case_state`).
const CASE_STATES: [State; 6] = [
    State::Init,
    State::Pass,
    State::Fail,
    State::Error,
    State::Timeout,
    State::Stall,
];

/// The metrics of one worker; cheap to clone (clones share the registry).
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    // Counted from reports, as they are produced.
    tests: IntCounterVec,
    suite_reports: IntCounterVec,
    runtime: HistogramVec,
    signal_latency: HistogramVec,
    // Read from snapshots at render time.
    case_state: IntGaugeVec,
    suite_failing: IntGaugeVec,
    consecutive_failures: IntGaugeVec,
    since_last_test: GaugeVec,
    tests_last_hour: IntGaugeVec,
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
    alert_sources: Mutex<Vec<Arc<AlertStats>>>,
    // One refresh at a time: counters mirrored from atomics are advanced by their difference.
    refresh: Mutex<()>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect(VALID);
    registry.register(Box::new(metric.clone())).expect(VALID);
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect(VALID);
    registry.register(Box::new(metric.clone())).expect(VALID);
    metric
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect(VALID);
    registry.register(Box::new(metric.clone())).expect(VALID);
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect(VALID);
    registry.register(Box::new(metric.clone())).expect(VALID);
    metric
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let metric = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect(VALID);
    registry.register(Box::new(metric.clone())).expect(VALID);
    metric
}

/// Registration fails only for malformed or duplicate definitions, which are fixed here and
/// checked by this module's tests.
const VALID: &str = "livecheck's metric definitions are valid and unique";

impl Metrics {
    /// Metrics with a registry of their own.
    pub fn new() -> Self {
        let r = Registry::new();
        let since_last_test = GaugeVec::new(
            Opts::new(
                "livecheck_case_seconds_since_last_test",
                "Seconds since the case last received a test (since start if it has had none).",
            ),
            &["case"],
        )
        .expect(VALID);
        r.register(Box::new(since_last_test.clone())).expect(VALID);
        let inner = Inner {
            tests: counter_vec(
                &r,
                "livecheck_tests_total",
                "Test reports by case and state (PASS, FAIL, ERROR, TIMEOUT, SKIP).",
                &["case", "state"],
            ),
            suite_reports: counter_vec(
                &r,
                "livecheck_suite_reports_total",
                "Suite reports by case and state: FAIL (too many consecutive failures), STALL \
                 (no test for warn_stalled_after), PASS (recovered).",
                &["case", "state"],
            ),
            runtime: histogram_vec(
                &r,
                "livecheck_test_runtime_seconds",
                "Runtime of tests that ran (not SKIP), by case.",
                &["case"],
                RUNTIME_BUCKETS,
            ),
            signal_latency: histogram_vec(
                &r,
                "livecheck_signal_latency_seconds",
                "Seconds from the start of a signal's wait to its arrival (0 if it was there \
                 first), by case and signal.",
                &["case", "signal"],
                LATENCY_BUCKETS,
            ),
            case_state: gauge_vec(
                &r,
                "livecheck_case_state",
                "1 for the state the case is in (INIT, PASS, FAIL, ERROR, TIMEOUT, STALL), 0 for \
                 the others.",
                &["case", "state"],
            ),
            suite_failing: gauge_vec(
                &r,
                "livecheck_case_suite_failing",
                "1 while a suite FAIL or STALL of the case is in effect.",
                &["case"],
            ),
            consecutive_failures: gauge_vec(
                &r,
                "livecheck_case_consecutive_failures",
                "Failures (FAIL, ERROR, TIMEOUT) of the case in a row.",
                &["case"],
            ),
            since_last_test,
            tests_last_hour: gauge_vec(
                &r,
                "livecheck_case_tests_last_hour",
                "Tests the case received in the last hour.",
                &["case"],
            ),
            in_flight: gauge(&r, "livecheck_tests_in_flight", "Tests running now."),
            ready: gauge(
                &r,
                "livecheck_worker_ready",
                "1 once the worker consumes and has a partition assignment.",
            ),
            leader: gauge(
                &r,
                "livecheck_worker_leader",
                "1 while this worker is the leader (runs the fake-request timers, publishes suite \
                 reports).",
            ),
            stored_signals: gauge(
                &r,
                "livecheck_stored_signals",
                "Signals held in the signal store (resolved, or being waited for).",
            ),
            orphaned_partitions: gauge(
                &r,
                "livecheck_orphaned_partitions",
                "Partitions of the tests topic with tests waiting and no member of the group \
                 consuming them (their tests are run by no worker).",
            ),
            consumer_lag: gauge_vec(
                &r,
                "livecheck_consumer_lag",
                "Tests written to a partition of the tests topic and not yet committed by the \
                 group.",
                &["partition"],
            ),
            tests_moved: counter(
                &r,
                "livecheck_tests_moved_total",
                "Tests stopped unreported here because their partition moved to another worker \
                 (which runs them).",
            ),
            tests_received: counter(
                &r,
                "livecheck_tests_received_total",
                "Test executions received.",
            ),
            signals_received: counter(
                &r,
                "livecheck_signals_received_total",
                "Signals received.",
            ),
            skipped: counter_vec(
                &r,
                "livecheck_skipped_messages_total",
                "Bad messages logged and skipped, by topic (tests, bus, reports) and reason \
                 (undecodable, unknown_case).",
                &["topic", "reason"],
            ),
            report_publish_errors: counter(
                &r,
                "livecheck_report_publish_errors_total",
                "Reports that could not be published (their tests run again).",
            ),
            fake_request_errors: counter(
                &r,
                "livecheck_fake_request_errors_total",
                "Fake requests that failed.",
            ),
            consumer_errors: counter(
                &r,
                "livecheck_consumer_errors_total",
                "Kafka consumer errors (the client reconnects by itself).",
            ),
            messages_dropped: counter_vec(
                &r,
                "livecheck_messages_dropped_total",
                "Messages this process published that never reached Kafka, by stage: queue (tests \
                 and signals that found the producer's queue full, dropped without waiting) and \
                 delivery (queued, but not acknowledged within message.timeout.ms).",
                &["stage"],
            ),
            peer_reports: counter(
                &r,
                "livecheck_peer_reports_total",
                "Test reports of other workers of the group counted in this worker's case health.",
            ),
            already_reported: counter_vec(
                &r,
                "livecheck_already_reported_total",
                "Tests whose report the group had published, by when it was seen: delivered (not \
                 run), finished (this worker's report dropped), read_back (a second report, not \
                 counted).",
                &["when"],
            ),
            alerts: counter_vec(
                &r,
                "livecheck_alerts_total",
                "Webhook alerts by outcome: sent, failed (retries exhausted), dropped (queue full).",
                &["outcome"],
            ),
            alert_sources: Mutex::new(Vec::new()),
            refresh: Mutex::new(()),
            registry: r,
        };
        Metrics(Arc::new(inner))
    }

    /// Exports the counters of an alert webhook (`livecheck_alerts_total`) with these metrics.
    pub fn track_alerts(&self, stats: Arc<AlertStats>) {
        lock(&self.0.alert_sources).push(stats);
    }

    /// The registry, to add metrics of your own or to gather them yourself.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Reads `worker`'s snapshots into the gauges and mirrored counters, then renders every
    /// metric in the Prometheus text format.
    pub fn render(&self, worker: &WorkerHandle) -> String {
        self.refresh(worker);
        let mut buffer = Vec::new();
        // Encoding into memory fails only for invalid metric families, which we do not build.
        let _ = TextEncoder::new().encode(&self.0.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }

    fn refresh(&self, worker: &WorkerHandle) {
        let m = &*self.0;
        let _one_at_a_time = lock(&m.refresh);
        for case in worker.cases() {
            // Series exist from the start (at 0), so rates and alerts work from the first scrape.
            for state in TEST_STATES {
                m.tests.with_label_values(&[case.name(), state.as_str()]);
            }
            m.runtime.with_label_values(&[case.name()]);
        }
        for status in worker.statuses() {
            let case = status.name.as_str();
            for state in CASE_STATES {
                m.case_state
                    .with_label_values(&[case, state.as_str()])
                    .set(i64::from(status.state == state.as_str()));
            }
            m.suite_failing
                .with_label_values(&[case])
                .set(i64::from(status.suite_failed));
            m.consecutive_failures
                .with_label_values(&[case])
                .set(i64::from(status.consecutive_failures));
            m.since_last_test
                .with_label_values(&[case])
                .set(status.seconds_since_last_test);
            m.tests_last_hour
                .with_label_values(&[case])
                .set(saturating_i64(status.tests_last_hour));
        }
        let stats = worker.stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        m.in_flight.set(saturating_i64(
            stats.in_flight.load(std::sync::atomic::Ordering::Relaxed) as u64,
        ));
        m.ready
            .set(i64::from(worker.is_ready() && worker.is_assigned()));
        m.leader.set(i64::from(worker.is_leader()));
        m.stored_signals
            .set(saturating_i64(worker.stored_signals() as u64));
        mirror(&m.tests_received, load(&stats.tests_received));
        mirror(&m.tests_moved, load(&stats.tests_moved));
        if let Some(group) = worker.group() {
            m.orphaned_partitions
                .set(saturating_i64(group.orphaned.len() as u64));
            for partition in &group.partitions {
                if let Some(lag) = partition.lag {
                    m.consumer_lag
                        .with_label_values(&[partition.partition.to_string().as_str()])
                        .set(lag);
                }
            }
        }
        mirror(&m.signals_received, load(&stats.signals_received));
        mirror(&m.report_publish_errors, load(&stats.report_publish_errors));
        mirror(&m.fake_request_errors, load(&stats.fake_request_errors));
        let transport = worker.transport_counters();
        mirror(&m.consumer_errors, transport.consumer_errors);
        mirror(
            &m.messages_dropped.with_label_values(&["queue"]),
            transport.dropped,
        );
        mirror(
            &m.messages_dropped.with_label_values(&["delivery"]),
            transport.undelivered,
        );
        mirror(&m.peer_reports, load(&stats.peer_reports));
        for (when, value) in [
            ("delivered", load(&stats.already_reported)),
            ("finished", load(&stats.duplicate_reports_dropped)),
            ("read_back", load(&stats.peer_duplicates)),
        ] {
            mirror(&m.already_reported.with_label_values(&[when]), value);
        }
        for (topic, reason, value) in [
            ("tests", "undecodable", transport.undecodable_tests),
            ("bus", "undecodable", transport.undecodable_signals),
            ("reports", "undecodable", transport.undecodable_reports),
            ("tests", "unknown_case", load(&stats.unknown_case_tests)),
            ("bus", "unknown_case", load(&stats.unknown_case_signals)),
        ] {
            mirror(&m.skipped.with_label_values(&[topic, reason]), value);
        }
        let (mut sent, mut failed, mut dropped) = (0, 0, 0);
        let sources = lock(&m.alert_sources);
        for source in sources.iter() {
            sent += load(&source.sent);
            failed += load(&source.failed);
            dropped += load(&source.dropped);
        }
        if !sources.is_empty() {
            for (outcome, value) in [("sent", sent), ("failed", failed), ("dropped", dropped)] {
                mirror(&m.alerts.with_label_values(&[outcome]), value);
            }
        }
    }
}

/// Advances a counter that mirrors a monotonic atomic to the atomic's value.
fn mirror(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        // A skipped test did not run: its runtime of 0 would only drag the percentiles down.
        if let (Some(runtime), false) = (report.runtime, report.state == State::Skip) {
            m.runtime.with_label_values(&[case]).observe(runtime);
        }
        for (signal, latency) in &report.signal_latency {
            m.signal_latency
                .with_label_values(&[case, signal.as_str()])
                .observe(*latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn report(case: &str, state: State, suite: bool) -> TestReport {
        let now = chrono::Utc::now();
        TestReport {
            case_name: case.into(),
            state,
            test: (!suite).then(|| crate::TestExecution {
                id: "t".into(),
                case_name: case.into(),
                timestamp: now,
                test_args: Vec::new(),
                test_kwargs: serde_json::Map::new(),
                expires: now,
            }),
            runtime: (!suite).then_some(0.02),
            signal_latency: if suite {
                BTreeMap::new()
            } else {
                BTreeMap::from([("sig".to_owned(), 0.003)])
            },
            error: None,
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
        }
    }

    #[test]
    fn reports_are_counted_by_case_and_state() {
        let metrics = Metrics::new();
        metrics.on_report(&report("a", State::Pass, false));
        metrics.on_report(&report("a", State::Pass, false));
        metrics.on_report(&report("a", State::Fail, false));
        metrics.on_report(&report("a", State::Fail, true));
        let m = &*metrics.0;
        assert_eq!(m.tests.with_label_values(&["a", "PASS"]).get(), 2);
        assert_eq!(m.tests.with_label_values(&["a", "FAIL"]).get(), 1);
        assert_eq!(m.suite_reports.with_label_values(&["a", "FAIL"]).get(), 1);
        assert_eq!(
            m.runtime.with_label_values(&["a"]).get_sample_count(),
            3,
            "suite reports have no runtime"
        );
        assert_eq!(
            m.signal_latency
                .with_label_values(&["a", "sig"])
                .get_sample_count(),
            3
        );
    }

    #[test]
    fn two_instances_do_not_share_figures() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.on_report(&report("a", State::Pass, false));
        assert_eq!(a.0.tests.with_label_values(&["a", "PASS"]).get(), 1);
        assert_eq!(b.0.tests.with_label_values(&["a", "PASS"]).get(), 0);
    }

    #[test]
    fn mirrored_counters_follow_their_source() {
        let counter = IntCounter::new("x_total", "x").unwrap();
        mirror(&counter, 5);
        mirror(&counter, 5);
        mirror(&counter, 7);
        assert_eq!(counter.get(), 7);
    }
}
