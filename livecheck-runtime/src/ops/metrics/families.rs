//! The metric families a worker exports, registered once per [`Metrics`]: each one's name,
//! help, type and labels, and the buckets of its histograms.

use std::sync::{Arc, Mutex};

use prometheus::core::Collector;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::{Inner, Metrics};

/// Runtime buckets, in seconds: a case runs from milliseconds (signals already there) to its
/// `max_runtime`, which is at most an hour unless a case sets it longer
/// ([`DEFAULT_MAX_RUNTIME_BOUND`](crate::case::DEFAULT_MAX_RUNTIME_BOUND)).
pub(super) const RUNTIME_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Signal latency buckets, in seconds: one Kafka hop is about a millisecond on a good broker,
/// and a wait lasts at most its timeout, or the test's `max_runtime` (an hour unless a case sets
/// it longer): the buckets reach that far, so a late signal is told from a very late one.
pub(super) const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A metric family as registered: its name, Prometheus type and label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) kind: &'static str,
    pub(super) labels: &'static [&'static str],
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
                "1 when /readyz says ready: consuming, with a partition assignment, and no partition of \
                 the group orphaned.",
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
}
