//! Case health: the state of a case as a whole, judged from the test reports of the whole group
//! of workers. Every worker feeds every test report of the group (its own, and the others' read
//! back from the report topic) into its `CaseHealth`, so each worker holds the group's view;
//! only the leader publishes the suite reports that view makes due (the worker decides,
//! `CaseHealth::take_due` says what).
//!
//! What is judged, against Faust's `faust/livecheck/case.py`:
//! - `max_consecutive_failures` failures (FAIL, ERROR, TIMEOUT) in a row → suite FAIL, as
//!   `_set_test_error_state` does;
//! - no test for `warn_stalled_after` → suite STALL. The clock runs from the worker's start and
//!   is checked every `health_interval`, so a case that never gets traffic stalls
//!   `warn_stalled_after` after start. Faust (`_check_frequency`) checks once per
//!   `warn_stalled_after` with a clock started one `warn_stalled_after` after start, so its first
//!   STALL comes 1–2 × `warn_stalled_after` after start. A case already in suite FAIL does not
//!   also STALL;
//! - the HTTP helpers running out of retries → suite FAIL (service down), as `url_request` does.
//!
//! Recovery needs evidence: a pass of a test issued after the last failure (Faust's
//! `on_test_pass` compares the test's timestamp with `last_fail` likewise), or the service
//! answering again after a "service down". Faust also recovers on any successful URL request and
//! on every stall-check tick with traffic (`_maybe_recover_from_failed_state`), so a case whose
//! failures are further apart than `state_transition_delay` never reaches
//! `max_consecutive_failures`: not here, where only a pass resets the count.
//!
//! Suite reports are about changes: one per transition (FAIL, STALL, PASS = recovered), and the
//! next one at least `state_transition_delay` after a FAIL or STALL report (Faust's
//! `on_suite_fail` and `_maybe_recover_from_failed_state` wait that long likewise). Faust
//! re-posts a failure every `state_transition_delay` while it lasts and posts no recovery; here a
//! reminder is an option of the worker (off by default).
//!
//! History, as Faust keeps it: runtimes of passing tests only (`on_test_pass`), medians as
//! Python's `statistics.median` (the mean of the two middle values of an even count). Faust's
//! `latency_history` is how late a test came against `frequency`; here it is the signals'
//! latency, and the frequency is the interval between the group's test reports (Faust: between
//! tests started by its worker).
//!
//! One clock for durations: tokio's ([`tokio::time::Instant`]), for the stall clock, the
//! transition delay and the interval between tests alike, so that on tokio's paused clock (a
//! `livecheck::testing::TestKit`) they all agree. The wall clock gives the times shown
//! (and the issue times a pass is compared with, which come from the tests).
//!
//! The parts: `verdict` judges (the suite state machine), `stats` counts (histories, medians),
//! `view` keeps what the status page shows and makes the [`CaseStatus`] snapshot; `CaseHealth`
//! feeds them each report. `reported` remembers which tests the group reported.

mod reported;
mod stats;
mod status;
mod verdict;
mod view;

#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::service::case::CaseOptions;
#[cfg(test)]
use crate::wire::model::State;
use crate::wire::model::TestReport;

pub(crate) use reported::ReportedTests;
#[cfg(feature = "ops")]
pub(crate) use status::time;
pub(crate) use status::TestDetail;
pub use status::{CaseStatus, RecentTest, SignalHealth, TrendMinute};
#[cfg(feature = "ops")]
pub(crate) use view::RECENT_TESTS;

use stats::Stats;
use verdict::Verdict;
use view::View;

/// The health of one case, from the test reports of the group: its verdict, its statistics
/// and what the status page shows of it, fed together.
#[derive(Debug)]
pub(crate) struct CaseHealth {
    name: &'static str,
    verdict: Verdict,
    stats: Stats,
    view: View,
}

impl CaseHealth {
    /// A case starting now.
    pub(crate) fn new(name: &'static str, options: CaseOptions) -> Self {
        let now = Instant::now();
        CaseHealth {
            name,
            verdict: Verdict::new(name, options, now),
            stats: Stats::new(options.max_history, now),
            view: View::new(Utc::now()),
        }
    }

    /// Notes a change of the state shown, or of the suite judgement, that happened at `at`.
    fn settle(&mut self, at: DateTime<Utc>) {
        self.view
            .settle(self.verdict.state(), self.verdict.suite_failed(), at);
    }

    /// The full view of one of the newest tests, by id (the newest report of it).
    #[cfg_attr(not(feature = "ops"), allow(dead_code))]
    pub(crate) fn test_detail(&self, id: &str) -> Option<TestDetail> {
        self.view.test_detail(self.name, id)
    }

    /// The state shown for the case (see [`CaseStatus::state`]).
    // What the unit tests read.
    #[cfg(test)]
    pub(crate) fn state(&self) -> State {
        self.verdict.state()
    }

    /// Failures in a row.
    // What the unit tests read.
    #[cfg(test)]
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.verdict.consecutive_failures
    }

    /// Whether a suite FAIL or STALL is in effect (judged; the leader publishes it).
    // What the unit tests read.
    #[cfg(test)]
    pub(crate) fn suite_failed(&self) -> bool {
        self.verdict.suite_failed()
    }

    /// A test of the case arrived at this worker: the case has traffic (the stall clock).
    pub(crate) fn on_test_received(&mut self) {
        self.verdict.on_test_received(Instant::now());
    }

    /// A test report of the group published now, at `at` by the wall clock (this worker's
    /// own); each test must be fed once (the worker drops a second report of the same test).
    pub(crate) fn on_report(&mut self, report: &TestReport, at: DateTime<Utc>) {
        self.record(report, at, Some(Instant::now()));
    }

    /// A test report of another worker of the group, published at `at` by the wall clock and
    /// read now (live, or replayed at start); each test must be fed once.
    pub(crate) fn on_peer_report(&mut self, report: &TestReport, at: DateTime<Utc>) {
        // How long ago it was published can only be told by the wall clock, the one clock two
        // processes share; that age places it on tokio's clock, so that the interval between
        // reports replayed at start is the one between their publications, not between their
        // reads. Older than tokio's clock can tell: no interval.
        let ago = (Utc::now() - at).to_std().unwrap_or_default();
        self.record(report, at, Instant::now().checked_sub(ago));
    }

    /// Feeds a report published at `at` (wall clock) and at `published` (tokio's clock).
    fn record(&mut self, report: &TestReport, at: DateTime<Utc>, published: Option<Instant>) {
        let now = Instant::now();
        self.view.book(report, at);
        self.stats.record(report, published, now);
        self.verdict.on_report(report, at, now);
        self.settle(at);
    }

    /// The periodic check: a case with no test for `warn_stalled_after` stalls.
    pub(crate) fn check(&mut self) {
        self.verdict.check();
        self.settle(Utc::now());
    }

    /// A request of the case's HTTP helpers failed every retry: the service counts as down.
    pub(crate) fn on_service_down(&mut self, message: String) {
        self.verdict.on_service_down(message);
        self.settle(Utc::now());
    }

    /// A request of the case's HTTP helpers succeeded: a service that was down is back.
    pub(crate) fn on_service_up(&mut self) {
        self.verdict.on_service_up();
        self.settle(Utc::now());
    }

    /// A suite report of the group's leader, read back from the report topic: it is what was
    /// published, and this worker adopts the judgement (so that, leader later, it does not
    /// publish the same transition again).
    pub(crate) fn adopt(&mut self, report: &TestReport, at: DateTime<Utc>) {
        self.verdict.adopt(report, at);
        self.settle(at);
    }

    /// The suite report due now, if any, marked as published: when the judged state differs
    /// from the last published one (and, after a FAIL or STALL report, `state_transition_delay`
    /// has passed), or a `reminder` of a failure that lasts. Only the leader publishes: for
    /// another worker this returns `None` and changes nothing.
    pub(crate) fn take_due(
        &mut self,
        leader: bool,
        reminder: Option<Duration>,
    ) -> Option<TestReport> {
        self.verdict.take_due(leader, reminder)
    }

    /// A snapshot for display.
    pub(crate) fn status(&self) -> CaseStatus {
        self.status_at(Utc::now())
    }

    /// A snapshot for display, the wall clock reading `wall` (for the trend's last hour and the
    /// time in the current state).
    fn status_at(&self, wall: DateTime<Utc>) -> CaseStatus {
        self.view
            .status(self.name, &self.verdict, &self.stats, wall)
    }
}
