//! Before a scrape: the gauges read from the worker's snapshots, and the counters the worker,
//! the transport, the signing checks and the alert webhooks keep themselves mirrored.

use prometheus::IntCounter;

use super::Metrics;
use crate::lock::lock;
use crate::transport::GroupView;
use crate::wire::model::State;
use crate::worker::WorkerHandle;

impl Metrics {
    pub(super) fn refresh(&self, worker: &WorkerHandle) {
        let m = &*self.0;
        let _one_at_a_time = lock(&m.refresh);
        for case in worker.cases() {
            // Series exist from the start (at 0), so rates and alerts work from the first scrape.
            for state in test_states() {
                m.tests.with_label_values(&[case.name(), state.as_str()]);
            }
            m.runtime.with_label_values(&[case.name()]);
        }
        for status in worker.statuses() {
            let case = status.name.as_str();
            for state in case_states() {
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
        let transport = worker.transport();
        m.in_flight.set(saturating_i64(stats.in_flight as u64));
        m.ready
            .set(i64::from(worker.not_ready(&transport).is_none()));
        m.leader.set(i64::from(worker.is_leader()));
        m.stored_signals
            .set(saturating_i64(worker.stored_signals() as u64));
        mirror(&m.tests_received, stats.tests_received);
        mirror(&m.tests_moved, stats.tests_moved);
        if let Some(group) = &transport.group {
            self.read_group(group);
        }
        mirror(&m.signals_received, stats.signals_received);
        mirror(&m.report_publish_errors, stats.report_publish_errors);
        mirror(&m.fake_request_errors, stats.fake_request_errors);
        let counters = transport.counters;
        mirror(&m.consumer_errors, counters.consumer_errors);
        mirror(
            &m.messages_dropped.with_label_values(&["queue"]),
            counters.dropped,
        );
        mirror(
            &m.messages_dropped.with_label_values(&["delivery"]),
            counters.undelivered,
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
            ("tests", "undecodable", counters.undecodable_tests),
            ("bus", "undecodable", counters.undecodable_signals),
            ("reports", "undecodable", counters.undecodable_reports),
            ("tests", "unknown_case", stats.unknown_case_tests),
            ("bus", "unknown_case", stats.unknown_case_signals),
            ("reports", "future", stats.future_reports),
        ] {
            mirror(&m.skipped.with_label_values(&[topic, reason]), value);
        }
        for (topic, reason, value) in transport.skipped {
            mirror(&m.skipped.with_label_values(&[topic, reason]), value);
        }
        // Process-wide: the services of this process verify what they receive too.
        for source in crate::wire::signing::Source::ALL {
            mirror(
                &m.untrusted.with_label_values(&[source.as_str()]),
                crate::wire::signing::untrusted(source),
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
    pub(super) fn read_group(&self, group: &GroupView) {
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
pub(super) fn mirror(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// States a test report can have (the `state` label of `livecheck_tests_total`): all but INIT
/// (nothing known yet) and STALL (a suite report's).
pub(super) fn test_states() -> impl Iterator<Item = State> {
    State::ALL
        .into_iter()
        .filter(|state| !matches!(state, State::Init | State::Stall))
}

/// States a case can be in (the `state` label of `livecheck_case_state`): all but SKIP (a test
/// that did not run says nothing of its case).
pub(super) fn case_states() -> impl Iterator<Item = State> {
    State::ALL.into_iter().filter(|state| *state != State::Skip)
}
