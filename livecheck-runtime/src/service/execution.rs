//! The current execution: what a running test keeps while its case runs — its signal store,
//! its buffered log, its signals' latencies, the wait it is in — and what `Signal::wait`,
//! `livecheck::log!` and the HTTP helpers reach through the current task's scope
//! ([`context`](crate::context)). The [runner](crate::runner) makes one per test and turns it
//! into the report.

// Only the worker runs tests; a service build keeps the type for `Signal::wait` in the cases
// it compiles.
#![cfg_attr(not(feature = "worker"), allow(dead_code))]

use std::collections::BTreeMap;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::lock::lock;
use crate::service::store::SignalStore;
use crate::wire::model::TestExecution;

/// The wait a test is in: the signal and where the case waits for it.
pub(crate) type Waiting = (&'static str, &'static Location<'static>);

/// A running test: what `Signal::wait` and `livecheck::log!` reach through the task-local.
pub(crate) struct Execution {
    pub(crate) test: Arc<TestExecution>,
    pub(crate) store: Arc<SignalStore>,
    /// The case's helpers, shared by its tests (a copy was ~0.2 KB a test).
    ///
    /// Type-erased (an `Arc<http::UrlClient>`), so the current execution does not depend on
    /// the HTTP helpers, which depend on it.
    #[cfg(feature = "http")]
    pub(crate) http: Option<Arc<dyn std::any::Any + Send + Sync>>,
    pub(crate) realtime_logs: bool,
    /// The buffered lines, joined as `flush_logs` writes them: one buffer a test rather than a
    /// `String` a line plus a `Vec` (docs/benchmarks.md).
    pub(crate) logs: Mutex<String>,
    pub(crate) signal_latency: Mutex<BTreeMap<String, f64>>,
    pub(crate) panic: Mutex<Option<String>>,
    /// The wait in progress, to say what a test stopped by `max_runtime` was doing.
    pub(crate) waiting: Mutex<Option<Waiting>>,
    /// When `max_runtime` stops the test.
    pub(crate) stop_at: Instant,
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
            tracing::info!(
                case = %crate::text::Escaped(&self.test.case_name),
                test = %crate::text::Escaped(&self.test.id),
                "{line}" // escaped by `runner::log`
            );
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
            crate::wire::duration::humanize(latency)
        ));
        lock(&self.signal_latency).insert(signal.to_owned(), latency.as_secs_f64());
    }

    /// Whether the test's `max_runtime` is up.
    pub(crate) fn is_past_max_runtime(&self) -> bool {
        Instant::now() >= self.stop_at
    }

    /// Notes the wait the test is in (or that it is in none).
    pub(crate) fn set_waiting(&self, waiting: Option<Waiting>) {
        *lock(&self.waiting) = waiting;
    }

    /// A wait that would outlast the test's `max_runtime` is cut short by it: say so, once a
    /// case, so the option gets raised rather than the TIMEOUT puzzled over.
    pub(crate) fn check_wait_deadline(
        &self,
        signal: &str,
        deadline: Instant,
        location: &'static Location<'static>,
    ) {
        if deadline <= self.stop_at {
            return;
        }
        static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let case = &self.test.case_name;
        let mut warned = lock(&WARNED);
        if warned.iter().any(|c| c == case) {
            return;
        }
        warned.push(case.clone());
        tracing::warn!(
            case = %case,
            "the wait for signal {signal} at {}:{} lasts longer than the test may run \
             (max_runtime): the test will be stopped first; raise the case's max_runtime",
            location.file(),
            location.line()
        );
    }
}
