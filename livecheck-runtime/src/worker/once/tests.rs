//! Unit tests of one-shot runs: verdicts, retries, flaky cases, a run of nothing, timeouts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::service::case::CaseConfig;
use crate::service::case::FakeRequest;
use crate::transport::Transport;
use crate::{Case, MemoryTransport};

static FLAKY_RUNS: AtomicU32 = AtomicU32::new(0);

#[crate::case(name = "once.pass", probability = 1.0)]
async fn passes() -> crate::Result {
    Ok(())
}

#[crate::case(name = "once.fail", probability = 1.0)]
async fn fails() -> crate::Result {
    crate::ensure!(1 + 1 == 3, "arithmetic changed");
    Ok(())
}

#[crate::case(name = "once.flaky", probability = 1.0)]
async fn flaky() -> crate::Result {
    let run = FLAKY_RUNS.fetch_add(1, Ordering::SeqCst);
    crate::ensure!(run > 0, "first run fails");
    Ok(())
}

#[crate::case(name = "once.args", probability = 1.0)]
async fn needs_args(side: String) -> crate::Result {
    crate::ensure!(!side.is_empty());
    Ok(())
}

#[crate::case(name = "once.faked", probability = 1.0, fake_request = fake_args)]
async fn faked(side: String) -> crate::Result {
    crate::ensure!(side == "sell", "side {side}");
    Ok(())
}

async fn fake_args(_request: FakeRequest) -> crate::Result {
    // A service would trigger it on the request's way; here the request does.
    faked.trigger("from-fake", "sell".to_owned()).await?;
    Ok(())
}

#[crate::case(name = "once.silent", probability = 1.0, fake_request = fake_nothing)]
async fn silent(side: String) -> crate::Result {
    let _ = side;
    Ok(())
}

async fn fake_nothing(_request: FakeRequest) -> crate::Result {
    Ok(())
}

fn config<C: Case>(case: C) -> CaseConfig {
    CaseConfig::from(case.descriptor())
}

async fn run(cases: Vec<CaseConfig>, settings: OnceSettings) -> Summary {
    let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::new());
    tokio::time::timeout(
        Duration::from_secs(30),
        OnceRun::new(transport, cases).settings(settings).run(),
    )
    .await
    .expect("the run ends")
    .expect("the run starts")
}

fn verdict(summary: &Summary, case: &str) -> Verdict {
    summary
        .cases
        .iter()
        .find(|c| c.case == case)
        .unwrap_or_else(|| panic!("no {case} in {summary:?}"))
        .verdict
}

#[tokio::test]
async fn verdicts_of_pass_fail_and_untriggerable_cases() {
    let summary = run(
        vec![
            config(passes),
            config(fails),
            config(needs_args),
            config(faked),
        ],
        OnceSettings {
            retries: 1,
            ..OnceSettings::default()
        },
    )
    .await;
    assert_eq!(verdict(&summary, "once.pass"), Verdict::Pass);
    assert_eq!(verdict(&summary, "once.fail"), Verdict::Fail);
    assert_eq!(verdict(&summary, "once.args"), Verdict::Skip);
    assert_eq!(verdict(&summary, "once.faked"), Verdict::Pass);
    let fail = summary
        .cases
        .iter()
        .find(|c| c.case == "once.fail")
        .unwrap();
    assert_eq!(fail.attempts.len(), 2, "a failure is retried");
    assert_eq!(fail.error(), Some("arithmetic changed"));
    assert!(fail.last().unwrap().traceback.is_some());
    let args = summary
        .cases
        .iter()
        .find(|c| c.case == "once.args")
        .unwrap();
    assert!(args.error().unwrap().contains("takes arguments (side)"));
    assert!(!summary.passed(false));
    let text = summary.render();
    assert!(text.contains("FAIL     once.fail"), "{text}");
    assert!(text.contains("arithmetic changed"), "{text}");
    assert!(text.contains("4 cases in "), "{text}");
    assert!(
        text.contains("2 passed, 0 flaky, 1 failed, 1 skipped"),
        "{text}"
    );
    let json = summary.to_json(false);
    assert_eq!(json["passed"], false);
    assert_eq!(json["totals"]["failed"], 1);
    assert_eq!(json["cases"][1]["attempts"][0]["report"]["state"], "FAIL");
}

#[tokio::test]
async fn flaky_passes_unless_asked_and_a_run_of_nothing_fails() {
    // The only test running `once.flaky`: its first run fails, the next pass.
    let summary = run(
        vec![config(passes), config(flaky)],
        OnceSettings {
            retries: 2,
            ..OnceSettings::default()
        },
    )
    .await;
    assert_eq!(verdict(&summary, "once.flaky"), Verdict::Flaky);
    assert!(summary.passed(false));
    assert!(!summary.passed(true));

    let summary = run(vec![config(needs_args)], OnceSettings::default()).await;
    assert!(!summary.passed(false), "nothing ran: {summary:?}");
}

#[tokio::test]
async fn a_fake_request_that_makes_no_test_times_out_within_the_run() {
    let summary = run(
        vec![config(silent)],
        OnceSettings {
            timeout: Duration::from_millis(300),
            ..OnceSettings::default()
        },
    )
    .await;
    assert_eq!(verdict(&summary, "once.silent"), Verdict::Timeout);
    let error = summary.cases[0].error().unwrap();
    assert!(
        error.contains("no test of once.silent arrived after its fake request"),
        "{error}"
    );
    assert!(summary.elapsed < Duration::from_secs(5));
}
