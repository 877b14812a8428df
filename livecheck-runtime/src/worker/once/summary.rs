//! What a one-shot run found: a [`Verdict`] per case, from its [`Attempt`]s ([`CaseOutcome`]),
//! and the [`Summary`] of every case, which says whether the run passed.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::wire::model::{State, TestReport};

/// The verdict on one case of a one-shot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Its test passed at the first attempt.
    Pass,
    /// It failed, then passed on a retry: not a pass. The run still exits 0 (with a warning)
    /// unless `--fail-on-flaky`.
    Flaky,
    /// A contract failed (the last attempt's outcome).
    Fail,
    /// Any other error, including a fake request that failed.
    Error,
    /// A signal did not arrive in time, or no report came within the run's timeout.
    Timeout,
    /// Not run: the case is inactive, or it cannot be triggered by the run.
    Skip,
}

impl Verdict {
    /// `PASS`, `FLAKY`, `FAIL`, `ERROR`, `TIMEOUT` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Flaky => "FLAKY",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Timeout => "TIMEOUT",
            Verdict::Skip => "SKIP",
        }
    }

    /// FAIL, ERROR or TIMEOUT.
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Error | Verdict::Timeout)
    }

    pub(super) fn of(state: State) -> Verdict {
        match state {
            State::Pass => Verdict::Pass,
            State::Fail => Verdict::Fail,
            State::Timeout => Verdict::Timeout,
            State::Skip => Verdict::Skip,
            State::Init | State::Error | State::Stall => Verdict::Error,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One attempt at a case: its test's report, or why there is none.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attempt {
    /// The outcome.
    pub state: State,
    /// The test's report, if the test ran (or was skipped by the worker).
    pub report: Option<TestReport>,
    /// Error text: the report's, or why no report came.
    pub error: Option<String>,
    /// The report's traceback.
    pub traceback: Option<String>,
    /// From the trigger (or fake request) to the report.
    pub elapsed: Duration,
}

impl Attempt {
    pub(super) fn from_report(report: TestReport, elapsed: Duration) -> Attempt {
        Attempt {
            state: report.state,
            error: report.error.clone(),
            traceback: report.traceback.clone(),
            report: Some(report),
            elapsed,
        }
    }

    pub(super) fn without_report(state: State, error: String, elapsed: Duration) -> Attempt {
        Attempt {
            state,
            report: None,
            error: Some(error),
            traceback: None,
            elapsed,
        }
    }

    /// The id of the test, if one ran.
    pub fn test_id(&self) -> Option<&str> {
        self.report
            .as_ref()
            .and_then(|r| r.test.as_ref())
            .map(|t| t.id.as_str())
    }
}

/// What a one-shot run found for one case.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CaseOutcome {
    /// The case.
    pub case: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// Every attempt, in order (none for a case the run could not trigger).
    pub attempts: Vec<Attempt>,
    /// Why the case was skipped, when it was not triggered at all.
    pub skipped: Option<String>,
    /// Time spent on the case, every attempt included.
    pub elapsed: Duration,
}

impl CaseOutcome {
    /// The attempt the verdict comes from (the last).
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// The error text behind the verdict.
    pub fn error(&self) -> Option<&str> {
        self.skipped
            .as_deref()
            .or_else(|| self.last().and_then(|a| a.error.as_deref()))
    }
}

/// Every case's outcome of a one-shot run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Summary {
    /// By case name.
    pub cases: Vec<CaseOutcome>,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// How long it took.
    pub elapsed: Duration,
}

impl Summary {
    /// How many cases have this verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }

    /// Whether the run passes: no FAIL, ERROR or TIMEOUT, no FLAKY if `fail_on_flaky`, and at
    /// least one case ran (a run that tested nothing is no pass).
    pub fn passed(&self, fail_on_flaky: bool) -> bool {
        let ran = self.cases.iter().any(|c| c.verdict != Verdict::Skip);
        ran && !self
            .cases
            .iter()
            .any(|c| c.verdict.is_failure() || (fail_on_flaky && c.verdict == Verdict::Flaky))
    }
}
