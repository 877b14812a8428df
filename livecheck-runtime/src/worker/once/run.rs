//! The one-shot run itself ([`OnceRun`]): a worker of its own that runs only the run's tests,
//! each case triggered (or its fake request made) and retried as the settings say, down to a
//! verdict per case.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::claims::{FakeClaim, OnlyClaimed, Reports, SharedClaims};
use super::summary::{Attempt, CaseOutcome, Summary, Verdict};
use crate::lock::lock;
use crate::service::case::CaseConfig;
use crate::service::case::FakeRequest;
use crate::service::client::Client;
use crate::service::http::UrlClient;
use crate::transport::Transport;
use crate::wire::error::StartError;
use crate::wire::model::{State, TestExecution, TestReport};
use crate::worker::{Observer, Worker, WorkerSettings};

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
    otlp: Option<crate::worker::otel::OtlpExport>,
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
    pub fn otlp(mut self, export: crate::worker::otel::OtlpExport) -> Self {
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
        // The run's worker consumes only the run's tests; it publishes through the transport.
        let consume = Arc::new(OnlyClaimed {
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
        let mut builder = Worker::builder_arc(self.transport.clone())
            .consume(consume)
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
        let running = builder.build()?.spawn();
        let client = running.client().clone();

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
        // A worker task that panicked or was cancelled is logged, not resumed: the summary of
        // what ran is still returned.
        match std::panic::AssertUnwindSafe(running.stop())
            .catch_unwind()
            .await
        {
            Ok(result) => result?,
            Err(_) => tracing::warn!("the run's worker task failed"),
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
