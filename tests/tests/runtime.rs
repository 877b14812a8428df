//! The runtime on the in-memory transport: outcomes, signals, triggering (case health and the
//! group's judgement: tests/health.rs). Every time-dependent test runs on tokio's paused clock.

use std::time::Duration;

use livecheck::testing::TestKit;
use livecheck::State;
use serde::{Deserialize, Serialize};
use tokio::time::{sleep, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Behaviour {
    Pass,
    Ensure,
    AssertPanic,
    Error,
    Panic,
    Timeout,
}

/// Does what it is told: one case for every outcome.
#[livecheck::case(probability = 1.0)]
async fn obedient(behaviour: Behaviour) -> livecheck::Result {
    match behaviour {
        Behaviour::Pass => Ok(()),
        Behaviour::Ensure => {
            livecheck::ensure!(1 + 1 == 3, "arithmetic broke: {}", 1 + 1);
            Ok(())
        }
        Behaviour::AssertPanic => {
            assert_eq!(1 + 1, 3, "assertion in a case");
            Ok(())
        }
        Behaviour::Error => {
            let _: u32 = "not a number".parse()?;
            Ok(())
        }
        Behaviour::Panic => panic!("something unexpected"),
        Behaviour::Timeout => {
            NEVER.wait().timeout("2s").await?;
            Ok(())
        }
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

#[tokio::test(start_paused = true)]
async fn every_outcome_has_its_state_and_report() {
    let table = [
        (Behaviour::Pass, State::Pass, None),
        (Behaviour::Ensure, State::Fail, Some("arithmetic broke: 2")),
        (
            Behaviour::AssertPanic,
            State::Fail,
            Some("assertion in a case"),
        ),
        (Behaviour::Error, State::Error, Some("invalid digit")),
        (Behaviour::Panic, State::Error, Some("something unexpected")),
        (
            Behaviour::Timeout,
            State::Timeout,
            Some("signal never did not arrive within 2.00s"),
        ),
    ];
    let mut kit = TestKit::builder().case(obedient).start();
    for (i, (behaviour, want, error)) in table.iter().enumerate() {
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
        match error {
            None => assert_eq!(report.error, None),
            Some(text) => assert!(
                report.error.as_deref().unwrap_or("").contains(text),
                "{behaviour:?}: error {:?} lacks {text:?}",
                report.error
            ),
        }
    }
    // FAIL from ensure! carries its location; a panic carries where it panicked.
    kit.run(obedient.trigger("loc", Behaviour::Ensure))
        .await
        .unwrap();
    let traceback = kit.report_for("loc").await.traceback.unwrap();
    assert!(traceback.contains("runtime.rs"), "{traceback}");
    // The worker kept going through the panics.
    kit.run(obedient.trigger("after", Behaviour::Pass))
        .await
        .unwrap();
    assert_eq!(kit.report_for("after").await.state, State::Pass);
}

#[tokio::test(start_paused = true)]
async fn inactive_cases_and_expired_tests_are_skipped() {
    let mut kit = TestKit::builder()
        .case_with(obedient, |o| o.active = false)
        .start();
    kit.run(obedient.trigger("inactive", Behaviour::Pass))
        .await
        .unwrap();
    let report = kit.report_for("inactive").await;
    assert_eq!(report.state, State::Skip);
    assert_eq!(report.error.as_deref(), Some("case is inactive"));

    let mut kit = TestKit::builder().case(obedient).start();
    let now = chrono::Utc::now();
    let expired = livecheck::TestExecution {
        id: "old".into(),
        case_name: "runtime::obedient".into(),
        timestamp: now - chrono::Duration::hours(4),
        test_args: vec![serde_json::to_value(Behaviour::Pass).unwrap()],
        test_kwargs: Default::default(),
        expires: now - chrono::Duration::hours(1),
    };
    kit.client()
        .transport()
        .publish_test(&expired)
        .await
        .unwrap();
    let report = kit.report_for("old").await;
    assert_eq!(report.state, State::Skip);
    assert_eq!(
        report.error.as_deref(),
        Some("test expired before it started")
    );
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

#[tokio::test(start_paused = true)]
async fn resolved_signals_are_forgotten_after_test_expires() {
    let mut kit = TestKit::builder()
        .case_with(waits, |o| o.test_expires = Duration::from_secs(600))
        .start();
    for i in 0..100 {
        kit.send(&VALUE, &format!("k{i}"), &i).await.unwrap();
    }
    kit.run(waits.trigger("k1", 1)).await.unwrap();
    assert_eq!(kit.report_for("k1").await.state, State::Pass);
    assert_eq!(kit.handle().stored_signals(), 100);
    sleep(Duration::from_secs(599)).await;
    assert_eq!(kit.handle().stored_signals(), 100);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(kit.handle().stored_signals(), 0);
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
    let p = 0.3;
    let sd = (f64::from(n) * p * (1.0 - p)).sqrt();
    let off = (f64::from(triggered) - f64::from(n) * p).abs();
    assert!(off <= 4.0 * sd, "{triggered} of {n} triggered at p={p}");
    kit.shutdown().await;
}

#[tokio::test]
async fn send_outside_a_test_does_nothing() {
    let kit = TestKit::builder().case(waits).start();
    // No current test: nothing is published, even with a client in effect.
    kit.run(VALUE.send(&1)).await.unwrap();
    // And with no client at all (not installed, no scope), send outside a test is still fine.
    VALUE.send(&1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        kit.handle()
            .stats()
            .signals_received
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
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
        id: "kw".into(),
        case_name: "runtime::waits".into(),
        timestamp: now,
        test_args: vec![],
        test_kwargs: kwargs,
        expires: now + chrono::Duration::hours(1),
    };
    kit.client().transport().publish_test(&test).await.unwrap();
    kit.send(&VALUE, "kw", &9).await.unwrap();
    assert_eq!(kit.report_for("kw").await.state, State::Pass);
}
