//! The current test and the current execution, as tokio task-locals.
//!
//! Faust keeps these in a context-var stack; here they are task-locals set by the runner (while a
//! case runs), by [`with_test`] (in a service handling a test's request) and by
//! [`Client::scope`](crate::Client::scope). Task-locals do not flow into `tokio::spawn`ed tasks by
//! themselves: use [`spawn`] or [`propagate`] to carry them.

use std::future::Future;
use std::sync::Arc;

use crate::service::execution::Execution;
use crate::transport::Transport;
use crate::wire::model::TestExecution;
use crate::wire::trace::TraceParent;

#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) test: Arc<TestExecution>,
    pub(crate) execution: Option<Arc<Execution>>,
}

tokio::task_local! {
    static SCOPE: Scope;
    /// The client's transport in effect ([`Client::scope`](crate::Client::scope)).
    pub(crate) static CLIENT: Arc<dyn Transport>;
}

/// The test this task is working for, if any: inside a running case, inside [`with_test`], or
/// inside a handler that read the test from an incoming message or request.
pub fn current_test() -> Option<Arc<TestExecution>> {
    SCOPE.try_with(|scope| scope.test.clone()).ok()
}

pub(crate) fn current_execution() -> Option<Arc<Execution>> {
    SCOPE
        .try_with(|scope| scope.execution.clone())
        .ok()
        .flatten()
}

/// `fut` with `scope` as the current test. A plain fn, not an `async fn`: that would keep its
/// arguments beside the task-local future, in every waiting test (docs/benchmarks.md).
pub(crate) fn in_scope<F: Future>(
    scope: Scope,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Scope, F> {
    SCOPE.scope(scope, fut)
}

/// Runs `fut` with `test` as the current test, so signals sent and messages or requests made in
/// it are keyed by that test.
///
/// # Examples
/// ```no_run
/// # async fn handle(test: livecheck::TestExecution) {
/// livecheck::with_test(test, async {
///     // ORDER_SENT_TO_DB.send(&order).await?  -- keyed by `test.id`
/// })
/// .await;
/// # }
/// ```
pub async fn with_test<F: Future>(test: impl Into<Arc<TestExecution>>, fut: F) -> F::Output {
    let scope = Scope {
        test: test.into(),
        execution: None,
    };
    in_scope(scope, fut).await
}

/// Wraps `fut` so that it runs with the current test and client of the calling task, wherever
/// it is polled (e.g. in a task of its own).
pub fn propagate<F>(fut: F) -> impl Future<Output = F::Output> + Send
where
    F: Future + Send,
{
    let scope = SCOPE.try_with(Clone::clone).ok();
    let client = CLIENT.try_with(Clone::clone).ok();
    async move {
        match (scope, client) {
            (Some(scope), Some(client)) => CLIENT.scope(client, SCOPE.scope(scope, fut)).await,
            (Some(scope), None) => SCOPE.scope(scope, fut).await,
            (None, Some(client)) => CLIENT.scope(client, fut).await,
            (None, None) => fut.await,
        }
    }
}

/// `tokio::spawn` that carries the current test and client into the new task.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(propagate(fut))
}

tokio::task_local! {
    static AMBIENT: (TraceParent, Option<Box<str>>);
}

/// Runs `fut` inside the trace of `parent` (and `state`): a test triggered in it joins that
/// trace ([`crate::trace`]). [`TestContextLayer`](crate::propagation::http::TestContextLayer) does this for every request that
/// carries a `traceparent`; call it yourself where a request's trace reaches you otherwise.
pub async fn with_trace<F: Future>(
    parent: TraceParent,
    state: Option<Box<str>>,
    fut: F,
) -> F::Output {
    AMBIENT.scope((parent, state), fut).await
}

/// The trace a test triggered now would join: the current test's, else the request's being
/// handled ([`with_trace`]), else none.
pub(crate) fn ambient_trace() -> Option<(TraceParent, Option<Box<str>>)> {
    if let Some(test) = current_test() {
        if let Some(parent) = test.traceparent {
            return Some((parent, test.tracestate.clone()));
        }
    }
    AMBIENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(id: &str) -> TestExecution {
        let now = chrono::Utc::now();
        TestExecution::new(id, "c", now, now + chrono::Duration::hours(1))
    }

    #[tokio::test]
    async fn current_test_is_scoped_and_spawn_carries_it() {
        assert!(current_test().is_none());
        with_test(test("t1"), async {
            assert_eq!(current_test().unwrap().id, "t1");
            let inner = spawn(async { current_test().map(|t| t.id.clone()) });
            assert_eq!(inner.await.unwrap().as_deref(), Some("t1"));
            let plain = tokio::spawn(async { current_test().is_some() });
            assert!(
                !plain.await.unwrap(),
                "plain tokio::spawn does not carry the test"
            );
        })
        .await;
        assert!(current_test().is_none());
    }

    #[tokio::test]
    async fn with_trace_is_what_a_trigger_joins() {
        assert!(ambient_trace().is_none());
        let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap();
        let seen = with_trace(parent, None, async { ambient_trace() }).await;
        assert_eq!(seen.map(|(p, _)| p), Some(parent));
    }
}
