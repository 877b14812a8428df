//! [`Observer`]: what a worker shows of its work to code of the process (metrics, alerts, tests).

use crate::wire::model::{TestExecution, TestReport};

/// Sees what a worker does: every test start and every report, test or suite.
///
/// Called synchronously on the worker's tasks: keep it quick (count, push to a channel).
pub trait Observer: Send + Sync + 'static {
    /// A test is about to run.
    fn on_test_start(&self, _test: &TestExecution) {}
    /// A report was produced (a test's, or a suite report with `test: None`).
    fn on_report(&self, _report: &TestReport) {}
}
