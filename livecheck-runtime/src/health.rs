//! Case health: the state of a case as a whole, from the stream of its test outcomes.
//!
//! - `max_consecutive_failures` failures (FAIL, ERROR, TIMEOUT) in a row → a suite FAIL report;
//! - no test received for `warn_stalled_after` → a suite STALL report (the clock starts when the
//!   worker does, so a case that never gets traffic stalls too; Faust only started it at the
//!   first test);
//! - a suite report is not repeated within `state_transition_delay`;
//! - a pass of a test triggered after the last failed one, or a quiet `state_transition_delay`
//!   with tests flowing and no failure, recovers the case: a suite PASS report says so.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;

use crate::case::CaseOptions;
use crate::duration::humanize;
use crate::model::{State, TestReport};

/// The health of one case.
#[derive(Debug)]
pub struct CaseHealth {
    name: &'static str,
    options: CaseOptions,
    status: State,
    consecutive_failures: u32,
    total_failures: u64,
    total_by_state: BTreeMap<State, u64>,
    suite_failed: bool,
    last_fail: Option<Instant>,
    last_failed_test: Option<DateTime<Utc>>,
    last_suite_report: Option<Instant>,
    last_test_received: Instant,
    any_test_received: bool,
    last_error: Option<String>,
    last_outcome: Option<State>,
    runtime_history: VecDeque<f64>,
    latency_history: VecDeque<f64>,
    frequency_history: VecDeque<f64>,
    signal_history: BTreeMap<String, VecDeque<f64>>,
    tests_per_minute: VecDeque<(u64, u64)>,
    started: Instant,
    service_down: bool,
}

/// A snapshot of a case's health, for the status page, the API and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseStatus {
    /// The case.
    pub name: String,
    /// State of the case: INIT, PASS, FAIL, ERROR, TIMEOUT (last test failed) or STALL.
    pub state: String,
    /// Outcome of the last test.
    pub last_outcome: Option<String>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Failures in all.
    pub total_failures: u64,
    /// Tests by outcome.
    pub total_by_state: BTreeMap<String, u64>,
    /// Whether a suite FAIL or STALL is in effect.
    pub suite_failed: bool,
    /// Median runtime in seconds over the last `max_history` tests.
    pub runtime_median: Option<f64>,
    /// 99th percentile runtime in seconds over the last `max_history` tests.
    pub runtime_p99: Option<f64>,
    /// Median signal latency in seconds (all signals).
    pub latency_median: Option<f64>,
    /// Median seconds between tests.
    pub frequency_median: Option<f64>,
    /// Median latency per signal, in seconds.
    pub signal_latency_median: BTreeMap<String, f64>,
    /// Tests received in the last hour.
    pub tests_last_hour: u64,
    /// Last error text.
    pub last_error: Option<String>,
    /// Seconds since the last test arrived (since start if none has).
    pub seconds_since_last_test: f64,
    /// Seconds the case has been stalled, if it is.
    pub stalled_for: Option<f64>,
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
            suite_failed: false,
            last_fail: None,
            last_failed_test: None,
            last_suite_report: None,
            last_test_received: now,
            any_test_received: false,
            last_error: None,
            last_outcome: None,
            runtime_history: VecDeque::new(),
            latency_history: VecDeque::new(),
            frequency_history: VecDeque::new(),
            signal_history: BTreeMap::new(),
            tests_per_minute: VecDeque::new(),
            started: now,
            service_down: false,
        }
    }

    /// The case's state.
    pub fn state(&self) -> State {
        self.status
    }

    /// Failures in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// A test of the case arrived.
    pub fn on_test_received(&mut self) {
        let now = Instant::now();
        if self.any_test_received {
            let interval = (now - self.last_test_received).as_secs_f64();
            push(
                &mut self.frequency_history,
                interval,
                self.options.max_history,
            );
        }
        self.any_test_received = true;
        self.last_test_received = now;
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
    }

    /// A test's report; returns the suite reports it causes (at most one).
    pub fn on_report(&mut self, report: &TestReport) -> Option<TestReport> {
        let now = Instant::now();
        *self.total_by_state.entry(report.state).or_default() += 1;
        self.last_outcome = Some(report.state);
        if let Some(runtime) = report.runtime {
            push(&mut self.runtime_history, runtime, self.options.max_history);
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
        let test_time = report.test.as_ref().map(|t| t.timestamp);
        match report.state {
            state if state.is_failure() => {
                self.status = state;
                self.consecutive_failures += 1;
                self.total_failures += 1;
                self.last_fail = Some(now);
                self.last_error = report.error.clone();
                if let Some(t) = test_time {
                    self.last_failed_test = Some(self.last_failed_test.map_or(t, |l| l.max(t)));
                }
                if self.consecutive_failures >= self.options.max_consecutive_failures {
                    let message = format!(
                        "{} consecutive failures (max {}); last: {}",
                        self.consecutive_failures,
                        self.options.max_consecutive_failures,
                        report.error.as_deref().unwrap_or("no error text")
                    );
                    return self.suite_fail(State::Fail, message, now);
                }
                None
            }
            State::Pass => {
                let newer = match (self.last_failed_test, test_time) {
                    (None, _) => true,
                    (Some(failed), Some(t)) => t > failed,
                    (Some(_), None) => false,
                };
                if newer {
                    self.consecutive_failures = 0;
                    self.status = State::Pass;
                    return self.recover("a test passed");
                }
                None
            }
            _ => None,
        }
    }

    /// Periodic check for stalls and quiet recovery; returns a suite report if one is due.
    pub fn check(&mut self) -> Option<TestReport> {
        let now = Instant::now();
        let silent = now - self.last_test_received;
        if silent >= self.options.warn_stalled_after {
            let message = if self.any_test_received {
                format!("stalled: no test received for {}", humanize(silent))
            } else {
                format!(
                    "stalled: no test received since start {} ago",
                    humanize(silent)
                )
            };
            return self.suite_fail(State::Stall, message, now);
        }
        let quiet = self
            .last_fail
            .is_none_or(|at| now - at >= self.options.state_transition_delay);
        if self.status != State::Pass && self.status != State::Init && quiet {
            self.status = State::Pass;
            self.consecutive_failures = 0;
            return self.recover("no failure for the state transition delay");
        }
        None
    }

    /// A request of the case's HTTP helpers failed every retry: the service counts as down.
    pub fn on_service_down(&mut self, message: String) -> Option<TestReport> {
        self.service_down = true;
        self.suite_fail(State::Fail, message, Instant::now())
    }

    /// A request of the case's HTTP helpers succeeded: recovers a case that was down.
    pub fn on_service_up(&mut self) -> Option<TestReport> {
        if !std::mem::take(&mut self.service_down) {
            return None;
        }
        self.status = State::Pass;
        self.consecutive_failures = 0;
        self.recover("the service is back")
    }

    fn suite_fail(&mut self, state: State, message: String, now: Instant) -> Option<TestReport> {
        self.status = state;
        self.suite_failed = true;
        self.last_fail = Some(now);
        self.last_error = Some(message.clone());
        let due = self
            .last_suite_report
            .is_none_or(|at| now - at >= self.options.state_transition_delay);
        if !due {
            tracing::debug!(
                case = self.name,
                "suite {state} not reported again yet: {message}"
            );
            return None;
        }
        self.last_suite_report = Some(now);
        tracing::error!(case = self.name, "suite {state}: {message}");
        Some(self.suite_report(state, Some(message)))
    }

    fn recover(&mut self, why: &str) -> Option<TestReport> {
        if !self.suite_failed {
            return None;
        }
        self.suite_failed = false;
        self.last_suite_report = None;
        tracing::info!(case = self.name, "suite recovered: {why}");
        Some(self.suite_report(State::Pass, None))
    }

    fn suite_report(&self, state: State, error: Option<String>) -> TestReport {
        TestReport {
            case_name: self.name.to_owned(),
            state,
            test: None,
            runtime: None,
            signal_latency: BTreeMap::new(),
            error,
            traceback: None,
            attempt: 1,
        }
    }

    /// A snapshot for display.
    pub fn status(&self) -> CaseStatus {
        let now = Instant::now();
        let silent = now - self.last_test_received;
        let minute = (now - self.started).as_secs() / 60;
        CaseStatus {
            name: self.name.to_owned(),
            state: self.status.as_str().to_owned(),
            last_outcome: self.last_outcome.map(|s| s.as_str().to_owned()),
            consecutive_failures: self.consecutive_failures,
            total_failures: self.total_failures,
            total_by_state: self
                .total_by_state
                .iter()
                .map(|(s, n)| (s.as_str().to_owned(), *n))
                .collect(),
            suite_failed: self.suite_failed,
            runtime_median: quantile(&self.runtime_history, 0.5),
            runtime_p99: quantile(&self.runtime_history, 0.99),
            latency_median: quantile(&self.latency_history, 0.5),
            frequency_median: quantile(&self.frequency_history, 0.5),
            signal_latency_median: self
                .signal_history
                .iter()
                .filter_map(|(s, h)| Some((s.clone(), quantile(h, 0.5)?)))
                .collect(),
            tests_last_hour: self
                .tests_per_minute
                .iter()
                .filter(|(m, _)| m + 60 > minute)
                .map(|(_, n)| n)
                .sum(),
            last_error: self.last_error.clone(),
            seconds_since_last_test: silent.as_secs_f64(),
            stalled_for: (self.status == State::Stall)
                .then(|| silent.saturating_sub(self.options.warn_stalled_after))
                .map(|d: Duration| d.as_secs_f64()),
        }
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
