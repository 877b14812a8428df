//! The suite verdict: failures in a row, stalls, a service down, the group's leader; one suite
//! report per transition.

use super::*;

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

// Faust resets the count on its stall-check tick (case.py:362) and on any URL
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

// Faust re-posts a failure every state_transition_delay (case.py:373): here one
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
