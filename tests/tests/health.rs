//! Case health through a worker on the in-memory transport, on tokio's paused clock: suite
//! reports once per transition, recovery only on evidence, and the group's judgement (reports
//! of other workers fed in with `MemoryTransport::publish_peer_report`). Written from Faust's
//! `faust/livecheck/case.py` (faust-streaming/faust); the unit tests beside the code
//! (livecheck-runtime/src/health/tests/) hold the tables.

use std::time::Duration;

use livecheck::testing::TestKit;
use livecheck::{State, TestExecution, TestReport, WorkerHandle};
use tokio::time::{sleep, Instant};

const VERDICT: &str = "health.verdict";

/// Passes or fails as told.
#[livecheck::case(name = "health.verdict", probability = 1.0, warn_stalled_after = "1h")]
async fn verdict(pass: bool) -> livecheck::Result {
    livecheck::ensure!(pass, "told to fail");
    Ok(())
}

/// Waits for its signal, then passes.
#[livecheck::case(name = "health.waits", probability = 1.0, warn_stalled_after = "1h")]
async fn waits() -> livecheck::Result {
    GO.wait().timeout("30s").await?;
    Ok(())
}

livecheck::signal! {
    /// Lets `waits` finish.
    GO: () for waits;
}

/// The report another worker of the group would publish for test `id`, issued now.
fn peer_report(id: &str, state: State) -> TestReport {
    let now = chrono::Utc::now();
    TestReport {
        case_name: VERDICT.into(),
        state,
        test: Some(TestExecution {
            test_args: vec![serde_json::Value::Bool(state == State::Pass)],
            ..TestExecution::new(id, VERDICT, now, now + chrono::Duration::hours(1))
        }),
        runtime: Some(0.5),
        signal_latency: Default::default(),
        error: (state != State::Pass).then(|| "failed elsewhere".into()),
        traceback: None,
        attempt: 1,
        timed_out_signal: None,
        trace_id: None,
    }
}

/// A suite report as the group's leader publishes it.
fn leader_suite_report(state: State) -> TestReport {
    TestReport {
        test: None,
        runtime: None,
        ..peer_report("-", state)
    }
}

/// Waits (paused clock: no real time) until `check` holds, at most a simulated minute.
async fn until(what: &str, handle: &WorkerHandle, check: impl Fn(&WorkerHandle) -> bool) {
    for _ in 0..6000 {
        if check(handle) {
            return;
        }
        sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn suites(kit: &mut TestKit) -> Vec<State> {
    kit.drain()
        .into_iter()
        .filter(|r| r.is_suite())
        .map(|r| r.state)
        .collect()
}

// Faust posts a failure again every state_transition_delay while it lasts (case.py:373): here
// the transition is reported once, and a newer pass recovers the case.
#[tokio::test(start_paused = true)]
async fn consecutive_failures_raise_one_suite_fail_per_transition() {
    let mut kit = TestKit::builder()
        .case_with(verdict, |o| {
            o.max_consecutive_failures = 3;
            o.state_transition_delay = Duration::from_secs(60);
        })
        .start();
    for i in 0..6 {
        kit.run(verdict.trigger(format!("f{i}"), false))
            .await
            .unwrap();
        kit.report_for(&format!("f{i}")).await;
    }
    let fail = kit.suite_report(VERDICT).await;
    assert_eq!(fail.state, State::Fail);
    assert!(fail
        .error
        .as_deref()
        .unwrap()
        .starts_with("3 consecutive failures (max 3); last: told to fail"));
    // Still failing every 20 s for 3 min: no new suite report.
    for i in 6..15 {
        sleep(Duration::from_secs(20)).await;
        kit.run(verdict.trigger(format!("f{i}"), false))
            .await
            .unwrap();
        kit.report_for(&format!("f{i}")).await;
    }
    assert_eq!(
        suites(&mut kit),
        Vec::<State>::new(),
        "one suite report for 15 failures"
    );
    assert_eq!(kit.status(VERDICT).unwrap().consecutive_failures, 15);

    kit.run(verdict.trigger("ok", true)).await.unwrap();
    assert_eq!(kit.report_for("ok").await.state, State::Pass);
    assert_eq!(kit.suite_report(VERDICT).await.state, State::Pass);
    let status = kit.status(VERDICT).unwrap();
    assert_eq!(status.consecutive_failures, 0);
    assert!(!status.suite_failed);
}

// Failures further apart than state_transition_delay still add up (Faust's stall
// tick, case.py:362, resets the count), and no recovery comes without a test.
#[tokio::test(start_paused = true)]
async fn failures_far_apart_add_up_and_time_alone_recovers_nothing() {
    let mut kit = TestKit::builder()
        .case_with(verdict, |o| {
            o.max_consecutive_failures = 3;
            o.state_transition_delay = Duration::from_secs(60);
            o.warn_stalled_after = Duration::from_secs(24 * 3600);
        })
        .start();
    for i in 0..3 {
        kit.run(verdict.trigger(format!("f{i}"), false))
            .await
            .unwrap();
        kit.report_for(&format!("f{i}")).await;
        if i < 2 {
            sleep(Duration::from_secs(300)).await;
        }
    }
    assert_eq!(kit.suite_report(VERDICT).await.state, State::Fail);
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        suites(&mut kit),
        Vec::<State>::new(),
        "no recovery without a passing test"
    );
    let status = kit.status(VERDICT).unwrap();
    assert!(status.suite_failed);
    assert_eq!(status.consecutive_failures, 3);
    assert_eq!(status.state, State::Fail);
}

// One clock: on tokio's paused clock, tests 20 s apart are 20 s apart on the status page too
// (the interval between tests was taken from the wall clock, which the paused clock does not
// move: a median of microseconds).
#[tokio::test(start_paused = true)]
async fn tests_20_s_apart_have_a_frequency_of_20_s() {
    let mut kit = TestKit::builder()
        .case_with(verdict, |o| {
            o.warn_stalled_after = Duration::from_secs(3600)
        })
        .start();
    for i in 0..5 {
        if i > 0 {
            sleep(Duration::from_secs(20)).await;
        }
        kit.run(verdict.trigger(format!("p{i}"), true))
            .await
            .unwrap();
        kit.report_for(&format!("p{i}")).await;
    }
    let median = kit
        .status(VERDICT)
        .unwrap()
        .frequency_median_seconds
        .unwrap();
    assert!((20.0..20.5).contains(&median), "{median}");
}

// case.py:337-365: a case with no test stalls (here warn_stalled_after after the worker's start;
// Faust's first check comes one period later), once; a newer pass recovers it, the recovery
// reported state_transition_delay after the STALL at the earliest.
#[tokio::test(start_paused = true)]
async fn a_case_with_no_tests_stalls_once_and_a_pass_recovers_it() {
    let mut kit = TestKit::builder()
        .case_with(verdict, |o| {
            o.warn_stalled_after = Duration::from_secs(60);
            o.state_transition_delay = Duration::from_secs(30);
        })
        .start();
    let start = Instant::now();
    let stall = kit.suite_report(VERDICT).await;
    assert_eq!(stall.state, State::Stall);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited <= Duration::from_secs(62),
        "{waited:?}"
    );
    assert_eq!(kit.status(VERDICT).unwrap().state, State::Stall);
    sleep(Duration::from_secs(600)).await;
    assert_eq!(
        suites(&mut kit),
        Vec::<State>::new(),
        "a STALL is not repeated"
    );

    kit.run(verdict.trigger("back", true)).await.unwrap();
    assert_eq!(kit.report_for("back").await.state, State::Pass);
    assert_eq!(kit.suite_report(VERDICT).await.state, State::Pass);
    assert_eq!(kit.status(VERDICT).unwrap().state, State::Pass);
}

// The reports of the other workers count in this worker's health, each test once.
#[tokio::test(start_paused = true)]
async fn the_groups_reports_count_once_each_and_fail_the_suite() {
    let mut kit = TestKit::builder()
        .case_with(verdict, |o| o.max_consecutive_failures = 4)
        .start();
    let handle = kit.handle().clone();
    kit.run(verdict.trigger("mine", false)).await.unwrap();
    kit.report_for("mine").await;
    for id in ["a", "b", "a", "b"] {
        kit.transport()
            .publish_peer_report(peer_report(id, State::Timeout));
    }
    until("the peer reports", &handle, |h| {
        h.stats().peer_duplicates == 2
    })
    .await;
    let status = kit.status(VERDICT).unwrap();
    assert_eq!(
        status.consecutive_failures, 3,
        "one own and two peer failures"
    );
    assert_eq!(status.total_by_state["TIMEOUT"], 2);
    assert_eq!(status.total_by_state["FAIL"], 1);
    assert!(!status.suite_failed);
    assert_eq!(handle.stats().peer_reports, 2);

    kit.transport()
        .publish_peer_report(peer_report("c", State::Error));
    let fail = kit.suite_report(VERDICT).await;
    assert_eq!(fail.state, State::Fail);
    assert!(fail
        .error
        .unwrap()
        .starts_with("4 consecutive failures (max 4); last: failed elsewhere"));
}

// A follower publishes no suite report; it adopts the leader's, so once leader it
// does not publish the same transition again, and publishes the next one.
#[tokio::test(start_paused = true)]
async fn a_follower_publishes_nothing_and_a_new_leader_does_not_repeat_the_old_ones() {
    let mut kit = TestKit::builder()
        .case_with(verdict, |o| {
            o.max_consecutive_failures = 2;
            o.state_transition_delay = Duration::ZERO;
        })
        .leader(false)
        .start();
    let handle = kit.handle().clone();
    for id in ["a", "b", "c"] {
        kit.transport()
            .publish_peer_report(peer_report(id, State::Fail));
    }
    kit.transport()
        .publish_peer_report(leader_suite_report(State::Fail));
    until("the leader's FAIL adopted", &handle, |h| {
        h.stats().peer_reports == 3 && h.status(VERDICT).unwrap().suite_failed
    })
    .await;
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        suites(&mut kit),
        Vec::<State>::new(),
        "a follower publishes no suite report"
    );

    // The old leader is gone; this worker leads: the FAIL is out already.
    kit.transport().set_leader(true);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        suites(&mut kit),
        Vec::<State>::new(),
        "the FAIL is not published again"
    );

    // A newer test passes: the new leader publishes the recovery.
    kit.run(verdict.trigger("ok", true)).await.unwrap();
    kit.report_for("ok").await;
    assert_eq!(kit.suite_report(VERDICT).await.state, State::Pass);
}

// A test whose report the group published is not run again; one whose report comes
// from another worker while it runs has its own report dropped.
#[tokio::test(start_paused = true)]
async fn a_test_already_reported_is_not_run_again_nor_reported_twice() {
    let mut kit = TestKit::builder().case(verdict).case(waits).start();
    let handle = kit.handle().clone();
    kit.transport()
        .publish_peer_report(peer_report("done", State::Pass));
    until("the peer report", &handle, |h| h.stats().peer_reports == 1).await;
    kit.run(verdict.trigger("done", false)).await.unwrap();
    until("the delivery skipped", &handle, |h| {
        h.stats().already_reported == 1
    })
    .await;

    // Running when another worker's report of it arrives.
    kit.run(waits.trigger("twice")).await.unwrap();
    until("the test running", &handle, |h| h.stats().in_flight == 1).await;
    let mut elsewhere = peer_report("twice", State::Pass);
    elsewhere.case_name = "health.waits".into();
    if let Some(test) = elsewhere.test.as_mut() {
        test.case_name = "health.waits".into();
    }
    kit.transport().publish_peer_report(elsewhere);
    until("the peer report", &handle, |h| h.stats().peer_reports == 2).await;
    kit.send(&GO, "twice", &()).await.unwrap();
    until("the own report dropped", &handle, |h| {
        h.stats().duplicate_reports_dropped == 1
    })
    .await;

    // Neither produced a report of this worker; a new test does.
    kit.run(verdict.trigger("new", true)).await.unwrap();
    assert_eq!(kit.report_for("new").await.state, State::Pass);
    let own: Vec<String> = kit
        .drain()
        .into_iter()
        .filter_map(|r| r.test.map(|t| t.id))
        .collect();
    assert_eq!(own, Vec::<String>::new(), "no report for done or twice");
    assert_eq!(handle.stats().in_flight, 0);
}
