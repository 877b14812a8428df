//! What the status page and the API show of a case: [`CaseStatus`] and its parts, with the
//! serialization they share (states by name, times in RFC 3339).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::wire::model::{State, TestReport};

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
    /// The newest test reports (at most 20), newest first.
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
#[cfg_attr(not(feature = "ops"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub(crate) struct TestDetail {
    /// The case.
    pub(crate) case: String,
    /// The test id.
    pub(crate) id: String,
    /// Its outcome.
    #[serde(serialize_with = "state_name")]
    pub(crate) outcome: State,
    /// When its report was published.
    #[serde(serialize_with = "time")]
    pub(crate) reported_at: DateTime<Utc>,
    /// How long it ran, in seconds.
    pub(crate) runtime_seconds: Option<f64>,
    /// The log block: time, outcome, `case=`, `test=`, attempt, runtime, the signal a TIMEOUT
    /// waited for, the error and the traceback.
    pub(crate) log: String,
    /// The report as published (Faust's record: a pass is `"111/***/111"`), cut to 16 KiB.
    pub(crate) report: TestReport,
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
