//! Per-case hooks: Faust's `Case.on_test_*`, `on_suite_fail` and `post_report`, in a Rust shape.
//!
//! A Faust case overrides methods of its `Case` subclass; a livecheck case names a type that
//! implements [`CaseHooks`] with `#[livecheck::case(hooks = MyHooks)]`. Every method has a
//! default that does nothing, so a type implements only the hooks it needs. When each fires,
//! after faust/livecheck/runners.py and case.py:
//!
//! | hook | fires | with |
//! |---|---|---|
//! | `on_test_start` | a test is about to run (not for a test that is skipped before it starts: runners.py:71-77) | the test |
//! | `on_test_skipped` | a test is skipped: case inactive, test expired, or [`skip!`](crate::skip!) (runners.py:82-84, 100-108, 124-130) | its SKIP report |
//! | `on_test_failed` | an assertion, `ensure!` or `fail!` failed (runners.py:88-90, 160-167) | its FAIL report |
//! | `on_test_error` | the case returned another error or panicked (runners.py:91-96, 169-176) | its ERROR report |
//! | `on_test_timeout` | a signal did not arrive in time, or the test ran past `max_runtime` (runners.py:85-87, 178-185) | its TIMEOUT report |
//! | `on_test_pass` | the case returned `Ok` (runners.py:187-200) | its PASS report |
//! | `on_suite_fail` | the case as a whole failed: a suite FAIL or STALL report was published (case.py `on_suite_fail`) | the suite report |
//! | `post_report` | after every report of the case was published, test or suite (case.py `post_report`) | the report |
//!
//! The `on_test_*` hooks fire before the report is published, as in Faust (the report is
//! finalized after the hook, runners.py:166-167). Hooks run on the worker's tasks, one after the
//! other: keep them short, and spawn long work. A hook that panics is logged and ignored.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! /// Counts the failures of `test_order` and pages someone on the suite failing.
//! #[derive(Default)]
//! struct OrderHooks {
//!     failures: AtomicU64,
//! }
//!
//! impl livecheck::CaseHooks for OrderHooks {
//!     async fn on_test_failed(&self, report: &livecheck::TestReport) {
//!         self.failures.fetch_add(1, Ordering::Relaxed);
//!     }
//!
//!     async fn on_suite_fail(&self, report: &livecheck::TestReport) {
//!         // page_someone(report.error.as_deref()).await;
//!     }
//! }
//!
//! #[livecheck::case(hooks = OrderHooks)]
//! async fn test_order() -> livecheck::Result {
//!     Ok(())
//! }
//! # fn main() {}
//! ```

use std::future::Future;

use crate::wire::model::{TestExecution, TestReport};

pub(crate) mod erased;

/// Hooks of a case, named by `#[livecheck::case(hooks = Type)]`; the type must also implement
/// `Default` (the worker makes one instance per process, on first use).
///
/// Implement the methods with `async fn`; a hook with nothing to await is an `async fn` all the
/// same. See the [module docs](self) for when each fires.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `livecheck::CaseHooks`",
    label = "not case hooks",
    note = "`hooks = Type` names a type that implements `livecheck::CaseHooks` and `Default`"
)]
pub trait CaseHooks: Send + Sync + 'static {
    /// A test is about to run (after the checks that could skip it).
    fn on_test_start(&self, test: &TestExecution) -> impl Future<Output = ()> + Send {
        let _ = test;
        async {}
    }

    /// A test was skipped (case inactive, test expired, or the case called `skip!`).
    fn on_test_skipped(&self, report: &TestReport) -> impl Future<Output = ()> + Send {
        let _ = report;
        async {}
    }

    /// A contract failed: an assertion, `ensure!` or `fail!` (state FAIL).
    fn on_test_failed(&self, report: &TestReport) -> impl Future<Output = ()> + Send {
        let _ = report;
        async {}
    }

    /// The case returned another error, or panicked (state ERROR).
    fn on_test_error(&self, report: &TestReport) -> impl Future<Output = ()> + Send {
        let _ = report;
        async {}
    }

    /// A signal did not arrive in time, or the test ran past `max_runtime` (state TIMEOUT).
    fn on_test_timeout(&self, report: &TestReport) -> impl Future<Output = ()> + Send {
        let _ = report;
        async {}
    }

    /// The test passed.
    fn on_test_pass(&self, report: &TestReport) -> impl Future<Output = ()> + Send {
        let _ = report;
        async {}
    }

    /// The case as a whole failed: a suite report (`test: None`) with state FAIL or STALL.
    fn on_suite_fail(&self, report: &TestReport) -> impl Future<Output = ()> + Send {
        let _ = report;
        async {}
    }

    /// A report of the case, test or suite, was published.
    fn post_report(&self, report: &TestReport) -> impl Future<Output = ()> + Send {
        let _ = report;
        async {}
    }
}
