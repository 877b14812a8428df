//! The statistics: medians as Python's, histories, the interval between tests.

use std::collections::VecDeque;

use super::*;
use crate::worker::health::stats::median;

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
        // 10 s apart on tokio's clock, the one durations are taken from.
        tokio::time::advance(Duration::from_secs(10)).await;
        h.on_report(&report(state, at(i * 10), runtime), at(i * 10));
    }
    let status = h.status();
    // The last 4 passes: 2, 3, 4, 10.
    assert_eq!(status.runtime_median_seconds, Some(3.5));
    assert_eq!(status.runtime_p99_seconds, Some(10.0));
    // Reports every 10 s.
    assert_eq!(status.frequency_median_seconds, Some(10.0));
}

// One clock: the interval between tests is taken from tokio's clock, as the stall clock is, not
// from the wall clock at report time. On the paused clock (a `TestKit`), tests 20 s apart are
// 20 s apart; the wall clock, which the paused clock does not move, made them microseconds
// apart (a median of 0.0008 s).
#[tokio::test(start_paused = true)]
async fn the_interval_between_tests_is_on_tokios_clock() {
    let mut h = health(|o| o.warn_stalled_after = Duration::from_secs(3600));
    for _ in 0..5 {
        let now = Utc::now();
        h.on_report(&report(State::Pass, now, 1.0), now);
        tokio::time::advance(Duration::from_secs(20)).await;
    }
    let status = h.status();
    assert_eq!(status.frequency_median_seconds, Some(20.0));
    assert_eq!(
        status.seconds_since_last_test, 20.0,
        "the stall clock agrees"
    );
}

// Reports of other workers replayed at start (read in a burst) are as far apart as they were
// published, not as they were read; an earlier one read later is no interval.
#[tokio::test(start_paused = true)]
async fn replayed_reports_of_the_group_are_as_far_apart_as_published() {
    let mut h = health(|_| {});
    let now = Utc::now();
    for ago in [50, 40, 30, 35, 20, 10] {
        let published = now - chrono::Duration::seconds(ago);
        h.on_peer_report(&report(State::Pass, published, 1.0), published);
    }
    let median = h.status().frequency_median_seconds.expect("intervals");
    // 10 s apart by the wall clock, read in the microseconds this test takes.
    assert!((median - 10.0).abs() < 0.5, "{median}");
}
