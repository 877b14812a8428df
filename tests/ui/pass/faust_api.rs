//! Faust's case API in its Rust shape, under `#![deny(missing_docs)]`: hooks (some methods
//! only, async and with nothing to await), `max_runtime`, `log_passes`, generated ids, the
//! scoped `maybe_trigger`, livecheck's assertions in and out of the body, and `skip!`.
#![deny(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use livecheck::Case;

/// Counts what happens to `checked`.
#[derive(Default)]
pub struct Counts {
    failures: AtomicU64,
}

impl livecheck::CaseHooks for Counts {
    async fn on_test_failed(&self, _report: &livecheck::TestReport) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    async fn on_suite_fail(&self, report: &livecheck::TestReport) {
        tokio::task::yield_now().await;
        let _ = report.error.as_deref();
    }
}

/// A helper outside the body uses livecheck's assertions by path.
pub fn check_side(side: &str) {
    livecheck::assertions::assert!(side == "buy" || side == "sell", "bad side {side}");
    livecheck::assertions::assert_ne!(side, "");
    livecheck::assertions::debug_assert_eq!(side.trim(), side);
}

/// An order's side is kept.
#[livecheck::case(hooks = Counts, max_runtime = "2m", log_passes = false, test_expires = "10m")]
pub async fn checked(side: String, scope: u32, id: u32) -> livecheck::Result {
    if scope == 0 {
        livecheck::skip!("nothing to check for {id}");
    }
    check_side(&side);
    assert!(scope > 0);
    assert_eq!(scope, scope, "{id}");
    std::assert_ne!(scope, 0);
    debug_assert!(id < u32::MAX);
    let seen = SEEN.wait().timeout("30s").await?;
    livecheck::ensure!(seen == side, "side changed to {seen}");
    Ok(())
}

livecheck::signal! {
    /// The service saw the order.
    pub SEEN: String for checked;
}

/// What a service does: trigger with a generated id, and handle a request in the test's scope.
pub async fn handle(side: String) -> Result<u32, livecheck::TriggerError> {
    let _test: livecheck::TestExecution = checked.trigger(livecheck::AutoId, side.clone(), 1, 2).await?;
    let _maybe = checked.maybe_trigger(uuid_like(), side.clone(), 1, 2).await?;
    checked
        .maybe_trigger_scope(livecheck::AutoId, side.clone(), 1, 2, |test| async move {
            let _ = SEEN.send(&side).await;
            test.map_or(0, |test| test.id.len() as u32)
        })
        .await
}

fn uuid_like() -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed("order-1")
}

fn main() {
    let case = checked.descriptor();
    assert!(case.hooks.is_some());
    assert_eq!(case.options.max_runtime, Some(Duration::from_secs(120)));
    assert_eq!(case.options.max_runtime(), Duration::from_secs(120));
    assert!(!case.options.log_passes);
    assert_eq!(case.params, ["side", "scope", "id"]);
    let defaults = livecheck::CaseOptions::DEFAULT;
    assert_eq!(defaults.max_runtime, None);
    assert_eq!(defaults.max_runtime(), Duration::from_secs(3600));
    assert!(defaults.log_passes);
}
