//! [`CaseHooks`] behind a pointer, as a case's descriptor keeps them, and the firing of a hook
//! (a panic in it logged, never passed on). `#[case(hooks = H)]` reaches [`instance`] and
//! [`ErasedHooks`] through `livecheck::__private`; no public API.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::OnceLock;

use futures::FutureExt;

use crate::service::hooks::CaseHooks;
use crate::wire::model::{State, TestExecution, TestReport};

type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a hook is called for.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum HookEvent<'a> {
    /// `on_test_start`.
    Start(&'a TestExecution),
    /// The `on_test_*` hook of a test report's state.
    Outcome(&'a TestReport),
    /// `on_suite_fail`.
    SuiteFail(&'a TestReport),
    /// `post_report`.
    Published(&'a TestReport),
}

impl HookEvent<'_> {
    /// The hook's name.
    pub(crate) fn hook(&self) -> &'static str {
        match self {
            HookEvent::Start(_) => "on_test_start",
            HookEvent::Outcome(report) => match report.state {
                State::Pass => "on_test_pass",
                State::Fail => "on_test_failed",
                State::Error => "on_test_error",
                State::Timeout => "on_test_timeout",
                State::Skip => "on_test_skipped",
                State::Init | State::Stall => "none",
            },
            HookEvent::SuiteFail(_) => "on_suite_fail",
            HookEvent::Published(_) => "post_report",
        }
    }
}

/// [`CaseHooks`] behind a pointer: what a case's descriptor keeps.
#[doc(hidden)]
pub trait ErasedHooks: Send + Sync + 'static {
    /// Calls the hook for `event`.
    fn fire<'a>(&'a self, event: HookEvent<'a>) -> BoxFuture<'a>;
}

impl<H: CaseHooks> ErasedHooks for H {
    fn fire<'a>(&'a self, event: HookEvent<'a>) -> BoxFuture<'a> {
        match event {
            HookEvent::Start(test) => Box::pin(self.on_test_start(test)),
            HookEvent::Outcome(report) => match report.state {
                State::Pass => Box::pin(self.on_test_pass(report)),
                State::Fail => Box::pin(self.on_test_failed(report)),
                State::Error => Box::pin(self.on_test_error(report)),
                State::Timeout => Box::pin(self.on_test_timeout(report)),
                State::Skip => Box::pin(self.on_test_skipped(report)),
                State::Init | State::Stall => Box::pin(async {}),
            },
            HookEvent::SuiteFail(report) => Box::pin(self.on_suite_fail(report)),
            HookEvent::Published(report) => Box::pin(self.post_report(report)),
        }
    }
}

/// The hooks instance of a case (what `hooks = H` expands to): one per process, made on first
/// use.
#[doc(hidden)]
pub fn instance<H: CaseHooks + Default>(cell: &'static OnceLock<H>) -> &'static dyn ErasedHooks {
    cell.get_or_init(H::default)
}

/// Calls a hook; a panic in it is logged, never passed on.
pub(crate) async fn fire(hooks: &dyn ErasedHooks, case: &str, event: HookEvent<'_>) {
    if let Err(panic) = AssertUnwindSafe(hooks.fire(event)).catch_unwind().await {
        let message = crate::wire::error::panic_message(&*panic);
        tracing::error!(
            case,
            hook = event.hook(),
            "a hook of the case panicked: {}",
            crate::text::Escaped(&message)
        );
    }
}

/// After a report of `case` was published: `on_suite_fail` for a suite FAIL or STALL, then
/// `post_report`. The worker calls this for every report it publishes, test or suite.
#[cfg_attr(not(feature = "worker"), allow(dead_code))]
pub(crate) async fn report_published(
    hooks: Option<fn() -> &'static dyn ErasedHooks>,
    report: &TestReport,
) {
    let Some(hooks) = hooks else {
        return;
    };
    let hooks = hooks();
    let name = report.case_name.as_str();
    if report.is_suite() && matches!(report.state, State::Fail | State::Stall) {
        fire(hooks, name, HookEvent::SuiteFail(report)).await;
    }
    fire(hooks, name, HookEvent::Published(report)).await;
}
