//! The runner: executes one test of a case and turns its outcome into a [`TestReport`].
//!
//! Outcome → state: `Ok` → PASS; `ensure!`/`fail!` or an assertion panic → FAIL; a signal past
//! its deadline → TIMEOUT; any other error or panic → ERROR; an inactive case or an expired test
//! → SKIP. A panic is caught and reported; it never takes the worker down.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use chrono::Utc;
use futures::future::Either;
use futures::FutureExt;
use tokio::time::Instant;

use crate::case::CaseConfig;
use crate::context::{current_execution, in_scope, Scope};
use crate::error::CaseError;
use crate::http::UrlClient;
use crate::model::{State, TestExecution, TestReport};
use crate::store::SignalStore;

/// A running test: what `Signal::wait` and `livecheck::log!` reach through the task-local.
pub(crate) struct Execution {
    pub(crate) test: Arc<TestExecution>,
    pub(crate) store: Arc<SignalStore>,
    /// The case's helpers, shared by its tests (a copy was ~0.2 KB a test).
    pub(crate) http: Option<Arc<UrlClient>>,
    realtime_logs: bool,
    /// The buffered lines, joined as `flush_logs` writes them: one buffer a test rather than a
    /// `String` a line plus a `Vec` (docs/benchmarks.md).
    logs: Mutex<String>,
    signal_latency: Mutex<BTreeMap<String, f64>>,
    panic: Mutex<Option<String>>,
}

impl Execution {
    pub(crate) fn time_to_expiry(&self) -> Duration {
        (self.test.expires - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// Logs a line of this test: now (realtime_logs) or in the block written at its end.
    pub(crate) fn log(&self, line: fmt::Arguments<'_>) {
        if self.realtime_logs {
            tracing::info!(case = %self.test.case_name, test = %self.test.id, "{line}");
        } else {
            let mut logs = lock(&self.logs);
            if !logs.is_empty() {
                logs.push_str("\n    ");
            }
            let _ = fmt::Write::write_fmt(&mut *logs, line);
        }
    }

    pub(crate) fn record_signal(&self, signal: &str, latency: Duration) {
        self.log(format_args!(
            "signal {signal} received after {}",
            crate::duration::humanize(latency)
        ));
        lock(&self.signal_latency).insert(signal.to_owned(), latency.as_secs_f64());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes a line to the current test's log (buffered unless the case has `realtime_logs`);
/// outside a test, an ordinary `tracing` info event.
pub fn log(line: fmt::Arguments<'_>) {
    match current_execution() {
        Some(execution) => execution.log(line),
        None => tracing::info!("{line}"),
    }
}

/// Runs `test` of `case` to its report.
///
/// Memory: a waiting test holds the returned future, so it is built as combinators over the
/// case's future and keeps only what the report needs (Arcs, the span, the start time). As an
/// `async fn` it also kept its arguments (the test, the HTTP helpers, ~0.45 KB), moved into the
/// execution by then (docs/benchmarks.md).
pub(crate) fn execute(
    case: &CaseConfig,
    test: TestExecution,
    store: Arc<SignalStore>,
    http: Option<Arc<UrlClient>>,
) -> impl Future<Output = TestReport> + Send + 'static {
    let name = case.name();
    let skip = if !case.options.active {
        Some("case is inactive")
    } else if test.is_expired_at(Utc::now()) {
        Some("test expired before it started")
    } else {
        None
    };
    if let Some(reason) = skip {
        tracing::info!(case = %name, test = %test.id, "skipped: {reason}");
        // Boxed: inline, this rare report would size every running test's future.
        let report = Box::new(TestReport {
            case_name: name.to_owned(),
            state: State::Skip,
            test: Some(test),
            runtime: Some(0.0),
            signal_latency: BTreeMap::new(),
            error: Some(reason.to_owned()),
            traceback: None,
            attempt: 1,
        });
        return Either::Left(futures::future::lazy(move |_| *report));
    }

    install_panic_hook();
    let test = Arc::new(test);
    let execution = Arc::new(Execution {
        test: test.clone(),
        store,
        http,
        realtime_logs: case.options.realtime_logs,
        logs: Mutex::new(String::new()),
        signal_latency: Mutex::new(BTreeMap::new()),
        panic: Mutex::new(None),
    });
    // DEBUG, like tower-http's request spans: this span lives as long as its test, and under
    // the `fmt` subscriber each costs ~0.5 KB (slab slot, extensions, formatted fields), a
    // quarter of a waiting test's memory (docs/benchmarks.md). The test's log block still
    // gets a `test` span (`flush_logs`); `RUST_LOG=livecheck::runner=debug` puts the events of
    // a case's own code in this one.
    let span = tracing::debug_span!("test", case = %name, test = %test.id);
    let started = Instant::now();
    execution.log(format_args!("started"));
    let future = (case.descriptor.run)(&test);
    let scope = Scope {
        test: test.clone(),
        execution: Some(execution.clone()),
    };
    let outcome = tracing::Instrument::instrument(
        in_scope(scope, AssertUnwindSafe(future).catch_unwind()),
        span.clone(),
    );
    Either::Right(
        outcome
            .map(move |outcome| report(name, test, &execution, &span, started.elapsed(), outcome)),
    )
}

/// The report of a test that ran for `runtime` with this `outcome`.
fn report(
    name: &'static str,
    test: Arc<TestExecution>,
    execution: &Execution,
    span: &tracing::Span,
    runtime: Duration,
    outcome: std::result::Result<crate::Result, Box<dyn std::any::Any + Send>>,
) -> TestReport {
    let (state, error, traceback) = match outcome {
        Ok(Ok(())) => (State::Pass, None, None),
        Ok(Err(error)) => classify(error),
        Err(payload) => {
            let message = panic_message(&*payload);
            let state = if message.starts_with("assertion") {
                State::Fail
            } else {
                State::Error
            };
            let traceback = lock(&execution.panic).take();
            (state, Some(format!("panicked: {message}")), traceback)
        }
    };
    execution.log(format_args!(
        "{state} after {}{}",
        crate::duration::humanize(runtime),
        error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    ));
    flush_logs(execution, state, span);

    let signal_latency = std::mem::take(&mut *lock(&execution.signal_latency));
    TestReport {
        case_name: name.to_owned(),
        state,
        test: Some(Arc::unwrap_or_clone(test)),
        runtime: Some(runtime.as_secs_f64()),
        signal_latency,
        error,
        attempt: 1,
        traceback,
    }
}

fn classify(error: CaseError) -> (State, Option<String>, Option<String>) {
    let text = error.to_string();
    match error {
        CaseError::Failed { location, .. } => (
            State::Fail,
            Some(text),
            location.map(|l| format!("at {}:{}:{}", l.file(), l.line(), l.column())),
        ),
        CaseError::Timeout { .. } => (State::Timeout, Some(text), None),
        CaseError::Error(_) => (State::Error, Some(text), None),
    }
}

fn flush_logs(execution: &Execution, state: State, span: &tracing::Span) {
    let block = std::mem::take(&mut *lock(&execution.logs));
    if block.is_empty() {
        return;
    }
    // A failure's story is worth a warning; a pass's is there for whoever turns on debug.
    let failed = state.is_failure();
    if !failed && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    // The run's span when it is enabled, else one just for this block (see `execute`).
    let span = if span.is_disabled() {
        let test = &execution.test;
        tracing::info_span!("test", case = %test.case_name, test = %test.id)
    } else {
        span.clone()
    };
    let _entered = span.enter();
    if failed {
        tracing::warn!("test log:\n    {block}");
    } else {
        tracing::debug!("test log:\n    {block}");
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Inside a test, a panic's location (and backtrace, if enabled) goes into its report instead of
/// stderr; elsewhere the previous hook runs as before.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match current_execution() {
            Some(execution) => {
                let location = info
                    .location()
                    .map(|l| format!("at {}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                let backtrace = std::backtrace::Backtrace::capture();
                let trace = match backtrace.status() {
                    std::backtrace::BacktraceStatus::Captured => {
                        format!("{location}\n{backtrace}")
                    }
                    _ => location,
                };
                *lock(&execution.panic) = Some(trace);
            }
            None => previous(info),
        }));
    });
}
