//! The runner: executes one test of a case and turns its outcome into a [`TestReport`].
//!
//! Outcome → state, by the kind of the outcome, never by its text (Faust, runners.py:78-98,
//! tells an `AssertionError` from any other exception the same way):
//!
//! - `Ok` → PASS;
//! - a failed assertion → FAIL: `ensure!`/`fail!` (a [`CaseError::Failed`]), and livecheck's
//!   `assert!`/`assert_eq!`/`assert_ne!`, which panic with an [`AssertionFailed`] payload
//!   (`#[case]` rewrites the std assertion macros in a case's body to them);
//! - a signal past its deadline, or a test past its case's `max_runtime` → TIMEOUT;
//! - `skip!` ([`CaseError::Skipped`]), an inactive case or an expired test → SKIP;
//! - any other error or panic → ERROR, whatever its text.
//!
//! A panic is caught and reported; it never takes the worker down.

// Only the worker drives the runner; a service build keeps its `Execution` for `Signal::wait`
// in the cases it compiles, and nothing else of it is reached there.
#![cfg_attr(not(feature = "worker"), allow(dead_code))]

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use chrono::Utc;
use futures::future::Either;
use futures::FutureExt;
use tokio::time::Instant;

use crate::lock::lock;
use crate::service::case::CaseConfig;
use crate::service::context::{current_execution, in_scope, Scope};
use crate::service::execution::Execution;
use crate::service::hooks::erased::{fire, HookEvent};
#[cfg(feature = "http")]
use crate::service::http::UrlClient;
use crate::service::store::SignalStore;
use crate::text::Escaped;
use crate::wire::duration::humanize;
use crate::wire::error::{panic_message, AssertionFailed, CaseError};
use crate::wire::model::{State, TestExecution, TestReport};

/// Writes a line to the current test's log (buffered unless the case has `realtime_logs`);
/// outside a test, an ordinary `tracing` info event.
///
/// One call, one line: its control characters are escaped (`\n`, `\u{1b}`), as a case's line
/// often shows its arguments, and they come from the test's record (anyone may write one). A
/// line cannot add lines to the test's log block, nor forge a log line of its own.
pub fn log(line: fmt::Arguments<'_>) {
    let line = crate::text::EscapedArgs(line);
    match current_execution() {
        Some(execution) => execution.log(format_args!("{line}")),
        None => tracing::info!("{line}"),
    }
}

/// Why `test` of `case` is skipped before it starts, if it is: the case is inactive, or the
/// test expired (Faust, runners.py:71-74). Decided once, by the worker, so that a skipped test
/// is not announced as started.
pub(crate) fn skip_reason(case: &CaseConfig, test: &TestExecution) -> Option<&'static str> {
    if !case.options.active {
        Some("case is inactive")
    } else if test.is_expired_at(Utc::now()) {
        Some("test expired before it started")
    } else {
        None
    }
}

/// A report of a test of `case`: the one place test reports are made.
fn new_report(
    case: &str,
    state: State,
    test: TestExecution,
    runtime: Duration,
    signal_latency: BTreeMap<String, f64>,
    error: Option<String>,
    traceback: Option<String>,
) -> TestReport {
    TestReport {
        case_name: case.to_owned(),
        state,
        trace_id: test.traceparent.map(|parent| parent.trace_id()),
        test: Some(test),
        runtime: Some(runtime.as_secs_f64()),
        signal_latency,
        error,
        traceback,
        attempt: 1,
        timed_out_signal: None,
    }
}

/// Runs `test` of `case` to its report, unless `skip` says why it is skipped.
///
/// Memory: a waiting test holds the returned future, so it is built as combinators over the
/// case's future and keeps only what the report needs (Arcs, the span, the start time). As an
/// `async fn` it also kept its arguments (the test, the HTTP helpers, ~0.45 KB), moved into the
/// execution by then (docs/benchmarks.md). A case with hooks, and a skipped test, take a boxed
/// path instead.
pub(crate) fn execute(
    case: &CaseConfig,
    test: TestExecution,
    skip: Option<&'static str>,
    store: Arc<SignalStore>,
    #[cfg(feature = "http")] http: Option<Arc<UrlClient>>,
) -> Either<
    impl Future<Output = TestReport> + Send + 'static,
    Pin<Box<dyn Future<Output = TestReport> + Send + 'static>>,
> {
    let name = case.name();
    let hooks = case.descriptor.hooks.map(|hooks| hooks());
    if let Some(reason) = skip {
        tracing::info!(case = %name, test = %Escaped(&test.id), "skipped: {reason}");
        let report = new_report(
            name,
            State::Skip,
            test,
            Duration::ZERO,
            BTreeMap::new(),
            Some(reason.to_owned()),
            None,
        );
        return Either::Right(Box::pin(async move {
            if let Some(hooks) = hooks {
                fire(hooks, name, HookEvent::Outcome(&report)).await;
            }
            report
        }));
    }

    install_panic_hook();
    let test = Arc::new(test);
    let started = Instant::now();
    let max_runtime = case.options.max_runtime();
    let stop_at = started.checked_add(max_runtime).unwrap_or_else(far_future);
    let execution = Arc::new(Execution {
        test: test.clone(),
        store,
        #[cfg(feature = "http")]
        http: http.map(|http| http as Arc<dyn Any + Send + Sync>),
        realtime_logs: case.options.realtime_logs,
        logs: Mutex::new(String::new()),
        signal_latency: Mutex::new(BTreeMap::new()),
        panic: Mutex::new(None),
        waiting: Mutex::new(None),
        stop_at,
    });
    // DEBUG, like tower-http's request spans: this span lives as long as its test, and under
    // the `fmt` subscriber each costs ~0.5 KB (slab slot, extensions, formatted fields), a
    // quarter of a waiting test's memory (docs/benchmarks.md). The test's log block still
    // gets a `test` span (`flush_logs`); `RUST_LOG=livecheck::runner=debug` puts the events of
    // a case's own code in this one.
    let span = tracing::debug_span!(
        "test",
        case = %name,
        test = %Escaped(&test.id),
        trace_id = tracing::field::Empty
    );
    if let Some(parent) = test.traceparent {
        span.record("trace_id", tracing::field::display(parent.trace_id()));
    }
    execution.log(format_args!("started"));
    let future = (case.descriptor.run)(&test);
    let scope = Scope {
        test: test.clone(),
        execution: Some(execution.clone()),
    };
    // The case's `max_runtime` (a hung test would hold its slot for ever): past it the
    // case's future is dropped and the test reported TIMEOUT, so its slot frees and its
    // report gets out (and the test is acknowledged, so it does not come back on a restart).
    let outcome = tokio::time::timeout_at(
        stop_at,
        tracing::Instrument::instrument(
            in_scope(scope, AssertUnwindSafe(future).catch_unwind()),
            span.clone(),
        ),
    );
    let log_passes = case.options.log_passes;
    // For `on_test_start`; dropped before the report takes the test back out of its Arc.
    let started_test = hooks.map(|_| test.clone());
    let run = outcome.map(move |outcome| {
        let outcome = match outcome {
            Ok(Ok(result)) => Outcome::Returned(result),
            Ok(Err(panic)) => Outcome::Panicked(panic),
            Err(_) => Outcome::OverMaxRuntime(max_runtime),
        };
        let runtime = started.elapsed();
        report(name, test, &execution, &span, runtime, outcome, log_passes)
    });
    match hooks {
        None => Either::Left(run),
        Some(hooks) => Either::Right(Box::pin(async move {
            // Faust calls `on_test_start` once the test is past its skip checks, before the
            // case runs (runners.py:77, 132-139), and the outcome's hook before the report
            // is posted (runners.py:160-200).
            if let Some(test) = started_test {
                fire(hooks, name, HookEvent::Start(&test)).await;
            }
            let report = run.await;
            fire(hooks, name, HookEvent::Outcome(&report)).await;
            report
        })),
    }
}

/// How a run ended.
enum Outcome {
    Returned(crate::Result),
    Panicked(Box<dyn Any + Send>),
    OverMaxRuntime(Duration),
}

fn far_future() -> Instant {
    // What tokio itself uses for "never" (about 30 years).
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// The report of a test that ran for `runtime` with this `outcome`.
fn report(
    name: &'static str,
    test: Arc<TestExecution>,
    execution: &Execution,
    span: &tracing::Span,
    runtime: Duration,
    outcome: Outcome,
    log_passes: bool,
) -> TestReport {
    let mut timed_out_signal = None;
    let (state, error, traceback) = match outcome {
        Outcome::Returned(Ok(())) => (State::Pass, None, None),
        Outcome::Returned(Err(error)) => {
            if let CaseError::Timeout { signal, .. } = &error {
                timed_out_signal = Some(signal.clone());
            }
            classify(error)
        }
        Outcome::Panicked(payload) => {
            let traceback = lock(&execution.panic).take();
            match payload.downcast::<AssertionFailed>() {
                Ok(failed) => {
                    let at = failed.location();
                    let traceback = traceback.unwrap_or_else(|| {
                        format!("at {}:{}:{}", at.file(), at.line(), at.column())
                    });
                    (State::Fail, Some(failed.into_message()), Some(traceback))
                }
                Err(payload) => (
                    State::Error,
                    Some(format!("panicked: {}", panic_message(&*payload))),
                    traceback,
                ),
            }
        }
        Outcome::OverMaxRuntime(max_runtime) => {
            let waiting = *lock(&execution.waiting);
            timed_out_signal = waiting.map(|(signal, _)| signal.to_owned());
            let doing = match waiting {
                Some((signal, at)) => format!(
                    "stopped while waiting for signal {signal}, at {}:{}:{}",
                    at.file(),
                    at.line(),
                    at.column()
                ),
                None => "stopped while not waiting for a signal: the case's own code was \
                         running (an await with no timeout?)"
                    .to_owned(),
            };
            (
                State::Timeout,
                Some(format!(
                    "test ran longer than its max_runtime of {}",
                    humanize(max_runtime)
                )),
                Some(doing),
            )
        }
    };
    // The error may hold a record's text (an id, a service's answer): escaped, it stays on
    // this line of the block.
    execution.log(format_args!(
        "{state} after {}{}",
        humanize(runtime),
        error
            .as_deref()
            .map(|e| format!(": {}", Escaped(e)))
            .unwrap_or_default()
    ));
    flush_logs(execution, state, span, log_passes);

    let signal_latency = std::mem::take(&mut *lock(&execution.signal_latency));
    let mut report = new_report(
        name,
        state,
        Arc::unwrap_or_clone(test),
        runtime,
        signal_latency,
        error,
        traceback,
    );
    report.timed_out_signal = timed_out_signal;
    report
}

fn classify(error: CaseError) -> (State, Option<String>, Option<String>) {
    let state = match &error {
        CaseError::Failed { .. } => State::Fail,
        CaseError::Timeout { .. } => State::Timeout,
        CaseError::Skipped { .. } => State::Skip,
        CaseError::Error { .. } => State::Error,
    };
    (state, Some(error.to_string()), error.traceback())
}

fn flush_logs(execution: &Execution, state: State, span: &tracing::Span, log_passes: bool) {
    let block = std::mem::take(&mut *lock(&execution.logs));
    if block.is_empty() {
        return;
    }
    // A failure's story is worth a warning. A pass's is written at INFO as Faust does
    // (runners.py:197-198, 230-241), or at DEBUG for a case with `log_passes = false`.
    let level = if state.is_failure() {
        tracing::Level::WARN
    } else if log_passes {
        tracing::Level::INFO
    } else {
        tracing::Level::DEBUG
    };
    let enabled = match level {
        tracing::Level::WARN => tracing::enabled!(tracing::Level::WARN),
        tracing::Level::INFO => tracing::enabled!(tracing::Level::INFO),
        _ => tracing::enabled!(tracing::Level::DEBUG),
    };
    if !enabled {
        return;
    }
    // The run's span when it is enabled, else one just for this block (see `execute`).
    let span = if span.is_disabled() {
        let test = &execution.test;
        tracing::info_span!(
            "test",
            case = %Escaped(&test.case_name),
            test = %Escaped(&test.id)
        )
    } else {
        span.clone()
    };
    let _entered = span.enter();
    match level {
        tracing::Level::WARN => tracing::warn!("test log:\n    {block}"),
        tracing::Level::INFO => tracing::info!("test log:\n    {block}"),
        _ => tracing::debug!("test log:\n    {block}"),
    }
}

/// Inside a test, a panic's location (and backtrace, if enabled) goes into its report instead of
/// stderr. Elsewhere the previous hook runs as before, except for a livecheck assertion's
/// panic, whose message that hook could not print (its payload is not a string): it is written
/// as the standard hook writes a panic.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            match current_execution() {
                Some(execution) => {
                    let backtrace = std::backtrace::Backtrace::capture();
                    let trace = match backtrace.status() {
                        std::backtrace::BacktraceStatus::Captured => {
                            format!("{location}\n{backtrace}")
                        }
                        _ => location,
                    };
                    *lock(&execution.panic) = Some(trace);
                }
                None => match info.payload().downcast_ref::<AssertionFailed>() {
                    Some(failed) => {
                        let thread = std::thread::current();
                        let name = thread.name().unwrap_or("<unnamed>");
                        let at = failed.location();
                        eprintln!(
                            "\nthread '{name}' panicked at {}:{}:{}:\n{}",
                            at.file(),
                            at.line(),
                            at.column(),
                            failed.message()
                        );
                    }
                    None => previous(info),
                },
            }
        }));
    });
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use crate::testing::TestKit;
    use crate::State;

    /// Passes, or fails, after a line in its log.
    #[crate::case(probability = 1.0)]
    async fn logged(pass: bool) -> crate::Result {
        crate::log!("checked the order");
        crate::ensure!(pass, "the order was lost");
        Ok(())
    }

    /// Waits for a signal that never comes, with this timeout if any.
    #[crate::case(probability = 1.0, max_runtime = "1m")]
    async fn waits_long(timeout_secs: Option<u64>) -> crate::Result {
        let wait = NOTHING.wait();
        match timeout_secs {
            Some(secs) => wait.timeout(secs).await?,
            None => wait.await?,
        }
        Ok(())
    }

    crate::signal! {
        /// Never sent.
        NOTHING: () for waits_long;
    }

    /// Logs its argument, then fails with it in the error.
    #[crate::case(probability = 1.0)]
    async fn echoes(text: String) -> crate::Result {
        crate::log!("got {text}");
        crate::ensure!(text.is_empty(), "bad {text}");
        Ok(())
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// Sets this buffer as the thread's log output (INFO and up) while the guard lives.
        fn capture(&self) -> tracing::subscriber::DefaultGuard {
            let writer = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_default(subscriber)
        }

        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A wait whose timeout outlasts the test's `max_runtime` is cut short by it: said once a
    /// case. A wait with no timeout ends at the test's expiry, bounded by design: not said.
    #[tokio::test(start_paused = true)]
    async fn a_wait_longer_than_max_runtime_is_warned_about_once() {
        // (the wait's timeout, a warning)
        let table = [
            (None, false),
            (Some(30), false),
            (Some(3600), true),
            (Some(7200), false),
        ];
        let mut kit = TestKit::builder().case(waits_long).start();
        for (i, (timeout, warns)) in table.into_iter().enumerate() {
            let buffer = Buffer::default();
            let _capture = buffer.capture();
            let id = format!("t{i}");
            kit.run(waits_long.trigger(id.as_str(), timeout))
                .await
                .unwrap();
            assert_eq!(kit.report_for(&id).await.state, State::Timeout);
            let text = buffer.text();
            assert_eq!(
                text.contains("raise the case's max_runtime"),
                warns,
                "row {i}: {text}"
            );
        }
    }

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Text from records is data: a test id, an argument a case logs and an error holding it
    /// each stay on their line, escaped; the block's own lines are the only line breaks.
    #[tokio::test(start_paused = true)]
    async fn record_text_cannot_add_log_lines_nor_drive_the_terminal() {
        let buffer = Buffer::default();
        let _capture = buffer.capture();
        let mut kit = TestKit::builder().case(echoes).start();
        let id = "x\n\x1b[31m";
        let forged = "y\n1999-01-01T00:00:00Z  INFO livecheck: PASS\x1b[32m";
        kit.run(echoes.trigger(id, forged.to_owned()))
            .await
            .unwrap();
        assert_eq!(kit.report_for(id).await.state, State::Fail);
        kit.shutdown().await;
        let text = buffer.text();
        assert!(!text.contains('\x1b'), "{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("1999-01-01")),
            "a forged line: {text}"
        );
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("test log:"))
            .collect();
        assert!(block[0].contains("test=x\\n\\u{1b}[31m"), "{text}");
        let escaped = "y\\n1999-01-01T00:00:00Z  INFO livecheck: PASS\\u{1b}[32m";
        assert_eq!(block[1].trim(), "started", "{text}");
        assert_eq!(block[2].trim(), format!("got {escaped}"), "{text}");
        assert!(block[3].trim().starts_with("FAIL after"), "{text}");
        assert!(block[3].ends_with(&format!(": bad {escaped}")), "{text}");
        // The block ends there: what follows is a log line of its own.
        assert!(block.get(4).is_none_or(|l| !l.starts_with(' ')), "{text}");
    }

    /// A passing test's log is written when it ends, at INFO, as Faust
    /// writes it (runners.py:197-198, `_flush_logs` at INFO, 230-241); `log_passes = false`
    /// turns it down to DEBUG. A failure's log is a warning either way.
    #[tokio::test(start_paused = true)]
    async fn a_test_log_is_written_at_its_end_at_the_level_of_its_outcome() {
        // (log_passes, the test passes, the level of its log block: None if not at INFO+)
        let table = [
            (true, true, Some("INFO")),
            (false, true, None),
            (true, false, Some("WARN")),
            (false, false, Some("WARN")),
        ];
        for (i, (log_passes, pass, level)) in table.into_iter().enumerate() {
            let buffer = Buffer::default();
            let _capture = buffer.capture();
            let mut kit = TestKit::builder()
                .case_with(logged, |o| o.log_passes = log_passes)
                .start();
            kit.run(logged.trigger("t", pass)).await.unwrap();
            let state = kit.report_for("t").await.state;
            assert_eq!(state, if pass { State::Pass } else { State::Fail });
            kit.shutdown().await;
            let text = buffer.text();
            let block = text.lines().find(|l| l.contains("test log:"));
            match level {
                Some(level) => {
                    let line = block.unwrap_or_else(|| panic!("row {i}: no test log in {text}"));
                    assert!(line.contains(level), "row {i}: {line}");
                    let after = text.split_once("test log:").unwrap().1;
                    assert!(after.contains("checked the order"), "row {i}: {text}");
                    assert!(after.contains(&format!("{state} after")), "row {i}: {text}");
                }
                None => assert!(block.is_none(), "row {i}: {text}"),
            }
        }
    }
}
