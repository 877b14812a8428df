//! The runtime on the in-memory transport: outcomes, signals, triggering (case health and the
//! group's judgement: tests/health.rs). Every time-dependent test runs on tokio's paused clock.

use std::time::Duration;

use std::sync::{Arc, Mutex};

use livecheck::testing::TestKit;
use livecheck::{Observer, State};
use serde::{Deserialize, Serialize};
use tokio::time::{sleep, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Behaviour {
    Pass,
    Ensure,
    EnsureBare,
    Fail,
    Assert,
    AssertWithMessage,
    AssertEq,
    AssertEqWithMessage,
    AssertNe,
    AssertNeWithMessage,
    StdPathAssert,
    AssertInClosure,
    HelperLivecheckAssert,
    HelperStdAssert,
    PanicLikeAnAssertion,
    ErrorLikeAnAssertion,
    Error,
    ErrorWithCause,
    Panic,
    Timeout,
    Skip,
}

/// A helper outside the case's body: its assertions are livecheck's only when it says so.
fn helper(livecheck_assert: bool) {
    if livecheck_assert {
        livecheck::assertions::assert_eq!(1 + 1, 3, "in a helper");
    } else {
        assert_eq!(1 + 1, 3, "in a helper");
    }
}

#[derive(Debug)]
struct Wrapper(std::num::ParseIntError);

impl std::fmt::Display for Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the quantity does not parse")
    }
}

impl std::error::Error for Wrapper {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Does what it is told: one case for every outcome.
#[livecheck::case(probability = 1.0)]
async fn obedient(behaviour: Behaviour) -> livecheck::Result {
    let (a, b) = (1 + 1, 3);
    match behaviour {
        Behaviour::Pass => Ok(()),
        Behaviour::Ensure => {
            livecheck::ensure!(a == b, "arithmetic broke: {a}");
            Ok(())
        }
        Behaviour::EnsureBare => {
            livecheck::ensure!(a == b);
            Ok(())
        }
        Behaviour::Fail => livecheck::fail!("failed on purpose"),
        Behaviour::Assert => {
            assert!(a == b);
            Ok(())
        }
        Behaviour::AssertWithMessage => {
            assert!(a == b, "sum is {a}");
            Ok(())
        }
        Behaviour::AssertEq => {
            assert_eq!(a, b);
            Ok(())
        }
        Behaviour::AssertEqWithMessage => {
            assert_eq!(a, b, "sum of {} and {}", 1, 1);
            Ok(())
        }
        Behaviour::AssertNe => {
            assert_ne!(a, 2);
            Ok(())
        }
        Behaviour::AssertNeWithMessage => {
            assert_ne!(a, 2, "must not be two");
            Ok(())
        }
        Behaviour::StdPathAssert => {
            std::assert_eq!(a, b, "by its std path");
            Ok(())
        }
        Behaviour::AssertInClosure => {
            let check = |x: i32| assert!(x > 5, "in a closure");
            check(a);
            Ok(())
        }
        Behaviour::HelperLivecheckAssert => {
            helper(true);
            Ok(())
        }
        Behaviour::HelperStdAssert => {
            helper(false);
            Ok(())
        }
        Behaviour::PanicLikeAnAssertion => panic!("assertion failed: a == b"),
        Behaviour::ErrorLikeAnAssertion => Err(livecheck::CaseError::msg("assertion failed")),
        Behaviour::Error => {
            let _: u32 = "not a number".parse()?;
            Ok(())
        }
        Behaviour::ErrorWithCause => {
            let _: u32 = "x".parse().map_err(Wrapper)?;
            Ok(())
        }
        Behaviour::Panic => panic!("something unexpected"),
        Behaviour::Timeout => {
            NEVER.wait().timeout("2s").await?;
            Ok(())
        }
        Behaviour::Skip => livecheck::skip!("nothing to check for {a}"),
    }
}

/// Never fails its contract; waits for a value and checks it.
#[livecheck::case(probability = 1.0)]
async fn waits(expected: u32) -> livecheck::Result {
    let got = VALUE.wait().timeout("30s").await?;
    livecheck::ensure!(got == expected, "got {got}, want {expected}");
    Ok(())
}

#[livecheck::case(probability = 0.3)]
async fn sometimes() {}

livecheck::signal! {
    /// Never sent.
    NEVER: () for obedient;
    /// A number for `waits`.
    VALUE: u32 for waits;
    /// Noise for `waits`.
    NOISE: u32 for waits;
}

/// The source line `location` (`file:line:col`) points at, in this file.
fn source_line(traceback: &str) -> &'static str {
    let at = traceback
        .split_once("runtime.rs:")
        .unwrap_or_else(|| panic!("no location in this file: {traceback}"))
        .1;
    let line: usize = at.split(':').next().unwrap().parse().unwrap();
    include_str!("runtime.rs").lines().nth(line - 1).unwrap()
}

/// From Faust's runner (faust/livecheck/runners.py:78-98): an
/// `AssertionError` is FAIL (88-90), a timeout TIMEOUT (85-87), a skip SKIP (82-84), any other
/// exception ERROR (91-96), whatever its text. Here the kinds are livecheck's assertion
/// macros (which `#[case]` puts in place of std's in the body), `ensure!`/`fail!`, `skip!`, and a
/// wait's timeout; the text of a panic or an error never decides.
#[tokio::test(start_paused = true)]
async fn every_outcome_has_its_state_and_report() {
    use Behaviour::*;
    // (behaviour, state, in the error text, in the traceback, source line of the traceback)
    let table: &[(Behaviour, State, &str, &str, Option<&str>)] = &[
        (Pass, State::Pass, "", "", None),
        (
            Ensure,
            State::Fail,
            "arithmetic broke: 2",
            "at ",
            Some("arithmetic broke"),
        ),
        (
            EnsureBare,
            State::Fail,
            "condition failed: a == b",
            "at ",
            Some("ensure!(a == b)"),
        ),
        (
            Fail,
            State::Fail,
            "failed on purpose",
            "at ",
            Some("failed on purpose"),
        ),
        (
            Assert,
            State::Fail,
            "assertion failed: a == b",
            "at ",
            Some("assert!(a == b);"),
        ),
        (
            AssertWithMessage,
            State::Fail,
            "sum is 2",
            "at ",
            Some("sum is"),
        ),
        (
            AssertEq,
            State::Fail,
            "assertion `left == right` failed\n  left: 2\n right: 3",
            "at ",
            Some("assert_eq!(a, b);"),
        ),
        (
            AssertEqWithMessage,
            State::Fail,
            "assertion `left == right` failed: sum of 1 and 1\n  left: 2\n right: 3",
            "at ",
            Some("sum of"),
        ),
        (
            AssertNe,
            State::Fail,
            "assertion `left != right` failed",
            "at ",
            Some("assert_ne!(a, 2);"),
        ),
        (
            AssertNeWithMessage,
            State::Fail,
            "must not be two",
            "at ",
            Some("must not be two"),
        ),
        (
            StdPathAssert,
            State::Fail,
            "by its std path",
            "at ",
            Some("std::assert_eq!"),
        ),
        (
            AssertInClosure,
            State::Fail,
            "in a closure",
            "at ",
            Some("in a closure"),
        ),
        (
            HelperLivecheckAssert,
            State::Fail,
            "in a helper",
            "at ",
            Some("livecheck::assertions::assert_eq!"),
        ),
        // std's own macro outside the body is an ordinary panic: the kind decides, and a
        // panic's text is never read (use `livecheck::assertions::assert*` in helpers).
        (
            HelperStdAssert,
            State::Error,
            "panicked: assertion `left == right` failed: in a helper",
            "at ",
            Some("    assert_eq!(1 + 1, 3"),
        ),
        (
            PanicLikeAnAssertion,
            State::Error,
            "panicked: assertion failed: a == b",
            "at ",
            Some("assertion failed: a == b"),
        ),
        (
            ErrorLikeAnAssertion,
            State::Error,
            "assertion failed",
            "error: assertion failed",
            Some("CaseError::msg"),
        ),
        (
            Error,
            State::Error,
            "invalid digit found in string",
            "error: invalid digit",
            Some(".parse()?;"),
        ),
        (
            ErrorWithCause,
            State::Error,
            "the quantity does not parse: invalid digit found in string",
            "error: the quantity does not parse\ncaused by: invalid digit found in string",
            Some("map_err(Wrapper)?"),
        ),
        (
            Panic,
            State::Error,
            "panicked: something unexpected",
            "at ",
            Some("something unexpected"),
        ),
        (
            Timeout,
            State::Timeout,
            "signal never did not arrive within 2.00s",
            "at ",
            Some("NEVER.wait()"),
        ),
        (
            Skip,
            State::Skip,
            "nothing to check for 2",
            "at ",
            Some("livecheck::skip!"),
        ),
    ];
    let mut kit = TestKit::builder().case(obedient).start();
    for (i, (behaviour, want, error, traceback, line)) in table.iter().enumerate() {
        let id = format!("t{i}");
        kit.run(obedient.trigger(id.clone(), *behaviour))
            .await
            .unwrap();
        let report = kit.report_for(&id).await;
        assert_eq!(report.state, *want, "{behaviour:?}: {report:?}");
        assert_eq!(report.case_name, "runtime::obedient");
        assert_eq!(
            report.test.as_ref().unwrap().test_args,
            [serde_json::to_value(behaviour).unwrap()]
        );
        assert!(report.runtime.is_some());
        if *want == State::Pass {
            assert_eq!((&report.error, &report.traceback), (&None, &None));
            continue;
        }
        // Every report that is not a PASS explains itself.
        let (got_error, got_traceback) = (
            report.error.as_deref().unwrap_or_default(),
            report.traceback.as_deref().unwrap_or_default(),
        );
        assert!(
            got_error.contains(error),
            "{behaviour:?}: error {got_error:?} lacks {error:?}"
        );
        assert!(
            got_traceback.contains(traceback),
            "{behaviour:?}: traceback {got_traceback:?} lacks {traceback:?}"
        );
        if let Some(line) = line {
            let source = source_line(got_traceback);
            assert!(
                source.contains(line),
                "{behaviour:?}: {got_traceback:?} points at {source:?}"
            );
        }
    }
    // The worker kept going through the panics.
    kit.run(obedient.trigger("after", Pass)).await.unwrap();
    assert_eq!(kit.report_for("after").await.state, State::Pass);
}

/// Records the ids of the tests a worker announces as started.
#[derive(Clone, Default)]
struct Starts(Arc<Mutex<Vec<String>>>);

impl Observer for Starts {
    fn on_test_start(&self, test: &livecheck::TestExecution) {
        self.0.lock().unwrap().push(test.id.clone());
    }
}

/// A test execution of `obedient` published as a Faust service would, at `expires`.
fn execution(
    id: &str,
    behaviour: Behaviour,
    expires: chrono::Duration,
) -> livecheck::TestExecution {
    let now = chrono::Utc::now();
    let timestamp = now - chrono::Duration::hours(4);
    livecheck::TestExecution {
        test_args: vec![serde_json::to_value(behaviour).unwrap()],
        ..livecheck::TestExecution::new(id, "runtime::obedient", timestamp, now + expires)
    }
}

/// Faust skips an inactive case's test and an expired test before `on_start`
/// (faust/livecheck/runners.py:71-77): such a test is never announced as started. A test that
/// skips itself has started (runners.py:77-84).
#[tokio::test(start_paused = true)]
async fn skipped_tests_are_reported_and_only_tests_that_run_are_started() {
    // (active, expires in, behaviour, state, error, announced as started)
    let table = [
        (
            false,
            1,
            Behaviour::Pass,
            State::Skip,
            "case is inactive",
            false,
        ),
        (
            true,
            -1,
            Behaviour::Pass,
            State::Skip,
            "test expired before it started",
            false,
        ),
        (
            true,
            1,
            Behaviour::Skip,
            State::Skip,
            "nothing to check for 2",
            true,
        ),
        (true, 1, Behaviour::Pass, State::Pass, "", true),
    ];
    for (i, (active, expires, behaviour, state, error, started)) in table.into_iter().enumerate() {
        let starts = Starts::default();
        let mut kit = TestKit::builder()
            .case_with(obedient, |o| o.active = active)
            .observer(starts.clone())
            .start();
        let test = execution("t", behaviour, chrono::Duration::hours(expires));
        kit.client()
            .transport()
            .publish_test(&test)
            .unwrap()
            .await
            .unwrap();
        let report = kit.report_for("t").await;
        assert_eq!(report.state, state, "row {i}: {report:?}");
        assert_eq!(report.error.as_deref().unwrap_or(""), error, "row {i}");
        assert_eq!(
            *starts.0.lock().unwrap(),
            if started {
                vec!["t".to_owned()]
            } else {
                vec![]
            },
            "row {i}"
        );
        kit.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_signal_sent_before_the_wait_is_found() {
    let mut kit = TestKit::builder().case(waits).start();
    kit.send(&VALUE, "early", &7).await.unwrap();
    sleep(Duration::from_secs(5)).await;
    kit.run(waits.trigger("early", 7)).await.unwrap();
    let report = kit.report_for("early").await;
    assert_eq!(report.state, State::Pass, "{report:?}");
    assert_eq!(report.signal_latency["value"], 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_30s_wait_lasts_30s_while_other_signals_arrive() {
    let mut kit = TestKit::builder().case(waits).start();
    let start = Instant::now();
    kit.run(waits.trigger("late", 1)).await.unwrap();
    kit.run(waits.trigger("never", 1)).await.unwrap();
    // Noise for these tests and values for other keys, every second for 29 s.
    for i in 0..29u32 {
        sleep(Duration::from_secs(1)).await;
        kit.send(&NOISE, "late", &i).await.unwrap();
        kit.send(&VALUE, &format!("other-{i}"), &i).await.unwrap();
    }
    sleep(Duration::from_millis(500)).await;
    kit.send(&VALUE, "late", &1).await.unwrap();
    let late = kit.report_for("late").await;
    assert_eq!(late.state, State::Pass, "{late:?}");
    assert!(
        late.signal_latency["value"] >= 29.5,
        "{:?}",
        late.signal_latency
    );

    let never = kit.report_for("never").await;
    assert_eq!(never.state, State::Timeout);
    assert_eq!(
        never.timed_out_signal.as_deref(),
        Some("value"),
        "{never:?}"
    );
    assert_eq!(late.timed_out_signal, None);
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(30),
        "gave up after {elapsed:?}"
    );
    assert!(never.runtime.unwrap() >= 30.0);
}

#[tokio::test(start_paused = true)]
async fn a_contract_on_a_signal_value_fails() {
    let mut kit = TestKit::builder().case(waits).start();
    kit.run(waits.trigger("w", 5)).await.unwrap();
    kit.send(&VALUE, "w", &6).await.unwrap();
    let report = kit.report_for("w").await;
    assert_eq!(report.state, State::Fail);
    assert_eq!(report.error.as_deref(), Some("got 6, want 5"));
}

/// Memory follows the work in flight (a long-running worker must not grow). A test's signals
/// are let go once its report is out; signals whose test never runs here are kept `test_expires`, then forgotten
/// (Faust keeps every signal for ever: app.py `_resolved_signals`).
#[tokio::test(start_paused = true)]
async fn the_signal_store_empties_as_reports_go_out() {
    let mut kit = TestKit::builder()
        .case_with(waits, |o| o.test_expires = Duration::from_secs(600))
        .start();
    for i in 0..100u32 {
        let id = format!("k{i}");
        // Half of the signals arrive before their test runs, half while it waits.
        if i % 2 == 0 {
            kit.send(&VALUE, &id, &i).await.unwrap();
        }
        kit.run(waits.trigger(id.clone(), i)).await.unwrap();
        if i % 2 == 1 {
            kit.send(&VALUE, &id, &i).await.unwrap();
        }
        assert_eq!(kit.report_for(&id).await.state, State::Pass);
    }
    assert_eq!(kit.handle().stored_signals(), 0, "every test reported");

    // Signals of tests that never run here: kept test_expires after they arrived.
    for i in 0..100 {
        kit.send(&VALUE, &format!("elsewhere-{i}"), &i)
            .await
            .unwrap();
    }
    sleep(Duration::from_secs(1)).await;
    assert_eq!(kit.handle().stored_signals(), 100);
    sleep(Duration::from_secs(598)).await;
    assert_eq!(kit.handle().stored_signals(), 100);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(kit.handle().stored_signals(), 0);
}

/// Same as `waits`, in another case, with a signal of the same name.
#[livecheck::case(probability = 1.0)]
async fn waits_too(expected: u32) -> livecheck::Result {
    let got = other::VALUE.wait().timeout("30s").await?;
    livecheck::ensure!(got == expected, "got {got}, want {expected}");
    Ok(())
}

mod other {
    livecheck::signal! {
        /// `waits_too`'s number, under the same name as `waits`'s.
        pub VALUE: u32 for super::waits_too;
    }
}

/// Faust indexes a signal by (signal name, case name, key)
/// (faust/livecheck/signals.py:83-84), so two cases triggered with one id (the README's
/// `order.id` pattern) do not see each other's signals of the same name; and behaviour 8: a
/// signal sent twice resolves to the latest value (signals.py:86-87 overwrites it).
#[tokio::test(start_paused = true)]
async fn signals_belong_to_their_case_and_the_latest_value_wins() {
    assert_eq!(VALUE.name(), other::VALUE.name());
    // (signals sent before the tests run: (to `waits_too`?, value); states of waits, waits_too)
    type Sent = &'static [(bool, u32)];
    let table: &[(Sent, State, State)] = &[
        // Each case gets its own value under one id.
        (&[(false, 1), (true, 2)], State::Pass, State::Pass),
        (&[(true, 2), (false, 1)], State::Pass, State::Pass),
        // The other case's value is not ours: ours never came.
        (&[(true, 1)], State::Timeout, State::Fail),
        // Sent twice: the latest value.
        (
            &[(false, 7), (false, 1), (true, 7), (true, 2)],
            State::Pass,
            State::Pass,
        ),
        (&[(false, 1), (false, 7)], State::Fail, State::Timeout),
    ];
    for (i, (sent, want_waits, want_too)) in table.iter().enumerate() {
        let mut kit = TestKit::builder().case(waits).case(waits_too).start();
        let id = format!("order-{i}");
        for (too, value) in *sent {
            let signal = if *too { &other::VALUE } else { &VALUE };
            kit.send(signal, &id, value).await.unwrap();
        }
        kit.run(waits.trigger(id.clone(), 1)).await.unwrap();
        kit.run(waits_too.trigger(id.clone(), 2)).await.unwrap();
        let mut states = [State::Init; 2];
        for _ in 0..2 {
            let report = kit.report_for(&id).await;
            let at = usize::from(report.case_name == "runtime::waits_too");
            states[at] = report.state;
        }
        assert_eq!(states, [*want_waits, *want_too], "row {i}: {sent:?}");
    }
}

#[tokio::test]
async fn maybe_trigger_follows_the_probability() {
    let kit = TestKit::builder().case(sometimes).start();
    let n = 10_000u32;
    let mut triggered = 0u32;
    for i in 0..n {
        if kit
            .run(sometimes.maybe_trigger(format!("m{i}")))
            .await
            .unwrap()
            .is_some()
        {
            triggered += 1;
        }
    }
    // The draws are unseeded (`rand::random`), so the bound is chosen for its false-failure
    // probability: by Hoeffding's inequality P(|X - np| >= t) <= 2 exp(-2 t^2 / n), which for
    // t = 330 and n = 10 000 is 2 exp(-21.78) < 7e-10. A probability off by 0.05 (500 tests)
    // still fails.
    let p = 0.3;
    let t = 330.0;
    assert!(2.0 * (-2.0 * t * t / f64::from(n)).exp() < 1e-9);
    let off = (f64::from(triggered) - f64::from(n) * p).abs();
    assert!(off < t, "{triggered} of {n} triggered at p={p}");
    kit.shutdown().await;
}

// On the paused clock, the sleep below returns once every task has run as far as it can: the
// worker has handled anything that was sent.
#[tokio::test(start_paused = true)]
async fn send_outside_a_test_does_nothing() {
    let kit = TestKit::builder().case(waits).start();
    // No current test: nothing is published, even with a client in effect.
    kit.run(VALUE.send(&1)).await.unwrap();
    // And with no client at all (not installed, no scope), send outside a test is still fine.
    VALUE.send(&1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(kit.handle().stats().signals_received, 0);
    assert_eq!(kit.handle().stored_signals(), 0);
}

#[tokio::test(start_paused = true)]
async fn send_inside_a_test_scope_is_keyed_by_the_test() {
    let mut kit = TestKit::builder().case(waits).start();
    let test = kit.run(waits.trigger("scoped", 3)).await.unwrap();
    kit.run(livecheck::with_test(test, VALUE.send(&3)))
        .await
        .unwrap();
    assert_eq!(kit.report_for("scoped").await.state, State::Pass);
}

#[tokio::test(start_paused = true)]
async fn named_arguments_from_faust_services_are_accepted() {
    let mut kit = TestKit::builder().case(waits).start();
    let now = chrono::Utc::now();
    let mut kwargs = serde_json::Map::new();
    kwargs.insert("expected".into(), 9.into());
    let test = livecheck::TestExecution {
        test_kwargs: kwargs,
        ..livecheck::TestExecution::new(
            "kw",
            "runtime::waits",
            now,
            now + chrono::Duration::hours(1),
        )
    };
    kit.client()
        .transport()
        .publish_test(&test)
        .unwrap()
        .await
        .unwrap();
    kit.send(&VALUE, "kw", &9).await.unwrap();
    assert_eq!(kit.report_for("kw").await.state, State::Pass);
}

/// What `Recorder` saw, in order: `"<test id or suite> <hook> [<state>]"`.
static HOOK_EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK_NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn record(event: String) {
    HOOK_EVENTS.lock().unwrap().push(event);
    HOOK_NOTIFY.notify_waiters();
}

fn subject(report: &livecheck::TestReport) -> String {
    report
        .test
        .as_ref()
        .map_or_else(|| "suite".to_owned(), |t| t.id.clone())
}

/// Records every hook, in the order they fire; panics in `on_test_start` of `h-panic`.
#[derive(Default)]
struct Recorder;

impl livecheck::CaseHooks for Recorder {
    async fn on_test_start(&self, test: &livecheck::TestExecution) {
        record(format!("{} on_test_start", test.id));
        std::assert!(test.id != "h-panic", "a hook that panics");
    }
    async fn on_test_skipped(&self, report: &livecheck::TestReport) {
        record(format!(
            "{} on_test_skipped {}",
            subject(report),
            report.state
        ));
    }
    async fn on_test_failed(&self, report: &livecheck::TestReport) {
        record(format!(
            "{} on_test_failed {}",
            subject(report),
            report.state
        ));
    }
    async fn on_test_error(&self, report: &livecheck::TestReport) {
        record(format!(
            "{} on_test_error {}",
            subject(report),
            report.state
        ));
    }
    async fn on_test_timeout(&self, report: &livecheck::TestReport) {
        record(format!(
            "{} on_test_timeout {}",
            subject(report),
            report.state
        ));
    }
    async fn on_test_pass(&self, report: &livecheck::TestReport) {
        // A hook may await.
        tokio::task::yield_now().await;
        record(format!("{} on_test_pass {}", subject(report), report.state));
    }
    async fn on_suite_fail(&self, report: &livecheck::TestReport) {
        record(format!(
            "{} on_suite_fail {}",
            subject(report),
            report.state
        ));
    }
    async fn post_report(&self, report: &livecheck::TestReport) {
        record(format!("{} post_report {}", subject(report), report.state));
    }
}

/// A case with hooks.
#[livecheck::case(probability = 1.0, hooks = Recorder)]
async fn hooked(behaviour: Behaviour) -> livecheck::Result {
    match behaviour {
        Behaviour::Assert => assert!(1 + 1 == 3),
        Behaviour::Error => Err(livecheck::CaseError::msg("broken"))?,
        Behaviour::Timeout => HOOKED_NEVER.wait().timeout("1s").await?,
        Behaviour::Skip => livecheck::skip!("not today"),
        _ => {}
    }
    Ok(())
}

livecheck::signal! {
    /// Never sent.
    HOOKED_NEVER: () for hooked;
}

/// The hook events of `subject` once `last` is among them.
async fn hook_events(subject: &str, last: &str) -> Vec<String> {
    let prefix = format!("{subject} ");
    let done = format!("{subject} {last}");
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            let notified = HOOK_NOTIFY.notified();
            let events: Vec<String> = HOOK_EVENTS
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.starts_with(&prefix))
                .cloned()
                .collect();
            if events.contains(&done) {
                return events;
            }
            notified.await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {done:?}: {:?}", HOOK_EVENTS.lock().unwrap()))
}

/// Faust's hooks fire in this order (faust/livecheck/runners.py): `on_test_start` once the
/// skip checks pass (71-77, 132-139), then the outcome's hook (`on_test_failed` 160-167,
/// `on_test_error` 169-176, `on_test_timeout` 178-185, `on_test_pass` 187-200,
/// `on_test_skipped` 124-130), then the report is posted (`post_report`, 202-216); a suite
/// failure calls `on_suite_fail` and posts its report (case.py `on_suite_fail`).
#[tokio::test(start_paused = true)]
async fn hooks_fire_as_faust_fires_them() {
    use Behaviour::*;
    // (test id, behaviour, active, the test's hook events in order)
    let table: &[(&str, Behaviour, bool, &[&str])] = &[
        (
            "h-pass",
            Pass,
            true,
            &["on_test_start", "on_test_pass PASS", "post_report PASS"],
        ),
        (
            "h-fail",
            Assert,
            true,
            &["on_test_start", "on_test_failed FAIL", "post_report FAIL"],
        ),
        (
            "h-error",
            Error,
            true,
            &["on_test_start", "on_test_error ERROR", "post_report ERROR"],
        ),
        (
            "h-timeout",
            Timeout,
            true,
            &[
                "on_test_start",
                "on_test_timeout TIMEOUT",
                "post_report TIMEOUT",
            ],
        ),
        (
            "h-skip",
            Skip,
            true,
            &["on_test_start", "on_test_skipped SKIP", "post_report SKIP"],
        ),
        (
            "h-inactive",
            Pass,
            false,
            &["on_test_skipped SKIP", "post_report SKIP"],
        ),
        // A hook that panics is logged; the test runs and reports all the same.
        (
            "h-panic",
            Pass,
            true,
            &["on_test_start", "on_test_pass PASS", "post_report PASS"],
        ),
    ];
    for (id, behaviour, active, want) in table {
        let mut kit = TestKit::builder()
            .case_with(hooked, |o| o.active = *active)
            .start();
        kit.run(hooked.trigger(*id, *behaviour)).await.unwrap();
        let report = kit.report_for(id).await;
        let events = hook_events(id, want.last().unwrap()).await;
        let want: Vec<String> = want.iter().map(|e| format!("{id} {e}")).collect();
        assert_eq!(events, want, "{id}: {report:?}");
        kit.shutdown().await;
    }

    // The suite: two failures in a row fail it, a newer pass recovers it.
    let mut kit = TestKit::builder()
        .case_with(hooked, |o| o.max_consecutive_failures = 2)
        .start();
    for id in ["s-1", "s-2"] {
        kit.run(hooked.trigger(id, Assert)).await.unwrap();
        kit.report_for(id).await;
    }
    assert_eq!(kit.suite_report("runtime::hooked").await.state, State::Fail);
    assert_eq!(
        hook_events("suite", "post_report FAIL").await,
        ["suite on_suite_fail FAIL", "suite post_report FAIL"]
    );
    kit.run(hooked.trigger("s-3", Pass)).await.unwrap();
    assert_eq!(kit.suite_report("runtime::hooked").await.state, State::Pass);
    assert_eq!(
        hook_events("suite", "post_report PASS").await,
        [
            "suite on_suite_fail FAIL",
            "suite post_report FAIL",
            "suite post_report PASS"
        ],
        "a recovery is no suite failure"
    );
}

#[livecheck::case(probability = 0.0)]
async fn never_drawn() {}

/// Faust's `trigger` and `maybe_trigger` make a UUID when given no id (case.py, `trigger`:
/// `id = id or uuid()`): here, `AutoId`.
#[tokio::test(start_paused = true)]
async fn tests_triggered_without_an_id_get_a_uuid() {
    let mut kit = TestKit::builder().case(waits).start();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let test = kit.run(waits.trigger(livecheck::AutoId, 4)).await.unwrap();
        let id = test.id.clone();
        // A v4 UUID in its hyphenated form, as Python's `str(uuid4())`.
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(
            id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(&id[14..15], "4", "{id}");
        kit.send(&VALUE, &id, &4).await.unwrap();
        assert_eq!(kit.report_for(&id).await.state, State::Pass);
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let drawn = kit
        .run(waits.maybe_trigger(livecheck::AutoId, 4))
        .await
        .unwrap();
    assert!(drawn.is_some_and(|t| t.id.len() == 36));
    let none = kit
        .run(never_drawn.maybe_trigger(livecheck::AutoId))
        .await
        .unwrap();
    assert!(none.is_none());
}

/// Faust's `async with case.maybe_trigger(id, ...) as test:` (case.py `maybe_trigger`) runs the
/// block either way, with the test current when one was drawn.
#[tokio::test(start_paused = true)]
async fn maybe_trigger_scope_runs_the_block_with_the_test_current() {
    let mut kit = TestKit::builder().case(waits).case(never_drawn).start();
    let handled = kit
        .run(waits.maybe_trigger_scope("scoped", 3, |test| async move {
            let current = livecheck::current_test().map(|t| t.id.clone());
            assert_eq!(current.as_deref(), Some("scoped"));
            assert_eq!(test.map(|t| t.id.clone()).as_deref(), Some("scoped"));
            // Keyed by the current test, with no `with_test` by hand.
            VALUE.send(&3).await.unwrap();
            "handled"
        }))
        .await
        .unwrap();
    assert_eq!(handled, "handled");
    assert!(livecheck::current_test().is_none(), "the scope ended");
    assert_eq!(kit.report_for("scoped").await.state, State::Pass);

    let handled = kit
        .run(
            never_drawn.maybe_trigger_scope(livecheck::AutoId, |test| async move {
                assert!(test.is_none());
                assert!(livecheck::current_test().is_none());
                7
            }),
        )
        .await
        .unwrap();
    assert_eq!(handled, 7);
}

/// Hangs: in its own code, or in a wait with no timeout.
#[livecheck::case(probability = 1.0, max_runtime = "5s")]
async fn hangs(in_a_wait: bool) -> livecheck::Result {
    if in_a_wait {
        FOREVER.wait().await?;
    } else {
        std::future::pending::<()>().await;
    }
    Ok(())
}

livecheck::signal! {
    /// Never sent.
    FOREVER: () for hangs;
}

/// A hung test would hold its slot for ever. Past its case's `max_runtime` it is
/// stopped and reported TIMEOUT (Faust's `LiveCheckTestTimeout`: "timed out waiting for an
/// event or during processing", exceptions.py), saying what it was doing.
#[tokio::test(start_paused = true)]
async fn a_test_past_max_runtime_is_stopped_and_reported() {
    const H: u64 = 3600;
    // (max_runtime, test_expires, in a wait, stopped after s, error, traceback, source line)
    let table = [
        (
            Some(5),
            3 * H,
            false,
            5,
            "max_runtime of 5.00s",
            "not waiting for a signal",
            None,
        ),
        (
            Some(5),
            3 * H,
            true,
            5,
            "max_runtime of 5.00s",
            "waiting for signal forever, at ",
            Some("FOREVER.wait()"),
        ),
        // By default: test_expires, at most an hour.
        (
            None,
            600,
            false,
            600,
            "max_runtime of 10m 0s",
            "not waiting",
            None,
        ),
        (
            None,
            3 * H,
            false,
            H,
            "max_runtime of 1h 0m",
            "not waiting",
            None,
        ),
        (
            None,
            24 * H,
            true,
            H,
            "max_runtime of 1h 0m",
            "waiting for signal forever",
            Some("FOREVER.wait()"),
        ),
    ];
    for (i, (max, expires, in_a_wait, after, error, traceback, line)) in
        table.into_iter().enumerate()
    {
        let mut kit = TestKit::builder()
            .case_with(hangs, |o| {
                o.max_runtime = max.map(Duration::from_secs);
                o.test_expires = Duration::from_secs(expires);
            })
            .start();
        let start = Instant::now();
        kit.run(hangs.trigger("hung", in_a_wait)).await.unwrap();
        let report = kit.report_for("hung").await;
        let took = start.elapsed();
        assert_eq!(report.state, State::Timeout, "row {i}: {report:?}");
        assert_eq!(
            report.timed_out_signal.as_deref(),
            in_a_wait.then_some("forever"),
            "row {i}: the signal waited for, only when waiting"
        );
        assert!(
            took >= Duration::from_secs(after) && took < Duration::from_secs(after + 1),
            "row {i}: {took:?}"
        );
        assert!(report.runtime.unwrap() >= after as f64, "row {i}");
        let (got_error, got_traceback) = (report.error.unwrap(), report.traceback.unwrap());
        assert!(got_error.contains(error), "row {i}: {got_error}");
        assert!(
            got_traceback.contains(traceback),
            "row {i}: {got_traceback}"
        );
        if let Some(line) = line {
            assert!(
                source_line(&got_traceback).contains(line),
                "row {i}: {got_traceback}"
            );
        }
        assert_eq!(
            kit.handle().stored_signals(),
            0,
            "row {i}: the wait left nothing behind"
        );
        kit.shutdown().await;
    }
}

/// Wraps the in-memory transport to record which tests the worker acknowledges; its broker may
/// refuse reports as too large (`refuse`: its `message.max.bytes`, say).
#[derive(Debug, Default)]
struct RecordAcks {
    inner: livecheck::MemoryTransport,
    acked: Arc<Mutex<Vec<String>>>,
    refuse: Option<fn(&livecheck::TestReport) -> bool>,
}

impl livecheck::Publish for RecordAcks {
    fn publish_test(
        &self,
        test: &livecheck::TestExecution,
    ) -> Result<livecheck::transport::Queued, livecheck::transport::TransportError> {
        self.inner.publish_test(test)
    }

    fn publish_signal(
        &self,
        signal: &livecheck::SignalEvent,
        within: Option<&livecheck::TestExecution>,
    ) -> Result<livecheck::transport::Queued, livecheck::transport::TransportError> {
        self.inner.publish_signal(signal, within)
    }
}

impl livecheck::Consume for RecordAcks {
    fn subscribe(
        &self,
    ) -> livecheck::transport::TransportFuture<'_, livecheck::transport::Subscription> {
        use futures::StreamExt;
        let acked = self.acked.clone();
        Box::pin(async move {
            let mut subscription = self.inner.subscribe().await?;
            subscription.tests = subscription
                .tests
                .map(move |delivery| {
                    let (test, ack) = delivery.into_parts();
                    let (acked, id) = (acked.clone(), test.id.clone());
                    livecheck::transport::Delivery::with_ack(test, move || {
                        ack.ack();
                        acked.lock().unwrap().push(id);
                    })
                })
                .boxed();
            Ok(subscription)
        })
    }

    fn publish_report<'a>(
        &'a self,
        report: &'a livecheck::TestReport,
        at: chrono::DateTime<chrono::Utc>,
    ) -> livecheck::transport::TransportFuture<'a, ()> {
        if self.refuse.is_some_and(|refuse| refuse(report)) {
            return Box::pin(async { Err(livecheck::transport::TransportError::TooLarge) });
        }
        self.inner.publish_report(report, at)
    }
}

impl livecheck::Introspect for RecordAcks {}

/// A worker on `transport` running `cases` with a single slot (`test_concurrency` 1), and the
/// reports it makes.
fn one_slot_worker(
    transport: &Arc<RecordAcks>,
    cases: impl IntoIterator<Item = &'static livecheck::CaseDescriptor>,
) -> (
    livecheck::Worker,
    tokio::sync::mpsc::UnboundedReceiver<livecheck::TestReport>,
) {
    let (tx, reports) = tokio::sync::mpsc::unbounded_channel();
    let mut settings = livecheck::WorkerSettings::default();
    settings.test_concurrency = 1;
    let worker = livecheck::Worker::builder_arc(transport.clone())
        .cases(cases.into_iter().map(livecheck::CaseConfig::from))
        .settings(settings)
        .observer(Reports(tx))
        .build()
        .unwrap();
    (worker, reports)
}

/// Sends every report to a channel.
struct Reports(tokio::sync::mpsc::UnboundedSender<livecheck::TestReport>);

impl Observer for Reports {
    fn on_report(&self, report: &livecheck::TestReport) {
        let _ = self.0.send(report.clone());
    }
}

/// With one slot, a hung test frees it at its `max_runtime`: the next test runs, and the hung
/// one is acknowledged (its report is out), so it does not come back after a restart.
#[tokio::test(start_paused = true)]
async fn a_hung_test_frees_its_slot_and_is_acknowledged() {
    let transport = Arc::new(RecordAcks::default());
    let (worker, mut reports) = one_slot_worker(
        &transport,
        [
            livecheck::Case::descriptor(&hangs),
            livecheck::Case::descriptor(&waits),
        ],
    );
    let client = worker.client();
    let worker = worker.spawn();
    let start = Instant::now();
    client.scope(hangs.trigger("hung", false)).await.unwrap();
    client.scope(VALUE.send_to("next", &1)).await.unwrap();
    client.scope(waits.trigger("next", 1)).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let report = tokio::time::timeout(Duration::from_secs(60), reports.recv())
            .await
            .unwrap()
            .unwrap();
        got.push((
            report.test.unwrap().id,
            report.state,
            start.elapsed().as_secs(),
        ));
    }
    assert_eq!(
        got,
        [
            ("hung".to_owned(), State::Timeout, 5),
            ("next".to_owned(), State::Pass, 5)
        ]
    );
    worker.stop().await.unwrap();
    assert_eq!(*transport.acked.lock().unwrap(), ["hung", "next"]);
}

/// A test whose id alone is larger than the broker takes (600 KB): its report cannot
/// be cut to fit, so a minimal one goes out (the id shortened with a hash, the state kept); with
/// a broker that refuses even that, it is dropped. Either way the test is acknowledged and its
/// slot (the only one) freed: the next test runs.
#[tokio::test(start_paused = true)]
async fn a_report_that_cannot_be_cut_to_fit_is_replaced_or_dropped_and_frees_its_slot() {
    // A broker taking 100 KB; the second one refuses minimal reports too.
    fn large(report: &livecheck::TestReport) -> bool {
        livecheck::codec::encode_report(report).len() > 100_000
    }
    fn large_or_minimal(report: &livecheck::TestReport) -> bool {
        large(report)
            || report
                .test
                .as_ref()
                .is_some_and(|t| t.id.contains("…sha256:"))
    }
    for (minimal, refuse) in [(true, large as fn(&_) -> _), (false, large_or_minimal)] {
        let transport = Arc::new(RecordAcks {
            refuse: Some(refuse),
            ..RecordAcks::default()
        });
        let (worker, mut reports) =
            one_slot_worker(&transport, [livecheck::Case::descriptor(&waits)]);
        let handle = worker.handle();
        let client = worker.client();
        let worker = worker.spawn();
        let huge = "x".repeat(600_000);
        for id in [huge.as_str(), "next"] {
            client.scope(VALUE.send_to(id, &1)).await.unwrap();
            client.scope(waits.trigger(id, 1)).await.unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let report = tokio::time::timeout(Duration::from_secs(60), reports.recv())
                .await
                .expect("a report within a minute: the slot was freed")
                .unwrap();
            seen.push(report);
        }
        let first = &seen[0];
        assert_eq!(first.state, State::Pass, "the state is kept");
        let id = &first.test.as_ref().unwrap().id;
        if minimal {
            assert!(id.len() < 200 && id.contains("…sha256:"), "{id}");
            assert!(first.error.as_deref().unwrap().contains("minimal report"));
            assert_eq!(handle.stats().minimal_reports, 1);
        } else {
            assert_eq!(handle.stats().reports_dropped, 1);
        }
        assert_eq!(seen[1].test.as_ref().unwrap().id, "next");
        worker.stop().await.unwrap();
        let acked = transport.acked.lock().unwrap().clone();
        assert_eq!(acked.len(), 2, "both acknowledged");
        assert_eq!(acked[1], "next");
    }
}

/// Reports of peers dated ahead of the clock (35 forged FAILs ten years ahead once kept a
/// case FAIL for good) are ignored and counted; the case follows the healthy tests.
#[tokio::test]
async fn a_peer_report_from_the_future_does_not_count() {
    let transport = Arc::new(livecheck::MemoryTransport::new());
    let worker = livecheck::Worker::builder_arc(transport.clone())
        .cases([livecheck::CaseConfig::from(livecheck::Case::descriptor(
            &waits,
        ))])
        .build()
        .unwrap();
    let handle = worker.handle();
    let client = worker.client();
    let worker = worker.spawn();
    let ahead = chrono::Utc::now() + chrono::Duration::days(3650);
    for i in 0..35 {
        let now = chrono::Utc::now();
        let mut test = livecheck::TestExecution {
            test_args: vec![1.into()],
            ..livecheck::TestExecution::new(
                format!("forged-{i}"),
                livecheck::Case::descriptor(&waits).name,
                now,
                now + chrono::Duration::hours(1),
            )
        };
        let published_at = if i % 2 == 0 {
            test.timestamp = ahead; // dated ahead by its test
            now
        } else {
            ahead // or by its publication
        };
        let report = livecheck::TestReport {
            case_name: test.case_name.clone(),
            state: State::Fail,
            test: Some(test),
            runtime: Some(0.1),
            signal_latency: Default::default(),
            error: Some("forged".into()),
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
        };
        transport.publish_peer_report_at(report, published_at);
    }
    client.scope(VALUE.send_to("healthy", &1)).await.unwrap();
    client.scope(waits.trigger("healthy", 1)).await.unwrap();
    let name = livecheck::Case::descriptor(&waits).name;
    tokio::time::timeout(Duration::from_secs(10), async {
        while handle.status(name).is_none_or(|s| s.state != State::Pass) {
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the case follows its healthy test");
    assert_eq!(handle.stats().future_reports, 35);
    assert_eq!(handle.stats().peer_reports, 0);
    worker.stop().await.unwrap();
}
