//! Case health: the state of a case as a whole, judged from the test reports of the whole group
//! of workers. Every worker feeds every test report of the group (its own, and the others' read
//! back from the report topic) into its [`CaseHealth`], so each worker holds the group's view;
//! only the leader publishes the suite reports that view makes due (the worker decides,
//! [`CaseHealth::take_due`] says what).
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

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use tokio::time::Instant;

use crate::case::CaseOptions;
use crate::duration::humanize;
use crate::model::{State, TestReport};

/// What a case is judged to be as a whole: the state of its last suite report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    /// Healthy (no suite report yet, or the last one was a recovery).
    Ok,
    /// Failing: too many failures in a row, or its service is down.
    Fail,
    /// No test for `warn_stalled_after`.
    Stall,
}

impl Suite {
    fn state(self) -> State {
        match self {
            Suite::Ok => State::Pass,
            Suite::Fail => State::Fail,
            Suite::Stall => State::Stall,
        }
    }

    fn of(state: State) -> Option<Suite> {
        match state {
            State::Pass => Some(Suite::Ok),
            State::Fail | State::Error | State::Timeout => Some(Suite::Fail),
            State::Stall => Some(Suite::Stall),
            _ => None,
        }
    }
}

/// The health of one case, from the test reports of the group.
#[derive(Debug)]
pub struct CaseHealth {
    name: &'static str,
    options: CaseOptions,
    /// The last test outcome that counts (a failure, or a pass issued after the last failure).
    status: State,
    consecutive_failures: u32,
    total_failures: u64,
    total_by_state: BTreeMap<State, u64>,
    /// Conditions of a suite failure; each ends only on evidence.
    service_down: Option<String>,
    stalled: bool,
    /// Whether a test was reported since the case stalled (it is then shown by its outcome).
    tested_since_stall: bool,
    /// A suite FAIL read from the leader whose cause this worker has not seen itself.
    peer_failed: Option<String>,
    /// When the last failure was known (wall clock): a test issued after it must pass to recover.
    last_failure: Option<DateTime<Utc>>,
    /// The last suite state published (by this worker, or read back from the group's leader).
    published: Suite,
    published_at: Option<Instant>,
    last_test_seen: Instant,
    any_test_seen: bool,
    /// Latest publication time of a report seen, for the interval between tests.
    last_report_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_outcome: Option<State>,
    runtime_history: VecDeque<f64>,
    latency_history: VecDeque<f64>,
    frequency_history: VecDeque<f64>,
    signal_history: BTreeMap<String, VecDeque<f64>>,
    tests_per_minute: VecDeque<(u64, u64)>,
    started: Instant,
    /// The state shown ([`CaseHealth::state`]) when it last changed, and since when.
    shown: State,
    shown_since: DateTime<Utc>,
    /// Since when a suite FAIL or STALL is in effect.
    suite_failed_since: Option<DateTime<Utc>>,
    last_pass_at: Option<DateTime<Utc>>,
    last_failure_at: Option<DateTime<Utc>>,
    /// The newest [`RECENT_TESTS`] test reports, oldest first.
    recent: VecDeque<Recent>,
    /// Tests, failures and runtimes per wall-clock minute (Unix minutes), the last hour.
    minutes: BTreeMap<i64, Minute>,
    /// TIMEOUTs per signal waited for in vain.
    timeouts: BTreeMap<String, SignalTimeouts>,
}

/// How many of a case's newest test reports are kept for the status page (`recent_tests`).
pub const RECENT_TESTS: usize = 20;

/// A kept report is cut to this many bytes of JSON (its traceback and error text first), so
/// the [`RECENT_TESTS`] reports of a case stay small whatever the tests write.
const RECENT_REPORT_BYTES: usize = 16 * 1024;

/// Error text in a `recent_tests` entry is cut to this many characters (the whole text is in
/// the test's own view).
const RECENT_ERROR_CHARS: usize = 300;

/// Runtimes kept per minute for the trend's percentiles: beyond this many tests in one minute,
/// a uniform sample of them (reservoir sampling).
const MINUTE_SAMPLES: usize = 256;

/// Minutes of trend kept.
const TREND_MINUTES: i64 = 60;

#[derive(Debug, Clone)]
struct Recent {
    report: TestReport,
    at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Minute {
    tests: u64,
    failures: u64,
    runtimes: Vec<f64>,
    /// Runtimes offered (the sample holds [`MINUTE_SAMPLES`] of them at most).
    offered: u64,
}

impl Minute {
    fn add(&mut self, runtime: f64) {
        self.offered += 1;
        if self.runtimes.len() < MINUTE_SAMPLES {
            self.runtimes.push(runtime);
        } else {
            let slot = rand::random_range(0..self.offered);
            if let Some(kept) = usize::try_from(slot)
                .ok()
                .and_then(|slot| self.runtimes.get_mut(slot))
            {
                *kept = runtime;
            }
        }
    }
}

#[derive(Debug, Default)]
struct SignalTimeouts {
    count: u64,
    last_at: Option<DateTime<Utc>>,
}

/// Writes a [`State`] by its name in our API (`"PASS"`, not Faust's wire string).
fn state_name<S: Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(state.as_str())
}

fn option_state_name<S: Serializer>(state: &Option<State>, s: S) -> Result<S::Ok, S::Error> {
    match state {
        Some(state) => s.serialize_str(state.as_str()),
        None => s.serialize_none(),
    }
}

/// Times in the API: RFC 3339 in UTC, milliseconds (`2026-12-02T01:02:03.456Z`).
pub(crate) fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

pub(crate) fn option_time<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(t)),
        None => s.serialize_none(),
    }
}

/// A snapshot of a case's health, for the status page, the API and logs. Durations are in
/// seconds (`_seconds`), times are RFC 3339 strings in UTC (`_at`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CaseStatus {
    /// The case.
    pub name: String,
    /// State of the case: INIT, PASS, FAIL, ERROR, TIMEOUT (last test failed) or STALL (no test
    /// since the case stalled).
    #[serde(serialize_with = "state_name")]
    pub state: State,
    /// When the case entered `state` (a change of the state shown: PASS → FAIL, FAIL → ERROR,
    /// ...; the same outcome again changes nothing). For a case that never changed, when the
    /// worker started.
    #[serde(serialize_with = "time")]
    pub state_since_at: DateTime<Utc>,
    /// Seconds since `state_since_at`.
    pub state_for_seconds: f64,
    /// Outcome of the last test.
    #[serde(serialize_with = "option_state_name")]
    pub last_outcome: Option<State>,
    /// When the last passing test was reported.
    #[serde(serialize_with = "option_time")]
    pub last_pass_at: Option<DateTime<Utc>>,
    /// When the last failing test (FAIL, ERROR, TIMEOUT) was reported.
    #[serde(serialize_with = "option_time")]
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Failures in all.
    pub total_failures: u64,
    /// Tests by outcome.
    pub total_by_state: BTreeMap<String, u64>,
    /// Whether a suite FAIL or STALL is in effect.
    pub suite_failed: bool,
    /// Since when the suite FAIL or STALL in effect is judged, if one is.
    #[serde(serialize_with = "option_time")]
    pub suite_failed_since_at: Option<DateTime<Utc>>,
    /// Median runtime in seconds of the last `max_history` passing tests.
    pub runtime_median_seconds: Option<f64>,
    /// 99th percentile runtime in seconds of the last `max_history` passing tests.
    pub runtime_p99_seconds: Option<f64>,
    /// Median signal latency in seconds (all signals).
    pub latency_median_seconds: Option<f64>,
    /// Median seconds between tests.
    pub frequency_median_seconds: Option<f64>,
    /// Median latency per signal, in seconds.
    pub signal_latency_median_seconds: BTreeMap<String, f64>,
    /// Every signal seen (with a latency or a TIMEOUT waiting for it): latency and timeouts.
    pub signals: BTreeMap<String, SignalHealth>,
    /// Tests reported in the last hour.
    pub tests_last_hour: u64,
    /// Last error text.
    pub last_error: Option<String>,
    /// Seconds since the last test arrived (since start if none has).
    pub seconds_since_last_test: f64,
    /// Seconds the case has been stalled, if it is.
    pub stalled_for_seconds: Option<f64>,
    /// The newest test reports (at most [`RECENT_TESTS`]), newest first.
    pub recent_tests: Vec<RecentTest>,
    /// Per minute of the last hour with tests, oldest first: counts and runtime percentiles.
    pub trend: Vec<TrendMinute>,
}

/// One signal of a case, in [`CaseStatus::signals`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SignalHealth {
    /// Median latency of the last `max_history` arrivals, in seconds.
    pub latency_median_seconds: Option<f64>,
    /// TIMEOUTs of tests that waited for this signal in vain ([`TestReport::timed_out_signal`]).
    pub timeouts: u64,
    /// When the last such TIMEOUT was reported.
    #[serde(serialize_with = "option_time")]
    pub last_timeout_at: Option<DateTime<Utc>>,
    /// Whether the signal is missing now: a test timed out waiting for it after the last pass.
    pub missing: bool,
}

/// One test among a case's newest, in [`CaseStatus::recent_tests`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RecentTest {
    /// The test id.
    pub id: String,
    /// Its outcome.
    #[serde(serialize_with = "state_name")]
    pub outcome: State,
    /// When its report was published.
    #[serde(serialize_with = "time")]
    pub reported_at: DateTime<Utc>,
    /// When the test was triggered.
    #[serde(serialize_with = "option_time")]
    pub issued_at: Option<DateTime<Utc>>,
    /// How long it ran, in seconds.
    pub runtime_seconds: Option<f64>,
    /// Its error text, cut to 300 characters.
    pub error: Option<String>,
    /// The signal a TIMEOUT waited for in vain.
    pub timed_out_signal: Option<String>,
    /// Which run of the test it was (1 unless it ran again).
    pub attempt: u32,
    /// The test's trace id (W3C, 32 hex digits), to find it in the tracing backend.
    pub trace_id: Option<String>,
}

/// One test in full (`GET /api/cases/{name}/tests/{id}`): its report as published, and the
/// lines an operator greps the logs with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TestDetail {
    /// The case.
    pub case: String,
    /// The test id.
    pub id: String,
    /// Its outcome.
    #[serde(serialize_with = "state_name")]
    pub outcome: State,
    /// When its report was published.
    #[serde(serialize_with = "time")]
    pub reported_at: DateTime<Utc>,
    /// How long it ran, in seconds.
    pub runtime_seconds: Option<f64>,
    /// The log block: time, outcome, `case=`, `test=`, attempt, runtime, the signal a TIMEOUT
    /// waited for, the error and the traceback.
    pub log: String,
    /// The report as published (Faust's record: a pass is `"111/***/111"`), cut to 16 KiB.
    pub report: TestReport,
}

/// One minute of a case's trend, in [`CaseStatus::trend`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TrendMinute {
    /// The start of the minute.
    #[serde(serialize_with = "time")]
    pub minute_at: DateTime<Utc>,
    /// Tests reported in it.
    pub tests: u64,
    /// Of which failed (FAIL, ERROR, TIMEOUT).
    pub failures: u64,
    /// Median runtime of its tests (all outcomes), in seconds.
    pub runtime_p50_seconds: Option<f64>,
    /// 99th percentile runtime of its tests (all outcomes), in seconds.
    pub runtime_p99_seconds: Option<f64>,
}

impl CaseHealth {
    /// A case starting now.
    pub fn new(name: &'static str, options: CaseOptions) -> Self {
        let now = Instant::now();
        CaseHealth {
            name,
            options,
            status: State::Init,
            consecutive_failures: 0,
            total_failures: 0,
            total_by_state: BTreeMap::new(),
            service_down: None,
            stalled: false,
            tested_since_stall: false,
            peer_failed: None,
            last_failure: None,
            published: Suite::Ok,
            published_at: None,
            last_test_seen: now,
            any_test_seen: false,
            last_report_at: None,
            last_error: None,
            last_outcome: None,
            runtime_history: VecDeque::new(),
            latency_history: VecDeque::new(),
            frequency_history: VecDeque::new(),
            signal_history: BTreeMap::new(),
            tests_per_minute: VecDeque::new(),
            started: now,
            shown: State::Init,
            shown_since: Utc::now(),
            suite_failed_since: None,
            last_pass_at: None,
            last_failure_at: None,
            recent: VecDeque::new(),
            minutes: BTreeMap::new(),
            timeouts: BTreeMap::new(),
        }
    }

    /// Notes a change of the state shown, or of the suite judgement, that happened at `at`.
    fn settle(&mut self, at: DateTime<Utc>) {
        let state = self.state();
        if state != self.shown {
            self.shown = state;
            self.shown_since = at;
        }
        match (self.suite_failed(), self.suite_failed_since) {
            (true, None) => self.suite_failed_since = Some(at),
            (false, Some(_)) => self.suite_failed_since = None,
            _ => {}
        }
    }

    /// Keeps `report` for the page: among the newest, in its minute, its timeout.
    fn book(&mut self, report: &TestReport, at: DateTime<Utc>) {
        let mut kept = report.clone();
        kept.truncate_to(RECENT_REPORT_BYTES, |r| {
            serde_json::to_vec(r).map_or(0, |bytes| bytes.len())
        });
        if self.recent.len() >= RECENT_TESTS {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent { report: kept, at });
        let failed = report.state.is_failure();
        if failed {
            self.last_failure_at = Some(self.last_failure_at.map_or(at, |t| t.max(at)));
        } else if report.state == State::Pass {
            self.last_pass_at = Some(self.last_pass_at.map_or(at, |t| t.max(at)));
        }
        if let (State::Timeout, Some(signal)) = (report.state, &report.timed_out_signal) {
            let book = self.timeouts.entry(signal.clone()).or_default();
            book.count += 1;
            book.last_at = Some(book.last_at.map_or(at, |t| t.max(at)));
        }
        let minute = at.timestamp().div_euclid(60);
        let bucket = self.minutes.entry(minute).or_default();
        bucket.tests += 1;
        bucket.failures += u64::from(failed);
        if let Some(runtime) = report.runtime {
            bucket.add(runtime);
        }
        let newest = self.minutes.keys().next_back().copied().unwrap_or(minute);
        self.minutes = self.minutes.split_off(&(newest - TREND_MINUTES + 1));
    }

    /// The full view of one of the newest tests, by id (the newest report of it).
    pub fn test_detail(&self, id: &str) -> Option<TestDetail> {
        let recent = self
            .recent
            .iter()
            .rev()
            .find(|r| r.report.test.as_ref().is_some_and(|t| t.id == id))?;
        let report = &recent.report;
        let mut log = format!(
            "{} {} case={} test={} attempt={}",
            rfc3339(&recent.at),
            report.state,
            report.case_name,
            id,
            report.attempt
        );
        if let Some(runtime) = report.runtime {
            log.push_str(&format!(" runtime={runtime:.3}s"));
        }
        if let Some(signal) = &report.timed_out_signal {
            log.push_str(&format!(" timed_out_signal={signal}"));
        }
        if let Some(trace_id) = &report.trace_id {
            log.push_str(&format!(" trace_id={trace_id}"));
        }
        if let Some(error) = &report.error {
            log.push_str(&format!("\nerror: {error}"));
        }
        if let Some(traceback) = &report.traceback {
            log.push_str(&format!("\ntraceback:\n{traceback}"));
        }
        Some(TestDetail {
            case: self.name.to_owned(),
            id: id.to_owned(),
            outcome: report.state,
            reported_at: recent.at,
            runtime_seconds: report.runtime,
            log,
            report: report.clone(),
        })
    }

    /// The state shown for the case (see [`CaseStatus::state`]).
    pub fn state(&self) -> State {
        if self.judged() == Suite::Stall && !self.tested_since_stall {
            State::Stall
        } else {
            self.status
        }
    }

    /// Failures in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Whether a suite FAIL or STALL is in effect (judged; the leader publishes it).
    pub fn suite_failed(&self) -> bool {
        self.judged() != Suite::Ok
    }

    /// The suite state the reports seen so far make: a failure outranks a stall.
    fn judged(&self) -> Suite {
        if self.consecutive_failures >= self.options.max_consecutive_failures
            || self.service_down.is_some()
            || self.peer_failed.is_some()
        {
            Suite::Fail
        } else if self.stalled {
            Suite::Stall
        } else {
            Suite::Ok
        }
    }

    /// A test of the case arrived at this worker: the case has traffic (the stall clock).
    pub fn on_test_received(&mut self) {
        self.last_test_seen = Instant::now();
        self.any_test_seen = true;
    }

    /// A test report of the group, published at `at`; each test must be fed once (the worker
    /// drops a second report of the same test).
    pub fn on_report(&mut self, report: &TestReport, at: DateTime<Utc>) {
        let now = Instant::now();
        self.last_test_seen = now;
        self.any_test_seen = true;
        self.tested_since_stall = true;
        self.book(report, at);
        *self.total_by_state.entry(report.state).or_default() += 1;
        self.last_outcome = Some(report.state);
        if let Some(last) = self.last_report_at {
            // Reports of several partitions interleave: an earlier one read later is no interval.
            if let Ok(interval) = (at - last).to_std() {
                push(
                    &mut self.frequency_history,
                    interval.as_secs_f64(),
                    self.options.max_history,
                );
            }
        }
        self.last_report_at = Some(self.last_report_at.map_or(at, |last| last.max(at)));
        let minute = (now - self.started).as_secs() / 60;
        match self.tests_per_minute.back_mut() {
            Some((m, count)) if *m == minute => *count += 1,
            _ => self.tests_per_minute.push_back((minute, 1)),
        }
        while self
            .tests_per_minute
            .front()
            .is_some_and(|(m, _)| *m + 60 <= minute)
        {
            self.tests_per_minute.pop_front();
        }
        for (signal, latency) in &report.signal_latency {
            push(
                &mut self.latency_history,
                *latency,
                self.options.max_history,
            );
            let history = self.signal_history.entry(signal.clone()).or_default();
            push(history, *latency, self.options.max_history);
        }
        match report.state {
            state if state.is_failure() => {
                self.status = state;
                self.consecutive_failures += 1;
                self.total_failures += 1;
                self.last_error = report.error.clone();
                self.failed_at(at);
            }
            State::Pass => {
                // Faust's on_test_pass: the runtime history holds passing tests only.
                if let Some(runtime) = report.runtime {
                    push(&mut self.runtime_history, runtime, self.options.max_history);
                }
                let issued = report.test.as_ref().map(|t| t.timestamp);
                let newer = match (self.last_failure, issued) {
                    (None, _) => true,
                    (Some(failed), Some(issued)) => issued > failed,
                    (Some(_), None) => false,
                };
                if newer {
                    self.consecutive_failures = 0;
                    self.status = State::Pass;
                    self.stalled = false;
                    self.peer_failed = None;
                    if self.service_down.take().is_some() {
                        tracing::info!(case = self.name, "a test passed: the service is back");
                    }
                }
            }
            _ => {}
        }
        self.settle(at);
    }

    fn failed_at(&mut self, at: DateTime<Utc>) {
        self.last_failure = Some(self.last_failure.map_or(at, |last| last.max(at)));
    }

    /// The periodic check: a case with no test for `warn_stalled_after` stalls.
    pub fn check(&mut self) {
        let silent = Instant::now() - self.last_test_seen;
        if !self.stalled && silent >= self.options.warn_stalled_after {
            self.stalled = true;
            self.tested_since_stall = false;
            self.failed_at(Utc::now());
        }
        self.settle(Utc::now());
    }

    /// A request of the case's HTTP helpers failed every retry: the service counts as down.
    pub fn on_service_down(&mut self, message: String) {
        self.failed_at(Utc::now());
        self.status = State::Fail;
        self.last_error = Some(message.clone());
        self.service_down = Some(message);
        self.settle(Utc::now());
    }

    /// A request of the case's HTTP helpers succeeded: a service that was down is back.
    pub fn on_service_up(&mut self) {
        if self.service_down.take().is_some() {
            self.peer_failed = None;
            if self.consecutive_failures < self.options.max_consecutive_failures {
                self.status = State::Pass;
            }
            tracing::info!(case = self.name, "the service answers again");
        }
        self.settle(Utc::now());
    }

    /// A suite report of the group's leader, read back from the report topic: it is what was
    /// published, and this worker adopts the judgement (so that, leader later, it does not
    /// publish the same transition again).
    pub fn adopt(&mut self, report: &TestReport, at: DateTime<Utc>) {
        let Some(suite) = Suite::of(report.state) else {
            return;
        };
        self.published = suite;
        self.published_at = Some(Instant::now());
        match suite {
            Suite::Ok => {
                self.consecutive_failures = 0;
                self.service_down = None;
                self.peer_failed = None;
                self.stalled = false;
            }
            Suite::Fail => {
                self.failed_at(at);
                if self.judged() != Suite::Fail {
                    self.peer_failed = Some(
                        report
                            .error
                            .clone()
                            .unwrap_or_else(|| "suite FAIL reported by the leader".into()),
                    );
                }
            }
            Suite::Stall => {
                self.failed_at(at);
                if !self.stalled {
                    self.stalled = true;
                    self.tested_since_stall = false;
                }
            }
        }
        self.settle(at);
    }

    /// The suite report due now, if any, marked as published: when the judged state differs
    /// from the last published one (and, after a FAIL or STALL report, `state_transition_delay`
    /// has passed), or a `reminder` of a failure that lasts. Only the leader publishes: for
    /// another worker this returns `None` and changes nothing.
    pub fn take_due(&mut self, leader: bool, reminder: Option<Duration>) -> Option<TestReport> {
        if !leader {
            return None;
        }
        let now = Instant::now();
        let judged = self.judged();
        let since = self.published_at.map(|at| now - at);
        if judged != self.published {
            let settled = self.published == Suite::Ok
                || since.is_none_or(|s| s >= self.options.state_transition_delay);
            if !settled {
                return None;
            }
        } else {
            let remind = judged != Suite::Ok
                && reminder
                    .zip(since)
                    .is_some_and(|(every, since)| since >= every);
            if !remind {
                return None;
            }
        }
        self.published = judged;
        self.published_at = Some(now);
        let error = self.why(judged, now);
        match &error {
            Some(why) => tracing::error!(
                case = self.name,
                "suite {}: {}",
                judged.state(),
                crate::text::Escaped(why)
            ),
            None => tracing::info!(case = self.name, "suite recovered"),
        }
        Some(TestReport {
            case_name: self.name.to_owned(),
            state: judged.state(),
            test: None,
            runtime: None,
            signal_latency: BTreeMap::new(),
            error,
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
        })
    }

    fn why(&self, suite: Suite, now: Instant) -> Option<String> {
        match suite {
            Suite::Ok => None,
            Suite::Stall => {
                let silent = now - self.last_test_seen;
                Some(if self.any_test_seen {
                    format!("stalled: no test received for {}", humanize(silent))
                } else {
                    format!(
                        "stalled: no test received since start {} ago",
                        humanize(silent)
                    )
                })
            }
            Suite::Fail if self.consecutive_failures >= self.options.max_consecutive_failures => {
                Some(format!(
                    "{} consecutive failures (max {}); last: {}",
                    self.consecutive_failures,
                    self.options.max_consecutive_failures,
                    self.last_error.as_deref().unwrap_or("no error text")
                ))
            }
            Suite::Fail => self
                .service_down
                .clone()
                .or_else(|| self.peer_failed.clone()),
        }
    }

    /// A snapshot for display.
    pub fn status(&self) -> CaseStatus {
        self.status_at(Utc::now())
    }

    /// A snapshot for display, the wall clock reading `wall` (for the trend's last hour and the
    /// time in the current state).
    fn status_at(&self, wall: DateTime<Utc>) -> CaseStatus {
        let now = Instant::now();
        let silent = now - self.last_test_seen;
        let minute = (now - self.started).as_secs() / 60;
        let state = self.state();
        let stalled = state == State::Stall;
        let mut signals: BTreeMap<String, SignalHealth> = BTreeMap::new();
        for (name, history) in &self.signal_history {
            signals.insert(
                name.clone(),
                SignalHealth {
                    latency_median_seconds: median(history),
                    timeouts: 0,
                    last_timeout_at: None,
                    missing: false,
                },
            );
        }
        for (name, book) in &self.timeouts {
            let signal = signals.entry(name.clone()).or_insert(SignalHealth {
                latency_median_seconds: None,
                timeouts: 0,
                last_timeout_at: None,
                missing: false,
            });
            signal.timeouts = book.count;
            signal.last_timeout_at = book.last_at;
            signal.missing = match (book.last_at, self.last_pass_at) {
                (Some(timeout), Some(pass)) => timeout > pass,
                (Some(_), None) => true,
                (None, _) => false,
            };
        }
        let wall_minute = wall.timestamp().div_euclid(60);
        let trend = self
            .minutes
            .range(wall_minute - TREND_MINUTES + 1..)
            .map(|(m, bucket)| {
                let runtimes = VecDeque::from(bucket.runtimes.clone());
                TrendMinute {
                    minute_at: DateTime::from_timestamp(m * 60, 0).unwrap_or_default(),
                    tests: bucket.tests,
                    failures: bucket.failures,
                    runtime_p50_seconds: quantile(&runtimes, 0.5),
                    runtime_p99_seconds: quantile(&runtimes, 0.99),
                }
            })
            .collect();
        let recent_tests = self
            .recent
            .iter()
            .rev()
            .map(|r| RecentTest {
                id: r
                    .report
                    .test
                    .as_ref()
                    .map(|t| t.id.clone())
                    .unwrap_or_default(),
                outcome: r.report.state,
                reported_at: r.at,
                issued_at: r.report.test.as_ref().map(|t| t.timestamp),
                runtime_seconds: r.report.runtime,
                error: r.report.error.as_deref().map(|e| {
                    if e.chars().count() > RECENT_ERROR_CHARS {
                        let cut: String = e.chars().take(RECENT_ERROR_CHARS).collect();
                        format!("{cut}…")
                    } else {
                        e.to_owned()
                    }
                }),
                timed_out_signal: r.report.timed_out_signal.clone(),
                attempt: r.report.attempt,
                trace_id: r.report.trace_id.clone(),
            })
            .collect();
        CaseStatus {
            name: self.name.to_owned(),
            state,
            state_since_at: self.shown_since,
            state_for_seconds: (wall - self.shown_since)
                .to_std()
                .map_or(0.0, |d| d.as_secs_f64()),
            last_outcome: self.last_outcome,
            last_pass_at: self.last_pass_at,
            last_failure_at: self.last_failure_at,
            consecutive_failures: self.consecutive_failures,
            total_failures: self.total_failures,
            total_by_state: self
                .total_by_state
                .iter()
                .map(|(s, n)| (s.as_str().to_owned(), *n))
                .collect(),
            suite_failed: self.suite_failed(),
            suite_failed_since_at: self.suite_failed_since,
            runtime_median_seconds: median(&self.runtime_history),
            runtime_p99_seconds: quantile(&self.runtime_history, 0.99),
            latency_median_seconds: median(&self.latency_history),
            frequency_median_seconds: median(&self.frequency_history),
            signal_latency_median_seconds: self
                .signal_history
                .iter()
                .filter_map(|(s, h)| Some((s.clone(), median(h)?)))
                .collect(),
            signals,
            tests_last_hour: self
                .tests_per_minute
                .iter()
                .filter(|(m, _)| m + 60 > minute)
                .map(|(_, n)| n)
                .sum(),
            last_error: self.last_error.clone(),
            seconds_since_last_test: silent.as_secs_f64(),
            stalled_for_seconds: stalled
                .then(|| silent.saturating_sub(self.options.warn_stalled_after))
                .map(|d: Duration| d.as_secs_f64()),
            recent_tests,
            trend,
        }
    }
}

/// The tests whose report the group has published, by case and test id (two cases may be
/// triggered with one id, Faust's `order.id` pattern), remembered for a while: a test delivered
/// again (after a rebalance or a restart) is not run again, and a second report of a test is
/// not counted twice. Bounded by count, and each test is forgotten once it has expired (a test
/// past its `expires` is skipped anyway).
///
/// Ids are kept as 64-bit hashes (about 30 bytes a test instead of about 150 with the strings):
/// at the default capacity of 100,000, two ids share a hash with a probability near 3 × 10⁻¹⁰.
#[derive(Debug)]
pub(crate) struct ReportedTests {
    ids: HashSet<u64>,
    /// In insertion order, with the test's expiry (Unix milliseconds).
    order: VecDeque<(u64, i64)>,
    capacity: usize,
}

impl ReportedTests {
    /// Remembers at most `capacity` tests.
    pub(crate) fn new(capacity: usize) -> Self {
        ReportedTests {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn key(case: &str, id: &str) -> u64 {
        let mut hasher = DefaultHasher::new();
        (case, id).hash(&mut hasher);
        hasher.finish()
    }

    /// Whether a report of `case`'s test `id` was published.
    pub(crate) fn contains(&self, case: &str, id: &str) -> bool {
        self.ids.contains(&Self::key(case, id))
    }

    /// Records a report of `case`'s test `id` (which expires at `expires`); false if one was
    /// recorded already.
    pub(crate) fn insert(&mut self, case: &str, id: &str, expires: DateTime<Utc>) -> bool {
        let now = Utc::now().timestamp_millis();
        while let Some(&(old, _)) = self.order.front().filter(|(_, until)| *until <= now) {
            self.order.pop_front();
            self.ids.remove(&old);
        }
        if self.capacity == 0 {
            return true;
        }
        let key = Self::key(case, id);
        if !self.ids.insert(key) {
            return false;
        }
        self.order.push_back((key, expires.timestamp_millis()));
        while self.order.len() > self.capacity {
            if let Some((old, _)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }

    /// Forgets `case`'s test `id` (its report could not be published after all).
    pub(crate) fn remove(&mut self, case: &str, id: &str) {
        let key = Self::key(case, id);
        if self.ids.remove(&key) {
            self.order.retain(|(k, _)| *k != key);
        }
    }

    /// Tests remembered.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

fn push(history: &mut VecDeque<f64>, value: f64, max: usize) {
    if max == 0 {
        return;
    }
    while history.len() >= max {
        history.pop_front();
    }
    history.push_back(value);
}

/// The median as Python's `statistics.median` computes it (Faust's `_sample`): the middle value,
/// or the mean of the two middle values of an even count; `None` if there are none.
pub(crate) fn median(values: &VecDeque<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

/// The `q` quantile (nearest rank) of the values, `None` if there are none.
pub(crate) fn quantile(values: &VecDeque<f64>, q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Table-driven tests written from Faust's `faust/livecheck/case.py` and its unit tests
/// (`tests/unit/livecheck/test_case.py` in faust-streaming/faust), on tokio's paused clock.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TestExecution;

    const CASE: &str = "health::case";

    fn options() -> CaseOptions {
        let mut options = CaseOptions::DEFAULT;
        options.max_consecutive_failures = 3;
        options.state_transition_delay = Duration::from_secs(60);
        options.warn_stalled_after = Duration::from_secs(600);
        options
    }

    fn health(change: impl FnOnce(&mut CaseOptions)) -> CaseHealth {
        let mut options = options();
        change(&mut options);
        CaseHealth::new(CASE, options)
    }

    /// A base wall-clock time in the past; tests say "issued N s after it".
    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(seconds)
    }

    /// The report of a test issued at `issued`, with this outcome and runtime.
    fn report(state: State, issued: DateTime<Utc>, runtime: f64) -> TestReport {
        TestReport {
            case_name: CASE.into(),
            state,
            test: Some(TestExecution {
                id: format!("{state}-{}", issued.timestamp_micros()),
                case_name: CASE.into(),
                timestamp: issued,
                test_args: Vec::new(),
                test_kwargs: serde_json::Map::new(),
                expires: issued + chrono::Duration::hours(3),
                traceparent: None,
                tracestate: None,
                signature: None,
            }),
            runtime: Some(runtime),
            signal_latency: BTreeMap::new(),
            error: state.is_failure().then(|| format!("{state} here")),
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
        }
    }

    fn suite_report(state: State) -> TestReport {
        TestReport {
            test: None,
            runtime: None,
            error: Some("from the leader".into()),
            ..report(state, t0(), 0.0)
        }
    }

    /// The suite states the leader publishes from now on (its due reports), by state.
    fn due(health: &mut CaseHealth) -> Option<State> {
        health.take_due(true, None).map(|r| r.state)
    }

    // test_case.py `test__set_test_error_state` (case.py:292-305): each failure counts, and the
    // one that reaches max_consecutive_failures fails the suite.
    #[tokio::test(start_paused = true)]
    async fn each_failure_counts_and_the_limit_fails_the_suite() {
        for (state, before, fails_suite) in [
            (State::Fail, 0, false),
            (State::Fail, 9, true),
            (State::Error, 0, false),
            (State::Error, 9, true),
            (State::Timeout, 0, false),
            (State::Timeout, 9, true),
        ] {
            let mut h = health(|o| o.max_consecutive_failures = 10);
            let earlier = if state == State::Fail {
                State::Error
            } else {
                State::Fail
            };
            for i in 0..before {
                h.on_report(&report(earlier, at(i), 1.0), at(i + 1));
            }
            let _ = h.take_due(true, None);
            h.on_report(&report(state, at(100), 1.0), at(101));
            assert_eq!(h.state(), state);
            assert_eq!(h.consecutive_failures(), before as u32 + 1);
            assert_eq!(h.status().total_by_state[state.as_str()], 1);
            assert_eq!(h.status().total_failures, before as u64 + 1);
            let expected = fails_suite.then_some(State::Fail);
            assert_eq!(due(&mut h), expected, "{state} after {before}");
        }
    }

    // test_case.py `test_on_suite_pass` (case.py:313-321): a pass recovers only when its test
    // was issued after the last failure.
    #[tokio::test(start_paused = true)]
    async fn a_pass_recovers_only_when_issued_after_the_last_failure() {
        for (failed_at, issued, recovers) in [
            (None, 300, true),
            (Some(100), 101, true),
            (Some(100), 99, false),
            (Some(100), 100, false),
        ] {
            let mut h = health(|o| o.max_consecutive_failures = 1);
            if let Some(failed_at) = failed_at {
                h.on_report(&report(State::Fail, at(failed_at - 10), 1.0), at(failed_at));
                assert_eq!(due(&mut h), Some(State::Fail));
                tokio::time::advance(Duration::from_secs(120)).await;
            }
            h.on_report(&report(State::Pass, at(issued), 1.0), at(400));
            let want = if recovers { State::Pass } else { State::Fail };
            assert_eq!(h.state(), want, "failed at {failed_at:?}, issued {issued}");
            assert_eq!(h.consecutive_failures() == 0, recovers);
            let recovery = (recovers && failed_at.is_some()).then_some(State::Pass);
            assert_eq!(due(&mut h), recovery);
        }
    }

    // Issue 10, 1: Faust resets the count on its stall-check tick (case.py:362) and on any URL
    // success (case.py:436) once state_transition_delay has passed; here only a passing test
    // does, so failures further apart than the delay still add up, and time alone recovers
    // nothing.
    #[tokio::test(start_paused = true)]
    async fn failures_further_apart_than_the_delay_add_up_and_time_recovers_nothing() {
        let mut h = health(|_| {});
        for i in 0..3 {
            tokio::time::advance(Duration::from_secs(300)).await;
            h.check();
            assert_eq!(due(&mut h), None, "nothing due before failure {i}");
            h.on_report(&report(State::Timeout, at(i * 300), 1.0), at(i * 300 + 1));
        }
        assert_eq!(h.consecutive_failures(), 3);
        assert_eq!(due(&mut h), Some(State::Fail));
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(60)).await;
            h.check();
            assert_eq!(due(&mut h), None);
        }
        assert_eq!(h.state(), State::Timeout);
        assert!(h.suite_failed());
        assert_eq!(h.consecutive_failures(), 3);
    }

    // Issue 10, 9: Faust re-posts a failure every state_transition_delay (case.py:373): here one
    // report per transition, and a reminder only when asked for.
    #[tokio::test(start_paused = true)]
    async fn one_suite_report_per_transition_and_reminders_on_request() {
        // The FAIL comes with the third failure, at 40 s; reminders 5 min apart: 340 s, 640 s.
        for (reminder, expected) in [(None, 1), (Some(Duration::from_secs(300)), 3)] {
            let mut h = health(|_| {});
            let mut published = Vec::new();
            // A failure every 20 s for 11 min.
            for i in 0..33 {
                h.on_report(&report(State::Fail, at(i * 20), 1.0), at(i * 20 + 1));
                published.extend(h.take_due(true, reminder).map(|r| r.state));
                tokio::time::advance(Duration::from_secs(20)).await;
                h.check();
                published.extend(h.take_due(true, reminder).map(|r| r.state));
            }
            assert_eq!(
                published,
                vec![State::Fail; expected],
                "reminder {reminder:?}"
            );
        }
    }

    // test_case.py `test_on_suite_fail` and `test__maybe_recover_from_failed_state`
    // (case.py:367-395): after a suite failure, the case's next suite report waits
    // state_transition_delay; a failure after a recovery is reported at once.
    #[tokio::test(start_paused = true)]
    async fn the_next_report_after_a_failure_waits_the_transition_delay() {
        for (pass_after, report_after) in [(10, 60), (59, 60), (61, 61), (200, 200)] {
            let mut h = health(|_| {});
            for i in 0..3 {
                h.on_report(&report(State::Fail, at(i), 1.0), at(i + 1));
            }
            assert_eq!(due(&mut h), Some(State::Fail));
            let start = tokio::time::Instant::now();
            tokio::time::advance(Duration::from_secs(pass_after)).await;
            h.on_report(&report(State::Pass, at(10), 1.0), at(11));
            let mut recovered = due(&mut h);
            while recovered.is_none() {
                tokio::time::advance(Duration::from_secs(1)).await;
                h.check();
                recovered = due(&mut h);
            }
            assert_eq!(recovered, Some(State::Pass));
            assert_eq!(
                start.elapsed().as_secs(),
                report_after,
                "pass after {pass_after}"
            );
            // Failing again right after the recovery: reported at once.
            for i in 0..3 {
                h.on_report(&report(State::Error, at(20 + i), 1.0), at(21 + i));
            }
            assert_eq!(due(&mut h), Some(State::Fail));
        }
    }

    // case.py:337-365: no test for warn_stalled_after → STALL; here checked every tick, with a
    // clock from the start (a case never tested stalls too), reported once, and recovered only
    // by a test issued after the stall that passes.
    #[tokio::test(start_paused = true)]
    async fn a_stall_is_reported_once_and_ends_on_a_newer_pass() {
        let mut h = health(|o| o.warn_stalled_after = Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(29)).await;
        h.check();
        assert_eq!(due(&mut h), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        h.check();
        let stall = h.take_due(true, None).expect("a STALL");
        assert_eq!(stall.state, State::Stall);
        assert_eq!(
            stall.error.as_deref(),
            Some("stalled: no test received since start 30.00s ago")
        );
        assert_eq!(h.state(), State::Stall);
        for _ in 0..20 {
            tokio::time::advance(Duration::from_secs(30)).await;
            h.check();
            assert_eq!(due(&mut h), None, "STALL is not repeated");
        }
        // A failing test ends the silence but not the stall; it shows as its outcome.
        let now = Utc::now();
        h.on_report(&report(State::Fail, now, 1.0), now);
        assert_eq!(h.state(), State::Fail);
        assert!(h.suite_failed());
        assert_eq!(due(&mut h), None);
        // An old test (issued before the stall) passing is no evidence.
        h.on_report(&report(State::Pass, at(0), 1.0), now);
        assert!(h.suite_failed());
        let later = Utc::now() + chrono::Duration::seconds(1);
        h.on_report(&report(State::Pass, later, 1.0), later);
        assert_eq!(h.state(), State::Pass);
        assert_eq!(due(&mut h), Some(State::Pass));
    }

    // A failing case does not also STALL (one alert for one incident); Faust would post STALL
    // over FAIL (case.py:373).
    #[tokio::test(start_paused = true)]
    async fn a_failing_case_does_not_also_stall() {
        let mut h = health(|o| o.warn_stalled_after = Duration::from_secs(30));
        for i in 0..3 {
            h.on_report(&report(State::Fail, at(i), 1.0), at(i));
        }
        assert_eq!(due(&mut h), Some(State::Fail));
        tokio::time::advance(Duration::from_secs(600)).await;
        h.check();
        assert_eq!(due(&mut h), None);
        assert_eq!(h.state(), State::Fail);
    }

    // url_request (case.py:418-455): retries exhausted → suite FAIL; the service answering again
    // recovers it (Faust: any success, once the delay has passed).
    #[tokio::test(start_paused = true)]
    async fn a_service_down_fails_and_its_answer_recovers() {
        let mut h = health(|o| o.warn_stalled_after = Duration::from_secs(7200));
        h.on_service_up();
        assert_eq!(
            due(&mut h),
            None,
            "a success with nothing down changes nothing"
        );
        h.on_service_down("service down: GET http://x/ failed 11 times".into());
        let down = h.take_due(true, None).expect("a FAIL");
        assert_eq!(down.state, State::Fail);
        assert_eq!(h.state(), State::Fail);
        assert!(down.error.unwrap().starts_with("service down"));
        tokio::time::advance(Duration::from_secs(3600)).await;
        h.check();
        assert_eq!(due(&mut h), None, "time alone recovers nothing");
        h.on_service_up();
        assert_eq!(due(&mut h), Some(State::Pass));
        assert_eq!(h.state(), State::Pass);
    }

    // The group: a follower publishes nothing, adopts what the leader published, and once
    // leader itself does not publish a transition again.
    #[tokio::test(start_paused = true)]
    async fn a_follower_adopts_the_leaders_reports_and_does_not_repeat_them() {
        let mut h = health(|_| {});
        for i in 0..3 {
            h.on_report(&report(State::Fail, at(i), 1.0), at(i));
        }
        assert!(h.suite_failed());
        assert_eq!(
            h.take_due(false, None),
            None,
            "a follower publishes nothing"
        );
        h.adopt(&suite_report(State::Fail), at(3));
        assert_eq!(due(&mut h), None, "the FAIL is out already");
        // The leader recovered (on a pass this worker has not seen yet): adopted.
        h.adopt(&suite_report(State::Pass), at(10));
        assert!(!h.suite_failed());
        assert_eq!(due(&mut h), None);
        // A FAIL the leader published whose cause this worker never saw.
        let mut fresh = health(|o| o.warn_stalled_after = Duration::from_secs(7200));
        fresh.adopt(&suite_report(State::Fail), at(0));
        assert!(fresh.suite_failed());
        assert_eq!(due(&mut fresh), None);
        tokio::time::advance(Duration::from_secs(3600)).await;
        fresh.check();
        assert_eq!(due(&mut fresh), None, "nothing new: no report");
        fresh.on_report(&report(State::Pass, at(5), 1.0), at(5));
        assert_eq!(due(&mut fresh), Some(State::Pass));
    }

    // test_case.py `test__sample` (case.py:199-205): statistics.median of each history; the
    // runtime history holds passing tests only (`on_test_pass`).
    #[tokio::test(start_paused = true)]
    async fn medians_as_python_and_runtimes_of_passing_tests_only() {
        for (values, want) in [
            (vec![], None),
            (vec![3.0], Some(3.0)),
            (vec![3.0, 1.0, 2.0], Some(2.0)),
            (vec![4.0, 1.0, 3.0, 2.0], Some(2.5)),
            ((200..300).map(f64::from).collect(), Some(249.5)),
        ] {
            assert_eq!(median(&VecDeque::from(values.clone())), want, "{values:?}");
        }
        let mut h = health(|o| o.max_history = 4);
        for (i, (state, runtime)) in [
            (State::Pass, 1.0),
            (State::Timeout, 30.0),
            (State::Pass, 2.0),
            (State::Error, 50.0),
            (State::Pass, 3.0),
            (State::Pass, 4.0),
            (State::Pass, 10.0),
        ]
        .into_iter()
        .enumerate()
        {
            let i = i as i64;
            h.on_report(&report(state, at(i * 10), runtime), at(i * 10));
        }
        let status = h.status();
        // The last 4 passes: 2, 3, 4, 10.
        assert_eq!(status.runtime_median_seconds, Some(3.5));
        assert_eq!(status.runtime_p99_seconds, Some(10.0));
        // Reports every 10 s.
        assert_eq!(status.frequency_median_seconds, Some(10.0));
    }

    // The status page's "since": it moves when the state shown changes, not when the same
    // outcome comes again; the suite failure has a "since" of its own.
    #[tokio::test(start_paused = true)]
    async fn since_when_moves_on_a_state_change_only() {
        let mut h = health(|o| o.max_consecutive_failures = 2);
        let started = h.status().state_since_at;
        assert_eq!(h.status().state, State::Init);
        h.on_report(&report(State::Pass, at(0), 1.0), at(1));
        assert_eq!(h.status().state_since_at, at(1), "INIT → PASS");
        h.on_report(&report(State::Pass, at(10), 1.0), at(11));
        assert_eq!(h.status().state_since_at, at(1), "PASS again: no change");
        assert_ne!(started, at(1));
        h.on_report(&report(State::Fail, at(20), 1.0), at(21));
        let status = h.status();
        assert_eq!((status.state, status.state_since_at), (State::Fail, at(21)));
        assert_eq!(
            status.suite_failed_since_at, None,
            "one failure is no suite FAIL"
        );
        h.on_report(&report(State::Fail, at(30), 1.0), at(31));
        let status = h.status();
        assert_eq!(status.state_since_at, at(21), "FAIL again: no change");
        assert_eq!(status.suite_failed_since_at, Some(at(31)));
        h.on_report(&report(State::Timeout, at(40), 1.0), at(41));
        let status = h.status();
        assert_eq!(
            (status.state, status.state_since_at),
            (State::Timeout, at(41))
        );
        assert_eq!(
            status.suite_failed_since_at,
            Some(at(31)),
            "still the same incident"
        );
        assert_eq!(status.last_pass_at, Some(at(11)));
        assert_eq!(status.last_failure_at, Some(at(41)));
        // An old test passing is no recovery: nothing moves but the last pass.
        h.on_report(&report(State::Pass, at(5), 1.0), at(50));
        let status = h.status();
        assert_eq!(
            (status.state, status.state_since_at),
            (State::Timeout, at(41))
        );
        assert_eq!(status.last_pass_at, Some(at(50)));
        h.on_report(&report(State::Pass, at(60), 1.0), at(61));
        let status = h.status();
        assert_eq!((status.state, status.state_since_at), (State::Pass, at(61)));
        assert_eq!(status.suite_failed_since_at, None);
        // The time in the state is counted from the wall clock given.
        let later = h.status_at(at(61 + 90));
        assert_eq!(later.state_for_seconds, 90.0);
        let json = serde_json::to_value(&later).unwrap();
        assert_eq!(json["state"], "PASS");
        assert_eq!(json["last_outcome"], "PASS");
        assert_eq!(json["state_since_at"], "2023-11-14T22:14:21.000Z");
    }

    // A stall is a state of its own: entered on the check, left on the next test.
    #[tokio::test(start_paused = true)]
    async fn since_when_follows_a_stall() {
        let mut h = health(|o| o.warn_stalled_after = Duration::from_secs(30));
        h.on_report(&report(State::Pass, at(0), 1.0), at(0));
        tokio::time::advance(Duration::from_secs(31)).await;
        let before = Utc::now();
        h.check();
        let status = h.status();
        assert_eq!(status.state, State::Stall);
        assert!(status.state_since_at >= before);
        assert_eq!(status.suite_failed_since_at, Some(status.state_since_at));
        h.check();
        assert_eq!(
            h.status().state_since_at,
            status.state_since_at,
            "checked again"
        );
        let later = Utc::now() + chrono::Duration::seconds(5);
        h.on_report(&report(State::Pass, later, 1.0), later);
        assert_eq!(h.status().state, State::Pass);
        assert_eq!(h.status().state_since_at, later);
    }

    // The page lists the newest RECENT_TESTS tests, newest first, each with its report and log.
    #[tokio::test(start_paused = true)]
    async fn the_newest_tests_are_kept_and_bounded() {
        let mut h = health(|_| {});
        for i in 0..(RECENT_TESTS as i64 + 5) {
            let state = if i % 3 == 0 {
                State::Error
            } else {
                State::Pass
            };
            h.on_report(&report(state, at(i), i as f64), at(i));
        }
        let status = h.status();
        assert_eq!(status.recent_tests.len(), RECENT_TESTS);
        let newest = &status.recent_tests[0];
        let last = RECENT_TESTS as i64 + 4;
        assert_eq!(newest.reported_at, at(last));
        assert_eq!(newest.runtime_seconds, Some(last as f64));
        assert_eq!(status.recent_tests[RECENT_TESTS - 1].reported_at, at(5));
        let id = &newest.id;
        let detail = h.test_detail(id).expect("kept");
        assert_eq!(detail.outcome, State::Error);
        assert!(
            detail.log.starts_with(&format!(
                "2023-11-14T22:13:44.000Z ERROR case={CASE} test={id} attempt=1 runtime=24.000s"
            )),
            "{}",
            detail.log
        );
        assert!(
            detail.log.ends_with("\nerror: ERROR here"),
            "{}",
            detail.log
        );
        let oldest = report(State::Error, at(0), 0.0);
        assert!(h.test_detail(&oldest.test.unwrap().id).is_none(), "dropped");
        // A huge error is cut in the list and in the kept report.
        let mut big = report(State::Fail, at(100), 1.0);
        big.error = Some("x".repeat(100_000));
        big.traceback = Some("y".repeat(100_000));
        h.on_report(&big, at(100));
        let listed = &h.status().recent_tests[0];
        assert_eq!(
            listed.error.as_ref().unwrap().chars().count(),
            RECENT_ERROR_CHARS + 1
        );
        let detail = h.test_detail(&big.test.unwrap().id).unwrap();
        assert!(serde_json::to_vec(&detail.report).unwrap().len() <= RECENT_REPORT_BYTES);
    }

    // TIMEOUTs are counted per signal waited for; a signal is missing while it timed out after
    // the last pass.
    #[tokio::test(start_paused = true)]
    async fn timeouts_are_counted_per_signal() {
        let mut h = health(|o| o.max_consecutive_failures = 100);
        let timeout = |signal: Option<&str>, i: i64| TestReport {
            timed_out_signal: signal.map(str::to_owned),
            ..report(State::Timeout, at(i), 30.0)
        };
        let mut arrived = report(State::Pass, at(0), 1.0);
        arrived.signal_latency.insert("paid".into(), 0.5);
        h.on_report(&arrived, at(0));
        h.on_report(&timeout(Some("shipped"), 1), at(1));
        h.on_report(&timeout(Some("shipped"), 2), at(2));
        h.on_report(&timeout(Some("paid"), 3), at(3));
        h.on_report(&timeout(None, 4), at(4));
        let signals = h.status().signals;
        assert_eq!(signals.keys().collect::<Vec<_>>(), ["paid", "shipped"]);
        assert_eq!(signals["shipped"].timeouts, 2);
        assert_eq!(signals["shipped"].last_timeout_at, Some(at(2)));
        assert_eq!(signals["shipped"].latency_median_seconds, None);
        assert!(signals["shipped"].missing);
        assert_eq!(signals["paid"].timeouts, 1);
        assert_eq!(signals["paid"].latency_median_seconds, Some(0.5));
        assert!(signals["paid"].missing);
        h.on_report(&report(State::Pass, at(10), 1.0), at(10));
        h.on_report(&timeout(Some("shipped"), 11), at(11));
        let signals = h.status().signals;
        assert!(!signals["paid"].missing, "passed since");
        assert!(signals["shipped"].missing);
        assert_eq!(signals["shipped"].timeouts, 3);
        assert_eq!(
            h.status().recent_tests[0].timed_out_signal.as_deref(),
            Some("shipped")
        );
    }

    // The trend: per wall-clock minute, counts and runtime percentiles (nearest rank), the last
    // hour only.
    #[tokio::test(start_paused = true)]
    async fn runtime_percentiles_per_minute_over_the_last_hour() {
        let mut h = health(|o| o.max_consecutive_failures = 1000);
        // Minute 0 (t0 is on a minute boundary + 20 s): runtimes 1..=100, every 10th a FAIL.
        let base = at(40);
        for i in 1..=100 {
            let state = if i % 10 == 0 {
                State::Fail
            } else {
                State::Pass
            };
            h.on_report(&report(state, base, f64::from(i)), base);
        }
        // Two minutes later: one test.
        h.on_report(
            &report(State::Timeout, base, 7.0),
            base + chrono::Duration::minutes(2),
        );
        let status = h.status_at(base + chrono::Duration::minutes(3));
        let minute = DateTime::from_timestamp(base.timestamp() / 60 * 60, 0).unwrap();
        assert_eq!(status.trend.len(), 2, "minutes with no tests are left out");
        let first = &status.trend[0];
        assert_eq!(first.minute_at, minute);
        assert_eq!((first.tests, first.failures), (100, 10));
        assert_eq!(first.runtime_p50_seconds, Some(50.0));
        assert_eq!(first.runtime_p99_seconds, Some(99.0));
        let second = &status.trend[1];
        assert_eq!(second.minute_at, minute + chrono::Duration::minutes(2));
        assert_eq!((second.tests, second.failures), (1, 1));
        assert_eq!(second.runtime_p99_seconds, Some(7.0));
        // An hour later, the first minute is out of the window.
        let status = h.status_at(minute + chrono::Duration::minutes(61));
        assert_eq!(status.trend.len(), 1);
        // Memory: a test 2 h later evicts what is older than an hour.
        h.on_report(
            &report(State::Pass, base, 1.0),
            base + chrono::Duration::hours(2),
        );
        assert_eq!(h.minutes.len(), 1);
        // Many tests in a minute: a bounded sample.
        for i in 0..1000 {
            h.on_report(
                &report(State::Pass, base, f64::from(i)),
                base + chrono::Duration::hours(2),
            );
        }
        let bucket = h.minutes.values().next_back().unwrap();
        assert_eq!(bucket.runtimes.len(), MINUTE_SAMPLES);
        assert_eq!(bucket.tests, 1001);
    }

    #[test]
    fn reported_tests_are_bounded_by_count_and_expiry() {
        let soon = Utc::now() + chrono::Duration::hours(1);
        let mut reported = ReportedTests::new(3);
        assert!(reported.insert("c", "a", soon));
        assert!(
            !reported.insert("c", "a", soon),
            "a second report of a test"
        );
        assert!(reported.contains("c", "a"));
        assert!(!reported.contains("other case", "a"), "ids are per case");
        assert!(reported.insert("other case", "a", soon));
        for id in ["b", "c", "d"] {
            assert!(reported.insert("c", id, soon));
        }
        assert_eq!(reported.len(), 3);
        assert!(
            !reported.contains("c", "a"),
            "the oldest is forgotten first"
        );
        let expired = Utc::now() - chrono::Duration::seconds(1);
        let mut reported = ReportedTests::new(10);
        assert!(reported.insert("c", "old", expired));
        assert!(reported.insert("c", "new", soon));
        assert!(
            !reported.contains("c", "old"),
            "expired tests are forgotten"
        );
        reported.remove("c", "new");
        assert!(!reported.contains("c", "new"));
        assert_eq!(reported.len(), 0);
    }
}
