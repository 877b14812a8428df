//! The runner: executes one test of a case and turns its outcome into a [`TestReport`].
//!
//! Outcome → state: `Ok` → PASS; `ensure!`/`fail!` or an assertion panic → FAIL; a signal past
//! its deadline → TIMEOUT; any other error or panic → ERROR; an inactive case or an expired test
//! → SKIP. A panic is caught and reported; it never takes the worker down.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use chrono::Utc;
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
    pub(crate) http: Option<UrlClient>,
    realtime_logs: bool,
    logs: Mutex<Vec<String>>,
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
            lock(&self.logs).push(line.to_string());
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
pub(crate) async fn execute(
    case: &CaseConfig,
    test: TestExecution,
    store: Arc<SignalStore>,
    http: Option<UrlClient>,
) -> TestReport {
    let skip = if !case.options.active {
        Some("case is inactive")
    } else if test.is_expired_at(Utc::now()) {
        Some("test expired before it started")
    } else {
        None
    };
    if let Some(reason) = skip {
        tracing::info!(case = %case.name(), test = %test.id, "skipped: {reason}");
        return TestReport {
            case_name: case.name().to_owned(),
            state: State::Skip,
            test: Some(test),
            runtime: Some(0.0),
            signal_latency: BTreeMap::new(),
            error: Some(reason.to_owned()),
            traceback: None,
        };
    }

    install_panic_hook();
    let test = Arc::new(test);
    let execution = Arc::new(Execution {
        test: test.clone(),
        store,
        http,
        realtime_logs: case.options.realtime_logs,
        logs: Mutex::new(Vec::new()),
        signal_latency: Mutex::new(BTreeMap::new()),
        panic: Mutex::new(None),
    });
    let span = tracing::info_span!("test", case = %case.name(), test = %test.id);
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
    )
    .await;
    let runtime = started.elapsed();

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
    flush_logs(&execution, state, &span);

    let signal_latency = std::mem::take(&mut *lock(&execution.signal_latency));
    TestReport {
        case_name: case.name().to_owned(),
        state,
        test: Some(Arc::unwrap_or_clone(test)),
        runtime: Some(runtime.as_secs_f64()),
        signal_latency,
        error,
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
    let lines = std::mem::take(&mut *lock(&execution.logs));
    if lines.is_empty() {
        return;
    }
    let block = lines.join("\n    ");
    let _entered = span.enter();
    // A failure's story is worth a warning; a pass's is there for whoever turns on debug.
    if state.is_failure() {
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
