//! One-shot runs for CI: `livecheck run --once` triggers each selected case once, waits for
//! its report, retries failures if asked, and gives a verdict per case and an exit code.
//!
//! How a case is triggered once:
//! - a case with a `fake_request` gets one call of it, as its timer would make, and the first
//!   test of that case that reaches the run afterwards is the run's test of it (a test that live
//!   traffic triggered at the same moment may be taken instead: it tests the same thing);
//! - a case without a `fake_request` and without parameters is triggered directly, with a new id;
//! - a case with parameters and no `fake_request` cannot be triggered here (the run would have to
//!   invent its arguments): it is SKIP, and says so;
//! - an inactive case is SKIP.
//!
//! The run is a worker of its own ([`crate::Worker`]) that runs only the tests it triggered: any
//! other test on the topic is acknowledged without being run, so a CI run next to live workers
//! does not run their tests. Fake-request timers are off. A failed case is run again up to
//! `retries` times; one that passes on a retry is *flaky*, which is not a pass (see
//! [`Verdict::Flaky`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::case::CaseConfig;
use crate::client::Client;
use crate::error::StartError;
use crate::fake::FakeRequest;
use crate::http::UrlClient;
use crate::model::{State, TestExecution, TestReport};
use crate::transport::{
    GroupView, Queued, Subscription, Transport, TransportCounters, TransportError, TransportFuture,
};
use crate::worker::{Observer, Worker, WorkerSettings};

pub mod junit;

/// Settings of a one-shot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OnceSettings {
    /// The whole run's time limit (5 min).
    pub timeout: Duration,
    /// Runs of a failed case after the first (0).
    pub retries: u32,
}

impl Default for OnceSettings {
    fn default() -> Self {
        OnceSettings {
            timeout: Duration::from_secs(300),
            retries: 0,
        }
    }
}

/// The verdict on one case of a one-shot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Its test passed at the first attempt.
    Pass,
    /// It failed, then passed on a retry: not a pass. The run still exits 0 (with a warning)
    /// unless `--fail-on-flaky`.
    Flaky,
    /// A contract failed (the last attempt's outcome).
    Fail,
    /// Any other error, including a fake request that failed.
    Error,
    /// A signal did not arrive in time, or no report came within the run's timeout.
    Timeout,
    /// Not run: the case is inactive, or it cannot be triggered by the run.
    Skip,
}

impl Verdict {
    /// `PASS`, `FLAKY`, `FAIL`, `ERROR`, `TIMEOUT` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Flaky => "FLAKY",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Timeout => "TIMEOUT",
            Verdict::Skip => "SKIP",
        }
    }

    /// FAIL, ERROR or TIMEOUT.
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Error | Verdict::Timeout)
    }

    fn of(state: State) -> Verdict {
        match state {
            State::Pass => Verdict::Pass,
            State::Fail => Verdict::Fail,
            State::Timeout => Verdict::Timeout,
            State::Skip => Verdict::Skip,
            State::Init | State::Error | State::Stall => Verdict::Error,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One attempt at a case: its test's report, or why there is none.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Attempt {
    /// The outcome.
    pub state: State,
    /// The test's report, if the test ran (or was skipped by the worker).
    pub report: Option<TestReport>,
    /// Error text: the report's, or why no report came.
    pub error: Option<String>,
    /// The report's traceback.
    pub traceback: Option<String>,
    /// From the trigger (or fake request) to the report.
    pub elapsed: Duration,
}

impl Attempt {
    fn from_report(report: TestReport, elapsed: Duration) -> Attempt {
        Attempt {
            state: report.state,
            error: report.error.clone(),
            traceback: report.traceback.clone(),
            report: Some(report),
            elapsed,
        }
    }

    fn without_report(state: State, error: String, elapsed: Duration) -> Attempt {
        Attempt {
            state,
            report: None,
            error: Some(error),
            traceback: None,
            elapsed,
        }
    }

    /// The id of the test, if one ran.
    pub fn test_id(&self) -> Option<&str> {
        self.report
            .as_ref()
            .and_then(|r| r.test.as_ref())
            .map(|t| t.id.as_str())
    }
}

/// What a one-shot run found for one case.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CaseOutcome {
    /// The case.
    pub case: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// Every attempt, in order (none for a case the run could not trigger).
    pub attempts: Vec<Attempt>,
    /// Why the case was skipped, when it was not triggered at all.
    pub skipped: Option<String>,
    /// Time spent on the case, every attempt included.
    pub elapsed: Duration,
}

impl CaseOutcome {
    /// The attempt the verdict comes from (the last).
    pub fn last(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// The error text behind the verdict.
    pub fn error(&self) -> Option<&str> {
        self.skipped
            .as_deref()
            .or_else(|| self.last().and_then(|a| a.error.as_deref()))
    }
}

/// Every case's outcome of a one-shot run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Summary {
    /// By case name.
    pub cases: Vec<CaseOutcome>,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// How long it took.
    pub elapsed: Duration,
}

impl Summary {
    /// How many cases have this verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }

    /// Whether the run passes: no FAIL, ERROR or TIMEOUT, no FLAKY if `fail_on_flaky`, and at
    /// least one case ran (a run that tested nothing is no pass).
    pub fn passed(&self, fail_on_flaky: bool) -> bool {
        let ran = self.cases.iter().any(|c| c.verdict != Verdict::Skip);
        ran && !self
            .cases
            .iter()
            .any(|c| c.verdict.is_failure() || (fail_on_flaky && c.verdict == Verdict::Flaky))
    }

    /// The summary printed at the end: one line per case, the error and traceback of each
    /// case that did not pass (indented under it, a line of text each), and a total.
    ///
    /// Test ids, errors and tracebacks come from records: their control characters are shown
    /// escaped (`\u{1b}`), so they cannot drive the terminal, and only their own line breaks
    /// start new (indented) lines.
    pub fn render(&self) -> String {
        use crate::text::Escaped;
        use fmt::Write as _;
        let mut out = String::new();
        for case in &self.cases {
            let attempts = case.attempts.len();
            let detail = match (case.verdict, case.last()) {
                (Verdict::Skip, _) => String::new(),
                (_, Some(last)) => {
                    format!(
                        "  {}{}",
                        crate::duration::humanize(case.elapsed),
                        if attempts > 1 {
                            format!(", {attempts} attempts")
                        } else {
                            String::new()
                        }
                    ) + &last
                        .test_id()
                        .map(|id| format!("  test={}", Escaped(id)))
                        .unwrap_or_default()
                }
                (_, None) => String::new(),
            };
            let _ = writeln!(out, "{:<8} {}{detail}", case.verdict, case.case);
            if case.verdict != Verdict::Pass {
                if let Some(error) = case.error() {
                    for line in error.lines() {
                        let _ = writeln!(out, "         {}", Escaped(line));
                    }
                }
                if case.verdict.is_failure() {
                    if let Some(traceback) = case.last().and_then(|a| a.traceback.as_deref()) {
                        for line in traceback.lines() {
                            let _ = writeln!(out, "           {}", Escaped(line));
                        }
                    }
                }
            }
        }
        let _ = write!(
            out,
            "{} case{} in {}: {} passed, {} flaky, {} failed, {} skipped",
            self.cases.len(),
            if self.cases.len() == 1 { "" } else { "s" },
            crate::duration::humanize(self.elapsed),
            self.count(Verdict::Pass),
            self.count(Verdict::Flaky),
            self.cases.iter().filter(|c| c.verdict.is_failure()).count(),
            self.count(Verdict::Skip),
        );
        out
    }

    /// The JSON document of `--json`: the verdicts, and every attempt's report as it is on the
    /// report topic (Faust's record, `docs/kafka.md`).
    pub fn to_json(&self, fail_on_flaky: bool) -> serde_json::Value {
        use serde_json::json;
        let cases: Vec<_> = self
            .cases
            .iter()
            .map(|case| {
                let attempts: Vec<_> = case
                    .attempts
                    .iter()
                    .map(|a| {
                        json!({
                            "state": a.state.as_str(),
                            "elapsed_seconds": a.elapsed.as_secs_f64(),
                            "error": a.error,
                            "traceback": a.traceback,
                            "report": a.report.as_ref().map(|r| {
                                serde_json::from_slice::<serde_json::Value>(
                                    &crate::codec::encode_report(r),
                                )
                                .unwrap_or(serde_json::Value::Null)
                            }),
                        })
                    })
                    .collect();
                json!({
                    "case": case.case,
                    "verdict": case.verdict.as_str(),
                    "error": case.error(),
                    "elapsed_seconds": case.elapsed.as_secs_f64(),
                    "attempts": attempts,
                })
            })
            .collect();
        json!({
            "passed": self.passed(fail_on_flaky),
            "started": self.started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "totals": {
                "cases": self.cases.len(),
                "passed": self.count(Verdict::Pass),
                "flaky": self.count(Verdict::Flaky),
                "failed": self.count(Verdict::Fail),
                "errors": self.count(Verdict::Error),
                "timeouts": self.count(Verdict::Timeout),
                "skipped": self.count(Verdict::Skip),
            },
            "cases": cases,
        })
    }
}

/// A fake request waiting for the test it makes.
struct FakeClaim {
    test: oneshot::Sender<String>,
    report: oneshot::Sender<TestReport>,
}

/// Which tests belong to the run, and where their reports go.
#[derive(Default)]
struct Claims {
    /// Tests of the run, by id.
    by_id: HashMap<String, oneshot::Sender<TestReport>>,
    /// Fake requests waiting for their test, by case.
    by_case: HashMap<String, VecDeque<FakeClaim>>,
    /// Tests seen that were not the run's.
    ignored: u64,
}

impl Claims {
    /// Whether `test` is the run's: triggered by it, or the first of its case after a fake
    /// request of the run.
    fn admit(&mut self, test: &TestExecution) -> bool {
        if self.by_id.contains_key(&test.id) {
            return true;
        }
        if let Some(waiting) = self.by_case.get_mut(&test.case_name) {
            while let Some(claim) = waiting.pop_front() {
                if claim.test.send(test.id.clone()).is_ok() {
                    self.by_id.insert(test.id.clone(), claim.report);
                    return true;
                }
                // That attempt gave up: the next one, if any, takes the test.
            }
        }
        self.ignored += 1;
        false
    }
}

type SharedClaims = Arc<Mutex<Claims>>;

fn lock(claims: &SharedClaims) -> std::sync::MutexGuard<'_, Claims> {
    claims.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends each report of the run to its attempt.
struct Reports(SharedClaims);

impl Observer for Reports {
    fn on_report(&self, report: &TestReport) {
        let Some(test) = &report.test else { return };
        if let Some(waiting) = lock(&self.0).by_id.remove(&test.id) {
            let _ = waiting.send(report.clone());
        }
    }
}

/// The run's transport: the real one, whose tests stream holds only the run's tests (others are
/// acknowledged unrun).
struct OnlyClaimed {
    inner: Arc<dyn Transport>,
    claims: SharedClaims,
}

impl fmt::Debug for OnlyClaimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnlyClaimed")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Transport for OnlyClaimed {
    fn publish_test(&self, test: &TestExecution) -> Result<Queued, TransportError> {
        self.inner.publish_test(test)
    }

    fn publish_signal(&self, signal: &crate::model::SignalEvent) -> Result<Queued, TransportError> {
        self.inner.publish_signal(signal)
    }

    fn publish_report<'a>(&'a self, report: &'a TestReport) -> TransportFuture<'a, ()> {
        self.inner.publish_report(report)
    }

    fn flush(&self, timeout: Duration) -> TransportFuture<'_, ()> {
        self.inner.flush(timeout)
    }

    fn subscribe(&self) -> TransportFuture<'_, Subscription> {
        let claims = self.claims.clone();
        Box::pin(async move {
            let subscription = self.inner.subscribe().await?;
            let tests = subscription
                .tests
                .filter_map(move |delivery| {
                    let admitted = lock(&claims).admit(&delivery.value);
                    let kept = if admitted {
                        Some(delivery)
                    } else {
                        tracing::debug!(
                            case = %crate::text::Escaped(&delivery.value.case_name),
                            test = %crate::text::Escaped(&delivery.value.id),
                            "not a test of this run: not run"
                        );
                        delivery.ack();
                        None
                    };
                    std::future::ready(kept)
                })
                .boxed();
            Ok(Subscription {
                tests,
                ..subscription
            })
        })
    }

    fn close(&self) -> TransportFuture<'_, ()> {
        self.inner.close()
    }

    fn counters(&self) -> TransportCounters {
        self.inner.counters()
    }

    fn is_assigned(&self) -> bool {
        self.inner.is_assigned()
    }

    fn group(&self) -> Option<GroupView> {
        self.inner.group()
    }

    fn brokers(&self) -> Option<String> {
        self.inner.brokers()
    }

    fn assigned_partitions(&self) -> Option<Vec<i32>> {
        self.inner.assigned_partitions()
    }
}

/// A one-shot run of some cases on a transport.
///
/// # Examples
/// ```no_run
/// # async fn run(transport: std::sync::Arc<dyn livecheck::Transport>,
/// #              cases: Vec<livecheck::CaseConfig>) -> Result<(), livecheck::StartError> {
/// let summary = livecheck::once::OnceRun::new(transport, cases)
///     .settings(livecheck::once::OnceSettings::default())
///     .run()
///     .await?;
/// println!("{}", summary.render());
/// std::process::exit(if summary.passed(false) { 0 } else { 1 });
/// # }
/// ```
pub struct OnceRun {
    transport: Arc<dyn Transport>,
    cases: Vec<CaseConfig>,
    settings: OnceSettings,
    worker: WorkerSettings,
    observers: Vec<Arc<dyn Observer>>,
    #[cfg(feature = "otel")]
    otlp: Option<crate::otel::OtlpExport>,
}

impl fmt::Debug for OnceRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceRun")
            .field("transport", &self.transport)
            .field("cases", &self.cases.len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Shares an observer between the run and its worker.
struct SharedObserver(Arc<dyn Observer>);

impl Observer for SharedObserver {
    fn on_test_start(&self, test: &TestExecution) {
        self.0.on_test_start(test);
    }
    fn on_report(&self, report: &TestReport) {
        self.0.on_report(report);
    }
}

impl OnceRun {
    /// A run of `cases` on `transport`, which must start consuming where the run starts (a
    /// Kafka consumer group of its own positioned at the end of the tests topic: see
    /// `docs/operations.md`).
    pub fn new(transport: Arc<dyn Transport>, cases: Vec<CaseConfig>) -> Self {
        OnceRun {
            transport,
            cases,
            settings: OnceSettings::default(),
            worker: WorkerSettings {
                // Tests the run gave up on are not worth waiting for.
                shutdown_grace: Duration::from_secs(2),
                ..WorkerSettings::default()
            },
            observers: Vec::new(),
            #[cfg(feature = "otel")]
            otlp: None,
        }
    }

    /// Exports a span per test of the run, as a worker does ([`WorkerBuilder::otlp`](
    /// crate::worker::WorkerBuilder::otlp)): a failed test in CI links to its trace.
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    pub fn otlp(mut self, export: crate::otel::OtlpExport) -> Self {
        self.otlp = Some(export);
        self
    }

    /// The run's settings.
    pub fn settings(mut self, settings: OnceSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Settings of the worker that runs the tests.
    pub fn worker_settings(mut self, settings: WorkerSettings) -> Self {
        self.worker = settings;
        self
    }

    /// Adds an observer of the worker (e.g. to print each report as it comes).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Runs each case once (and again on failure, as the settings say), then stops the
    /// worker.
    pub async fn run(self) -> Result<Summary, StartError> {
        let started = Utc::now();
        let start = Instant::now();
        let deadline = start + self.settings.timeout;
        let claims = SharedClaims::default();
        let transport: Arc<dyn Transport> = Arc::new(OnlyClaimed {
            inner: self.transport.clone(),
            claims: claims.clone(),
        });
        // The run makes its fake requests itself, once: no timers.
        let cases: Vec<CaseConfig> = self
            .cases
            .iter()
            .map(|c| {
                let mut c = *c;
                c.options.frequency = None;
                c
            })
            .collect();
        let mut builder = Worker::builder_arc(transport)
            .cases(cases.clone())
            .settings(self.worker.clone())
            .observer(Reports(claims.clone()));
        for observer in &self.observers {
            builder = builder.observer(SharedObserver(observer.clone()));
        }
        #[cfg(feature = "otel")]
        if let Some(export) = self.otlp.clone() {
            builder = builder.otlp(export);
        }
        let worker = builder.build()?;
        let client = worker.client();
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));

        let runs = cases.iter().map(|case| {
            run_case(
                *case,
                client.clone(),
                claims.clone(),
                self.settings.retries,
                deadline,
            )
        });
        let outcomes = futures::future::join_all(runs).await;
        let ignored = lock(&claims).ignored;
        if ignored > 0 {
            tracing::info!(
                ignored,
                "tests not triggered by this run were seen and not run"
            );
        }
        let _ = stop.send(());
        match running.await {
            Ok(result) => result?,
            Err(error) => tracing::warn!(%error, "the run's worker task failed"),
        }
        Ok(Summary {
            cases: outcomes,
            started,
            elapsed: start.elapsed(),
        })
    }
}

/// Every attempt at one case, up to its verdict.
async fn run_case(
    case: CaseConfig,
    client: Client,
    claims: SharedClaims,
    retries: u32,
    deadline: Instant,
) -> CaseOutcome {
    let start = Instant::now();
    let outcome = |verdict, attempts, skipped| CaseOutcome {
        case: case.name(),
        verdict,
        attempts,
        skipped,
        elapsed: start.elapsed(),
    };
    if !case.options.active {
        return outcome(Verdict::Skip, Vec::new(), Some("case is inactive".into()));
    }
    let params = case.descriptor.params;
    if case.descriptor.fake_request.is_none() && !params.is_empty() {
        return outcome(
            Verdict::Skip,
            Vec::new(),
            Some(format!(
                "cannot be triggered by run --once: it takes arguments ({}) and has no \
                 fake_request to make them; give it a fake_request, or deselect it",
                params.join(", ")
            )),
        );
    }
    let mut attempts = Vec::new();
    for number in 0..=retries {
        let attempt = attempt(case, &client, &claims, deadline).await;
        let state = attempt.state;
        attempts.push(attempt);
        if !state.is_failure() || Instant::now() >= deadline {
            break;
        }
        if number < retries {
            tracing::info!(case = case.name(), state = %state, "case failed: running it again");
        }
    }
    let last = attempts.last().map_or(State::Error, |a| a.state);
    let verdict = match Verdict::of(last) {
        Verdict::Pass if attempts.len() > 1 => Verdict::Flaky,
        verdict => verdict,
    };
    outcome(verdict, attempts, None)
}

/// One test of `case`: triggered (or made by its fake request), run, reported.
async fn attempt(
    case: CaseConfig,
    client: &Client,
    claims: &SharedClaims,
    deadline: Instant,
) -> Attempt {
    let start = Instant::now();
    let timeout = |what: String| {
        Attempt::without_report(
            State::Timeout,
            format!("{what} within the run's --timeout"),
            start.elapsed(),
        )
    };
    let report = match case.descriptor.fake_request {
        Some(fake_request) => {
            let (test_tx, test_rx) = oneshot::channel();
            let (report_tx, report_rx) = oneshot::channel();
            // Claimed before the request: its test may arrive before the request returns.
            lock(claims)
                .by_case
                .entry(case.name().to_owned())
                .or_default()
                .push_back(FakeClaim {
                    test: test_tx,
                    report: report_tx,
                });
            let request = FakeRequest::new(case, client.clone(), UrlClient::new(case.options));
            match tokio::time::timeout_at(deadline, client.scope(fake_request(request))).await {
                Err(_) => return timeout("the fake request did not return".into()),
                Ok(Err(error)) => {
                    return Attempt::without_report(
                        State::Error,
                        format!("the fake request failed: {error}"),
                        start.elapsed(),
                    )
                }
                Ok(Ok(())) => {}
            }
            let id = match tokio::time::timeout_at(deadline, test_rx).await {
                Ok(Ok(id)) => id,
                _ => {
                    return timeout(format!(
                        "no test of {} arrived after its fake request",
                        case.name()
                    ))
                }
            };
            tracing::debug!(
                case = case.name(),
                test = %crate::text::Escaped(&id),
                "the fake request's test arrived"
            );
            (id, report_rx)
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            let (report_tx, report_rx) = oneshot::channel();
            lock(claims).by_id.insert(id.clone(), report_tx);
            let triggered = client
                .scope(crate::__private::trigger(
                    case.descriptor,
                    id.clone(),
                    Vec::new(),
                ))
                .await;
            if let Err(error) = triggered {
                lock(claims).by_id.remove(&id);
                return Attempt::without_report(
                    State::Error,
                    format!("cannot trigger the case: {error}"),
                    start.elapsed(),
                );
            }
            (id, report_rx)
        }
    };
    let (id, report_rx) = report;
    match tokio::time::timeout_at(deadline, report_rx).await {
        Ok(Ok(report)) => Attempt::from_report(report, start.elapsed()),
        _ => {
            lock(claims).by_id.remove(&id);
            timeout(format!("no report for test {id}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
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
}
