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

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::alerts::{AlertCounters, Webhook};
use crate::model::{State, TestReport};
use crate::transport::GroupView;
use crate::worker::{Observer, WorkerHandle};

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Runtime buckets, in seconds: a case runs from milliseconds (signals already there) to its
/// `max_runtime`, which is at most an hour unless a case sets it longer
/// ([`DEFAULT_MAX_RUNTIME_BOUND`](crate::case::DEFAULT_MAX_RUNTIME_BOUND)).
const RUNTIME_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Signal latency buckets, in seconds: one Kafka hop is about a millisecond on a good broker,
/// and a wait lasts at most its timeout, or the test's `max_runtime` (an hour unless a case sets
/// it longer): the buckets reach that far, so a late signal is told from a very late one.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
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

/// A metric family as registered: its name, Prometheus type and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Family {
    name: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
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

/// Registers metric families and notes each one's name, type and labels.
struct Families {
    registry: Registry,
    list: Vec<Family>,
}

impl Families {
    fn add<M: Collector + Clone + 'static>(
        &mut self,
        metric: M,
        kind: &'static str,
        name: &'static str,
        labels: &'static [&'static str],
    ) -> M {
        self.registry
            .register(Box::new(metric.clone()))
            .expect(VALID);
        self.list.push(Family { name, kind, labels });
        metric
    }

    fn counter_vec(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &'static [&'static str],
    ) -> IntCounterVec {
        let metric = IntCounterVec::new(Opts::new(name, help), labels).expect(VALID);
        self.add(metric, "counter", name, labels)
    }

    fn counter(&mut self, name: &'static str, help: &str) -> IntCounter {
        let metric = IntCounter::new(name, help).expect(VALID);
        self.add(metric, "counter", name, &[])
    }

    fn gauge_vec(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &'static [&'static str],
    ) -> IntGaugeVec {
        let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect(VALID);
        self.add(metric, "gauge", name, labels)
    }

    fn float_gauge_vec(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &'static [&'static str],
    ) -> GaugeVec {
        let metric = GaugeVec::new(Opts::new(name, help), labels).expect(VALID);
        self.add(metric, "gauge", name, labels)
    }

    fn gauge(&mut self, name: &'static str, help: &str) -> IntGauge {
        let metric = IntGauge::new(name, help).expect(VALID);
        self.add(metric, "gauge", name, &[])
    }

    fn histogram_vec(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &'static [&'static str],
        buckets: &[f64],
    ) -> HistogramVec {
        let metric = HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            labels,
        )
        .expect(VALID);
        self.add(metric, "histogram", name, labels)
    }
}

/// Registration fails only for malformed or duplicate definitions, which are fixed here and
/// checked by this module's tests.
const VALID: &str = "livecheck's metric definitions are valid and unique";

/// The labels of `livecheck_build_info`: what is known of this build without a build script.
const BUILD_LABELS: &[&str] = &["version", "arch", "os"];

impl Metrics {
    /// Metrics with a registry of their own.
    pub fn new() -> Self {
        let mut r = Families {
            registry: Registry::new(),
            list: Vec::new(),
        };
        let build_info = r.gauge_vec(
            "livecheck_build_info",
            "Always 1; the labels say which livecheck this is: its version, and the CPU \
             architecture and operating system it was built for.",
            BUILD_LABELS,
        );
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH,
                std::env::consts::OS,
            ])
            .set(1);
        let inner = Inner {
            tests: r.counter_vec(
                "livecheck_tests_total",
                "Test reports by case and state (PASS, FAIL, ERROR, TIMEOUT, SKIP).",
                &["case", "state"],
            ),
            suite_reports: r.counter_vec(
                "livecheck_suite_reports_total",
                "Suite reports by case and state: FAIL (too many consecutive failures), STALL \
                 (no test for warn_stalled_after), PASS (recovered).",
                &["case", "state"],
            ),
            runtime: r.histogram_vec(
                "livecheck_test_runtime_seconds",
                "Runtime of tests that ran (not SKIP), by case.",
                &["case"],
                RUNTIME_BUCKETS,
            ),
            signal_latency: r.histogram_vec(
                "livecheck_signal_latency_seconds",
                "Seconds from the start of a signal's wait to its arrival (0 if it was there \
                 first), by case and signal.",
                &["case", "signal"],
                LATENCY_BUCKETS,
            ),
            signal_timeouts: r.counter_vec(
                "livecheck_signal_timeouts_total",
                "TIMEOUT reports by case and the signal the test waited for in vain (the \
                 series of a signal exists at 0 from its first arrival).",
                &["case", "signal"],
            ),
            last_test: r.float_gauge_vec(
                "livecheck_last_test_timestamp_seconds",
                "Unix time this worker last reported a test of the case (any state).",
                &["case"],
            ),
            last_failure: r.float_gauge_vec(
                "livecheck_last_failure_timestamp_seconds",
                "Unix time this worker last reported a failed test (FAIL, ERROR, TIMEOUT) of \
                 the case.",
                &["case"],
            ),
            case_state: r.gauge_vec(
                "livecheck_case_state",
                "1 for the state the case is in (INIT, PASS, FAIL, ERROR, TIMEOUT, STALL), 0 for \
                 the others.",
                &["case", "state"],
            ),
            suite_failing: r.gauge_vec(
                "livecheck_case_suite_failing",
                "1 while a suite FAIL or STALL of the case is in effect.",
                &["case"],
            ),
            consecutive_failures: r.gauge_vec(
                "livecheck_case_consecutive_failures",
                "Failures (FAIL, ERROR, TIMEOUT) of the case in a row.",
                &["case"],
            ),
            in_flight: r.gauge("livecheck_tests_in_flight", "Tests running now."),
            ready: r.gauge(
                "livecheck_worker_ready",
                "1 once the worker consumes and has a partition assignment.",
            ),
            leader: r.gauge(
                "livecheck_worker_leader",
                "1 while this worker is the leader (runs the fake-request timers, publishes suite \
                 reports).",
            ),
            stored_signals: r.gauge(
                "livecheck_stored_signals",
                "Signals held in the signal store (resolved, or being waited for).",
            ),
            orphaned_partitions: r.gauge(
                "livecheck_orphaned_partitions",
                "Partitions of the tests topic with tests waiting and no member of the group \
                 consuming them (their tests are run by no worker).",
            ),
            consumer_lag: r.gauge_vec(
                "livecheck_consumer_lag",
                "Tests written to a partition of the tests topic and not yet committed by the \
                 group (Kafka only).",
                &["topic", "partition"],
            ),
            tests_moved: r.counter(
                "livecheck_tests_moved_total",
                "Tests stopped unreported here because their partition moved to another worker \
                 (which runs them).",
            ),
            tests_received: r.counter("livecheck_tests_received_total", "Test executions received."),
            signals_received: r.counter("livecheck_signals_received_total", "Signals received."),
            skipped: r.counter_vec(
                "livecheck_skipped_messages_total",
                "Bad or untrusted messages skipped (logged at most once a minute), by topic \
                 (tests, bus, reports) and reason (undecodable, unknown_case, record_too_large, \
                 id_too_long, name_too_long, claim_not_believed, not_from_leader, future).",
                &["topic", "reason"],
            ),
            report_publish_errors: r.counter(
                "livecheck_report_publish_errors_total",
                "Reports that could not be published (their tests run again).",
            ),
            fake_request_errors: r.counter(
                "livecheck_fake_request_errors_total",
                "Fake requests that failed.",
            ),
            consumer_errors: r.counter(
                "livecheck_consumer_errors_total",
                "Kafka consumer errors (the client reconnects by itself).",
            ),
            messages_dropped: r.counter_vec(
                "livecheck_messages_dropped_total",
                "Messages this process published that never reached Kafka, by stage: queue (tests \
                 and signals that found the producer's queue full, dropped without waiting) and \
                 delivery (queued, but not acknowledged within message.timeout.ms).",
                &["stage"],
            ),
            peer_reports: r.counter(
                "livecheck_peer_reports_total",
                "Test reports of other workers of the group counted in this worker's case health.",
            ),
            already_reported: r.counter_vec(
                "livecheck_already_reported_total",
                "Tests whose report the group had published, by when it was seen: delivered (not \
                 run), finished (this worker's report dropped), read_back (a second report, not \
                 counted).",
                &["when"],
            ),
            alerts: r.counter_vec(
                "livecheck_alerts_total",
                "Webhook alerts by outcome: sent, failed (retries exhausted), dropped (queue full).",
                &["outcome"],
            ),
            otel_spans: r.counter_vec(
                "livecheck_otel_spans_total",
                "Spans of tests for the OpenTelemetry collector by outcome: exported, dropped \
                 (the export queue was full, or the collector did not take them).",
                &["outcome"],
            ),
            untrusted: r.counter_vec(
                "livecheck_untrusted_test_context_total",
                "Test context dropped because its signature is missing or wrong, where the \
                 deployment signs test context, by where it was seen (http, kafka_headers, \
                 test_record, signal, marker, report); counted in this process.",
                &["source"],
            ),
            alert_sources: Mutex::new(Vec::new()),
            refresh: Mutex::new(()),
            families: r.list,
            registry: r.registry,
        };
        Metrics(Arc::new(inner))
    }

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
                    .set(i64::from(status.state == state));
            }
            m.suite_failing
                .with_label_values(&[case])
                .set(i64::from(status.suite_failed));
            m.consecutive_failures
                .with_label_values(&[case])
                .set(i64::from(status.consecutive_failures));
        }
        let stats = worker.stats();
        m.in_flight.set(saturating_i64(stats.in_flight as u64));
        m.ready
            .set(i64::from(worker.is_ready() && worker.is_assigned()));
        m.leader.set(i64::from(worker.is_leader()));
        m.stored_signals
            .set(saturating_i64(worker.stored_signals() as u64));
        mirror(&m.tests_received, stats.tests_received);
        mirror(&m.tests_moved, stats.tests_moved);
        if let Some(group) = worker.group() {
            self.read_group(&group);
        }
        mirror(&m.signals_received, stats.signals_received);
        mirror(&m.report_publish_errors, stats.report_publish_errors);
        mirror(&m.fake_request_errors, stats.fake_request_errors);
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
        mirror(&m.peer_reports, stats.peer_reports);
        // Only where spans are exported (the `otel` feature, an endpoint): from the first one.
        if stats.spans_exported + stats.spans_dropped > 0 {
            for (outcome, value) in [
                ("exported", stats.spans_exported),
                ("dropped", stats.spans_dropped),
            ] {
                mirror(&m.otel_spans.with_label_values(&[outcome]), value);
            }
        }
        for (when, value) in [
            ("delivered", stats.already_reported),
            ("finished", stats.duplicate_reports_dropped),
            ("read_back", stats.peer_duplicates),
        ] {
            mirror(&m.already_reported.with_label_values(&[when]), value);
        }
        for (topic, reason, value) in [
            ("tests", "undecodable", transport.undecodable_tests),
            ("bus", "undecodable", transport.undecodable_signals),
            ("reports", "undecodable", transport.undecodable_reports),
            ("tests", "unknown_case", stats.unknown_case_tests),
            ("bus", "unknown_case", stats.unknown_case_signals),
            ("reports", "future", stats.future_reports),
        ] {
            mirror(&m.skipped.with_label_values(&[topic, reason]), value);
        }
        for (topic, reason, value) in worker.transport_skipped() {
            mirror(&m.skipped.with_label_values(&[topic, reason]), value);
        }
        // Process-wide: the services of this process verify what they receive too.
        for source in crate::signing::Source::ALL {
            mirror(
                &m.untrusted.with_label_values(&[source.as_str()]),
                crate::signing::untrusted(source),
            );
        }
        let (mut sent, mut failed, mut dropped) = (0, 0, 0);
        let sources = lock(&m.alert_sources);
        for source in sources.iter() {
            let source = source.snapshot();
            sent += source.sent;
            failed += source.failed;
            dropped += source.dropped;
        }
        if !sources.is_empty() {
            for (outcome, value) in [("sent", sent), ("failed", failed), ("dropped", dropped)] {
                mirror(&m.alerts.with_label_values(&[outcome]), value);
            }
        }
    }

    /// The group's orphaned partitions and the lag of each partition of the tests topic.
    fn read_group(&self, group: &GroupView) {
        let m = &*self.0;
        m.orphaned_partitions
            .set(saturating_i64(group.orphaned.len() as u64));
        for partition in &group.partitions {
            let labels = [group.topic.as_str(), &partition.partition.to_string()];
            match partition.lag {
                Some(lag) => m.consumer_lag.with_label_values(&labels).set(lag),
                // Unknown now (the watermarks could not be read): no stale figure.
                None => {
                    let _ = m.consumer_lag.remove_label_values(&labels);
                }
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
                traceparent: None,
                tracestate: None,
                signature: None,
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
            trace_id: None,
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
    fn a_timeout_is_counted_against_the_signal_it_waited_for() {
        let metrics = Metrics::new();
        // A signal that arrived has a timeout series at 0 before its first timeout.
        metrics.on_report(&report("a", State::Pass, false));
        let m = &*metrics.0;
        let text = metrics.encode();
        assert!(
            text.contains("livecheck_signal_timeouts_total{case=\"a\",signal=\"sig\"} 0"),
            "{text}"
        );
        let mut timeout = report("a", State::Timeout, false);
        timeout.signal_latency.clear();
        timeout.timed_out_signal = Some("late".into());
        metrics.on_report(&timeout);
        metrics.on_report(&timeout);
        assert_eq!(m.signal_timeouts.with_label_values(&["a", "late"]).get(), 2);
        assert_eq!(m.signal_timeouts.with_label_values(&["a", "sig"]).get(), 0);
        // A failure that is not a timeout counts against no signal.
        let mut fail = report("a", State::Fail, false);
        fail.timed_out_signal = Some("late".into());
        metrics.on_report(&fail);
        assert_eq!(m.signal_timeouts.with_label_values(&["a", "late"]).get(), 2);
    }

    #[test]
    fn last_test_and_last_failure_are_unix_timestamps() {
        let metrics = Metrics::new();
        let m = &*metrics.0;
        let before = unix_now();
        metrics.on_report(&report("a", State::Pass, false));
        let passed = m.last_test.with_label_values(&["a"]).get();
        assert!(
            passed >= before && passed <= unix_now(),
            "{passed} vs {before}"
        );
        assert!(
            !metrics
                .encode()
                .contains("livecheck_last_failure_timestamp_seconds{"),
            "no failure yet, no series"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        metrics.on_report(&report("a", State::Timeout, false));
        let failed = m.last_failure.with_label_values(&["a"]).get();
        assert!(failed > passed, "{failed} vs {passed}");
        assert_eq!(m.last_test.with_label_values(&["a"]).get(), failed);
        // Suite reports are not tests.
        metrics.on_report(&report("a", State::Fail, true));
        assert_eq!(m.last_failure.with_label_values(&["a"]).get(), failed);
    }

    #[test]
    fn build_info_names_this_version() {
        let text = Metrics::new().encode();
        let line = format!(
            "livecheck_build_info{{arch=\"{}\",os=\"{}\",version=\"{}\"}} 1",
            std::env::consts::ARCH,
            std::env::consts::OS,
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&line), "{line} not in\n{text}");
    }

    #[test]
    fn latency_buckets_reach_the_longest_wait() {
        let longest = crate::case::DEFAULT_MAX_RUNTIME_BOUND.as_secs_f64();
        for buckets in [LATENCY_BUCKETS, RUNTIME_BUCKETS] {
            assert_eq!(buckets.last().copied(), Some(longest));
            assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{buckets:?}");
        }
        // The default signal timeout in the examples and docs, 30 s, has a bucket of its own.
        assert!(LATENCY_BUCKETS.contains(&30.0));
    }

    #[test]
    fn consumer_lag_is_per_topic_and_partition() {
        let metrics = Metrics::new();
        let mut view = GroupView {
            group: "g".into(),
            topic: "livecheck".into(),
            state: "Stable".into(),
            members: 1,
            partitions: vec![
                crate::transport::PartitionView {
                    partition: 0,
                    owner: None,
                    lag: Some(7),
                },
                crate::transport::PartitionView {
                    partition: 1,
                    owner: None,
                    lag: None,
                },
            ],
            orphaned: vec![0],
        };
        metrics.read_group(&view);
        let m = &*metrics.0;
        assert_eq!(m.orphaned_partitions.get(), 1);
        let text = metrics.encode();
        assert!(
            text.contains("livecheck_consumer_lag{partition=\"0\",topic=\"livecheck\"} 7"),
            "{text}"
        );
        assert!(!text.contains("partition=\"1\""), "unknown lag: {text}");
        view.partitions[0].lag = None;
        view.orphaned.clear();
        metrics.read_group(&view);
        assert!(!metrics.encode().contains("livecheck_consumer_lag{"));
        assert_eq!(m.orphaned_partitions.get(), 0);
    }

    /// The table of docs/operations.md, "## Metrics": name, type, label names of each row.
    fn documented() -> Vec<(String, String, Vec<String>)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
        let doc = std::fs::read_to_string(path).expect("docs/operations.md");
        let section = doc
            .split("\n## Metrics\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("a Metrics section");
        let ticked = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        section
            .lines()
            .filter(|l| l.starts_with("| `livecheck_"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let name = ticked(cells[1]).remove(0);
                (name, cells[2].to_owned(), ticked(cells[3]))
            })
            .collect()
    }

    #[test]
    fn docs_list_every_metric_with_its_type_and_labels() {
        let mut registered: Vec<(String, String, Vec<String>)> = Metrics::new()
            .0
            .families
            .iter()
            .map(|f| {
                let labels = f.labels.iter().map(|l| (*l).to_owned()).collect();
                (f.name.to_owned(), f.kind.to_owned(), labels)
            })
            .collect();
        let mut documented = documented();
        registered.sort();
        documented.sort();
        assert_eq!(registered, documented, "docs/operations.md, ## Metrics");
    }

    /// Every `livecheck_*` name in `text`.
    fn names_in(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("livecheck_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            out.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        out
    }

    #[test]
    fn the_grafana_dashboard_queries_only_metrics_that_exist() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/grafana-dashboard.json"
        );
        let text = std::fs::read_to_string(path).expect("docs/grafana-dashboard.json");
        let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let metrics = Metrics::new();
        let families = &metrics.0.families;
        let known = |name: &str| {
            families.iter().any(|f| {
                f.name == name
                    || (f.kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|suffix| name.strip_suffix(suffix) == Some(f.name)))
            })
        };
        let mut used = Vec::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("a PromQL expression");
                for name in names_in(expr) {
                    assert!(known(&name), "{name} in {:?} is no metric", panel["title"]);
                    used.push(name);
                }
            }
        }
        // What the dashboard is for (issue 12).
        for wanted in [
            "livecheck_case_state",
            "livecheck_tests_total",
            "livecheck_signal_timeouts_total",
            "livecheck_signal_latency_seconds_bucket",
            "livecheck_consumer_lag",
        ] {
            assert!(used.iter().any(|n| n == wanted), "no panel uses {wanted}");
        }
        assert!(text.contains("histogram_quantile("));
    }

    #[test]
    fn names_follow_the_prometheus_conventions() {
        for family in &Metrics::new().0.families {
            let name = family.name;
            assert!(name.starts_with("livecheck_"), "{name}");
            assert_eq!(
                family.kind == "counter",
                name.ends_with("_total"),
                "{name}: counters, and only they, end in _total"
            );
            if name.contains("timestamp") {
                assert!(name.ends_with("_timestamp_seconds"), "{name}");
            }
            assert!(
                !name.contains("since") && !name.contains("last_hour"),
                "{name}: export timestamps and counters, let PromQL do the arithmetic"
            );
        }
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
