//! A worker's counters: [`Counters`] as it updates them, [`WorkerStats`] as it shows them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Counters of a worker: a snapshot ([`WorkerHandle::stats`](super::WorkerHandle::stats)), as
/// [`TransportCounters`](crate::transport::TransportCounters) are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Tests received.
    pub tests_received: u64,
    /// Signals received.
    pub signals_received: u64,
    /// Tests for a case this worker does not run (logged and skipped).
    pub unknown_case_tests: u64,
    /// Signals for a case this worker does not run (logged and skipped).
    pub unknown_case_signals: u64,
    /// Reports that could not be published (their tests are not acknowledged).
    pub report_publish_errors: u64,
    /// Fake requests that failed.
    pub fake_request_errors: u64,
    /// Tests running now.
    pub in_flight: usize,
    /// Tests stopped unreported because their partition moved to another worker, which runs
    /// them.
    pub tests_moved: u64,
    /// Tests delivered whose report the group had published already: acknowledged, not run.
    pub already_reported: u64,
    /// Reports of this worker dropped because another worker reported the same test first
    /// (both ran it, e.g. across a rebalance).
    pub duplicate_reports_dropped: u64,
    /// Test reports of other workers of the group fed into this worker's case health.
    pub peer_reports: u64,
    /// Reports of a test already counted, read back from the group (not counted twice).
    pub peer_duplicates: u64,
    /// Spans of tests the collector took (the `otel` feature's export; 0 without it).
    pub spans_exported: u64,
    /// Spans of tests dropped: the export queue was full, or the collector did not take them
    /// (the `otel` feature's export; 0 without it).
    pub spans_dropped: u64,
    /// Peers' reports dated beyond [`WorkerSettings::max_clock_skew`](super::WorkerSettings::max_clock_skew) ahead: ignored.
    pub future_reports: u64,
    /// Test records whose signature is missing or wrong, where the deployment signs test
    /// context ([`crate::signing`]): not run.
    pub untrusted_tests: u64,
    /// Reports too large for the broker even cut down, replaced by a minimal report.
    pub minimal_reports: u64,
    /// Reports that could not be published even as a minimal report: dropped (their tests
    /// acknowledged, so they do not hold a slot or run again).
    pub reports_dropped: u64,
}

/// A worker's counters, as it updates them (snapshots: [`WorkerStats`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Tests received.
    pub(crate) tests_received: AtomicU64,
    /// Signals received.
    pub(crate) signals_received: AtomicU64,
    /// Tests for a case this worker does not run (logged and skipped).
    pub(crate) unknown_case_tests: AtomicU64,
    /// Signals for a case this worker does not run (logged and skipped).
    pub(crate) unknown_case_signals: AtomicU64,
    /// Reports that could not be published (their tests are not acknowledged).
    pub(crate) report_publish_errors: AtomicU64,
    /// Fake requests that failed.
    pub(crate) fake_request_errors: AtomicU64,
    /// Tests running now.
    pub(crate) in_flight: AtomicUsize,
    /// Tests stopped unreported because their partition moved to another worker, which runs
    /// them.
    pub(crate) tests_moved: AtomicU64,
    /// Tests delivered whose report the group had published already: acknowledged, not run.
    pub(crate) already_reported: AtomicU64,
    /// Reports of this worker dropped because another worker reported the same test first
    /// (both ran it, e.g. across a rebalance).
    pub(crate) duplicate_reports_dropped: AtomicU64,
    /// Test reports of other workers of the group fed into this worker's case health.
    pub(crate) peer_reports: AtomicU64,
    /// Reports of a test already counted, read back from the group (not counted twice).
    pub(crate) peer_duplicates: AtomicU64,
    /// Peers' reports dated too far ahead: ignored.
    pub(crate) future_reports: AtomicU64,
    /// Test records not signed where the deployment signs: not run.
    pub(crate) untrusted_tests: AtomicU64,
    /// Reports replaced by a minimal one.
    pub(crate) minimal_reports: AtomicU64,
    /// Reports dropped: not even a minimal one could be published.
    pub(crate) reports_dropped: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            tests_received: self.tests_received.load(Ordering::Relaxed),
            signals_received: self.signals_received.load(Ordering::Relaxed),
            unknown_case_tests: self.unknown_case_tests.load(Ordering::Relaxed),
            unknown_case_signals: self.unknown_case_signals.load(Ordering::Relaxed),
            report_publish_errors: self.report_publish_errors.load(Ordering::Relaxed),
            fake_request_errors: self.fake_request_errors.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            tests_moved: self.tests_moved.load(Ordering::Relaxed),
            already_reported: self.already_reported.load(Ordering::Relaxed),
            duplicate_reports_dropped: self.duplicate_reports_dropped.load(Ordering::Relaxed),
            peer_reports: self.peer_reports.load(Ordering::Relaxed),
            peer_duplicates: self.peer_duplicates.load(Ordering::Relaxed),
            spans_exported: 0,
            spans_dropped: 0,
            future_reports: self.future_reports.load(Ordering::Relaxed),
            untrusted_tests: self.untrusted_tests.load(Ordering::Relaxed),
            minimal_reports: self.minimal_reports.load(Ordering::Relaxed),
            reports_dropped: self.reports_dropped.load(Ordering::Relaxed),
        }
    }
}
