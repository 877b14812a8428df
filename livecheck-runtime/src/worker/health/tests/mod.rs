//! Table-driven tests written from Faust's `faust/livecheck/case.py` and its unit tests
//! (`tests/unit/livecheck/test_case.py` in faust-streaming/faust), on tokio's paused clock,
//! through [`CaseHealth`]: the verdict, the statistics and the view, each in a file.

mod stats;
mod verdict;
mod view;

use std::collections::BTreeMap;

use super::*;
use crate::wire::model::TestExecution;

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
        test: Some(TestExecution::new(
            format!("{state}-{}", issued.timestamp_micros()),
            CASE,
            issued,
            issued + chrono::Duration::hours(3),
        )),
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
