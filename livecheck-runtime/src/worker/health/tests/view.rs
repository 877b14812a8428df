//! What the status page shows: since when, the newest tests, timeouts per signal, the trend.

use super::*;
use crate::worker::health::view::{
    MINUTE_SAMPLES, RECENT_ERROR_CHARS, RECENT_REPORT_BYTES, RECENT_TESTS,
};

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
    assert_eq!(h.view.minutes.len(), 1);
    // Many tests in a minute: a bounded sample.
    for i in 0..1000 {
        h.on_report(
            &report(State::Pass, base, f64::from(i)),
            base + chrono::Duration::hours(2),
        );
    }
    let bucket = h.view.minutes.values().next_back().unwrap();
    assert_eq!(bucket.runtimes.len(), MINUTE_SAMPLES);
    assert_eq!(bucket.tests, 1001);
}
