//! The status server of a worker (axum): a dashboard, a JSON API, Prometheus metrics, and
//! health and readiness probes.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the dashboard: one self-contained HTML page (no CDN), refreshing itself from `/api/cases` |
//! | `GET /api/cases` | `{"worker": {...}, "cases": [...]}`: the worker's counters and every case's health |
//! | `GET /api/cases/{name}` | one case's health (404 with `{"error": ...}` if there is no such case) |
//! | `GET /api/cases/{name}/tests/{id}` | one of the case's newest tests: its report and log lines (404 if not kept) |
//! | `GET /metrics` | Prometheus text format ([`Metrics`]) |
//! | `GET /healthz` | 200 while the server answers |
//! | `GET /readyz` | 200 once the worker consumes and (Kafka) has a partition assignment, and no partition of the group is orphaned; else 503 with the reason |
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use livecheck::metrics::Metrics;
//! use livecheck::status::StatusServer;
//!
//! let metrics = Metrics::new();
//! let worker = livecheck::Worker::builder(livecheck::MemoryTransport::new())
//!     .observer(metrics.clone())
//!     .build()?;
//! let server = StatusServer::start("127.0.0.1:9999".parse()?, worker.handle(), metrics).await?;
//! println!("status page at {}", server.url());
//! worker.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! server.stop().await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State as Extract};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::ops::metrics::{self, Metrics};
use crate::service::case::CaseConfig;
use crate::worker::health::{self, CaseStatus};
use crate::worker::WorkerHandle;

/// The dashboard: HTML with its CSS and JavaScript inline (the machines it runs on may have no
/// internet, and a status page must not depend on a CDN being up).
const DASHBOARD: &str = include_str!("dashboard.html");

/// Why the status server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's error (in the message; not a `source()`).
        cause: std::io::Error,
    },
}

/// `GET /api/cases`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub(crate) struct CasesView {
    /// When the server made this answer (RFC 3339, UTC): "3 min ago" on the page is counted
    /// from it, not from the browser's clock.
    #[serde(serialize_with = "health::time")]
    pub(crate) generated_at: chrono::DateTime<chrono::Utc>,
    /// The worker as a whole.
    pub(crate) worker: WorkerView,
    /// Every case, sorted by name.
    pub(crate) cases: Vec<CaseView>,
    /// Where a test's trace is shown, with `{trace_id}` in place of its id
    /// ([`StatusOptions::trace_url`]); the page links each test's trace id to it.
    pub(crate) trace_url: Option<String>,
}

/// What the status server shows beyond the worker's state.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StatusOptions {
    /// The tracing backend's page of a trace, with `{trace_id}` where the test's trace id goes
    /// (e.g. `https://jaeger.example.com/trace/{trace_id}`): the page links each test to it.
    pub trace_url: Option<String>,
}

impl StatusOptions {
    /// Links each test to its trace at `template` (`{trace_id}` is replaced by its id).
    pub fn trace_url(mut self, template: impl Into<String>) -> Self {
        self.trace_url = Some(template.into());
        self
    }
}

/// One case: its health and its options (`GET /api/cases/{name}`).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub(crate) struct CaseView {
    /// When the server made this answer (RFC 3339, UTC).
    #[serde(serialize_with = "health::time")]
    pub(crate) generated_at: chrono::DateTime<chrono::Utc>,
    /// The health (its fields are at the top level of the JSON object).
    #[serde(flatten)]
    pub(crate) status: CaseStatus,
    /// The options in effect.
    pub(crate) options: OptionsView,
}

/// A case's options, durations in seconds.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub(crate) struct OptionsView {
    /// Probability that `maybe_trigger` schedules a test.
    pub(crate) probability: f64,
    /// Whether the case runs its tests.
    pub(crate) active: bool,
    /// Seconds between fake requests, if any.
    pub(crate) frequency_seconds: Option<f64>,
    /// Whether the case has a fake request.
    pub(crate) fake_request: bool,
    /// Seconds without a test before a STALL.
    pub(crate) warn_stalled_after_seconds: f64,
    /// Seconds a test stays valid.
    pub(crate) test_expires_seconds: f64,
    /// Failures in a row before a suite FAIL.
    pub(crate) max_consecutive_failures: u32,
    /// Seconds after a suite FAIL or STALL report before the case's next suite report.
    pub(crate) state_transition_delay_seconds: f64,
    /// How many tests the percentiles are over.
    pub(crate) max_history: usize,
}

impl From<&CaseConfig> for OptionsView {
    fn from(case: &CaseConfig) -> Self {
        let o = &case.options;
        OptionsView {
            probability: o.probability,
            active: o.active,
            frequency_seconds: o.frequency.map(|f| f.as_secs_f64()),
            fake_request: case.descriptor.fake_request.is_some(),
            warn_stalled_after_seconds: o.warn_stalled_after.as_secs_f64(),
            test_expires_seconds: o.test_expires.as_secs_f64(),
            max_consecutive_failures: o.max_consecutive_failures,
            state_transition_delay_seconds: o.state_transition_delay.as_secs_f64(),
            max_history: o.max_history,
        }
    }
}

/// The worker as a whole.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub(crate) struct WorkerView {
    /// livecheck's version.
    pub(crate) version: &'static str,
    /// Consuming, with a partition assignment (what `/readyz` says).
    pub(crate) ready: bool,
    /// Whether this worker is the leader (runs the fake requests, publishes suite reports).
    pub(crate) leader: bool,
    /// Seconds since the status server started.
    pub(crate) uptime_seconds: f64,
    /// Tests running now.
    pub(crate) in_flight: usize,
    /// Test executions received.
    pub(crate) tests_received: u64,
    /// Signals received.
    pub(crate) signals_received: u64,
    /// Signals in the store.
    pub(crate) stored_signals: usize,
    /// Bad messages skipped, by kind.
    pub(crate) skipped: BTreeMap<&'static str, u64>,
    /// Reports that could not be published.
    pub(crate) report_publish_errors: u64,
    /// Fake requests that failed.
    pub(crate) fake_request_errors: u64,
    /// Kafka consumer errors.
    pub(crate) consumer_errors: u64,
    /// Tests stopped unreported here because their partition moved to another worker.
    pub(crate) tests_moved: u64,
    /// The consumer group as the broker describes it (Kafka only): owners and lag of each
    /// partition, and the partitions nobody consumes.
    pub(crate) group: Option<crate::transport::GroupView>,
    /// The brokers the worker was configured with (Kafka's `bootstrap.servers`; `None` in
    /// memory).
    pub(crate) brokers: Option<String>,
    /// The partitions of the tests topic this worker consumes (Kafka; `None` in memory).
    pub(crate) assigned_partitions: Option<Vec<i32>>,
    /// Tests waiting in the tests topic, all partitions (the sum of `group.partitions[].lag`),
    /// when the broker describes the group.
    pub(crate) consumer_lag: Option<i64>,
    /// How this worker shares the group's judgement: test reports of other workers counted in
    /// the cases' health, a second report of a test not counted, tests already reported that
    /// were delivered again (not run), and this worker's reports dropped because another worker
    /// reported the test first.
    pub(crate) judgement: JudgementView,
}

/// How this worker shares the group's judgement (see [`WorkerView::judgement`]).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub(crate) struct JudgementView {
    /// Test reports of other workers fed into this worker's case health.
    pub(crate) peer_reports: u64,
    /// Reports of a test already counted, read back and not counted again.
    pub(crate) peer_duplicates: u64,
    /// Tests delivered again whose report the group had published: acknowledged, not run.
    pub(crate) already_reported: u64,
    /// Reports of this worker dropped: another worker reported the same test first.
    pub(crate) duplicate_reports_dropped: u64,
    /// Tests whose report the group published that this worker remembers.
    pub(crate) reported_tests: usize,
}

#[derive(Clone)]
struct AppState {
    worker: WorkerHandle,
    metrics: Metrics,
    options: StatusOptions,
    started: Instant,
}

impl AppState {
    fn worker_view(&self) -> WorkerView {
        let w = &self.worker;
        let stats = w.stats();
        let transport = w.transport();
        let counters = transport.counters;
        let group = transport.group;
        let consumer_lag = group
            .as_ref()
            .and_then(|g| g.partitions.iter().map(|p| p.lag).sum::<Option<i64>>());
        WorkerView {
            version: env!("CARGO_PKG_VERSION"),
            ready: is_ready(w),
            leader: w.is_leader(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            in_flight: stats.in_flight,
            tests_received: stats.tests_received,
            signals_received: stats.signals_received,
            stored_signals: w.stored_signals(),
            skipped: BTreeMap::from([
                ("undecodable_tests", counters.undecodable_tests),
                ("undecodable_signals", counters.undecodable_signals),
                ("undecodable_reports", counters.undecodable_reports),
                ("unknown_case_tests", stats.unknown_case_tests),
                ("unknown_case_signals", stats.unknown_case_signals),
            ]),
            report_publish_errors: stats.report_publish_errors,
            fake_request_errors: stats.fake_request_errors,
            consumer_errors: counters.consumer_errors,
            tests_moved: stats.tests_moved,
            group,
            brokers: transport.brokers,
            assigned_partitions: transport.assigned_partitions,
            consumer_lag,
            judgement: JudgementView {
                peer_reports: stats.peer_reports,
                peer_duplicates: stats.peer_duplicates,
                already_reported: stats.already_reported,
                duplicate_reports_dropped: stats.duplicate_reports_dropped,
                reported_tests: w.reported_tests(),
            },
        }
    }

    fn case_view(&self, status: CaseStatus, cases: &[CaseConfig]) -> Option<CaseView> {
        let case = cases.iter().find(|c| c.name() == status.name)?;
        Some(CaseView {
            generated_at: chrono::Utc::now(),
            options: OptionsView::from(case),
            status,
        })
    }
}

fn is_ready(worker: &WorkerHandle) -> bool {
    worker.is_ready() && worker.is_assigned()
}

/// The status server's routes, to serve them yourself (e.g. merged into a service's router).
pub fn router(worker: WorkerHandle, metrics: Metrics) -> Router {
    router_with(worker, metrics, StatusOptions::default())
}

/// [`router`] with [`StatusOptions`].
pub fn router_with(worker: WorkerHandle, metrics: Metrics, options: StatusOptions) -> Router {
    let state = AppState {
        worker,
        metrics,
        options,
        started: Instant::now(),
    };
    Router::new()
        .route("/", get(dashboard))
        .route("/api/cases", get(cases))
        .route("/api/cases/{name}", get(case))
        .route("/api/cases/{name}/tests/{id}", get(test))
        .route("/metrics", get(prometheus))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(state))
}

async fn dashboard() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(DASHBOARD))
}

async fn cases(Extract(state): Extract<Arc<AppState>>) -> Json<CasesView> {
    let configs = state.worker.cases();
    let cases = state
        .worker
        .statuses()
        .into_iter()
        .filter_map(|status| state.case_view(status, &configs))
        .collect();
    Json(CasesView {
        generated_at: chrono::Utc::now(),
        worker: state.worker_view(),
        cases,
        trace_url: state.options.trace_url.clone(),
    })
}

async fn case(Extract(state): Extract<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let view = state
        .worker
        .status(&name)
        .and_then(|status| state.case_view(status, &state.worker.cases()));
    match view {
        Some(view) => Json(view).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("no case named {name:?}") })),
        )
            .into_response(),
    }
}

async fn test(
    Extract(state): Extract<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    match state.worker.test_detail(&name, &id) {
        Some(detail) => Json(detail).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "error": format!(
                    "no test {id:?} among the newest {} of case {name:?}",
                    health::RECENT_TESTS
                )
            })),
        )
            .into_response(),
    }
}

async fn prometheus(Extract(state): Extract<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(&state.worker),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(Extract(state): Extract<Arc<AppState>>) -> (StatusCode, String) {
    match state.worker.not_ready(&state.worker.transport()) {
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
        None => (StatusCode::OK, "ready\n".into()),
    }
}

/// A running status server; stops when [`stop`](Self::stop)ped or dropped.
pub struct StatusServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for StatusServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl StatusServer {
    /// Listens on `bind` (port 0 picks a free port) and serves [`router`] in a task of its own.
    pub async fn start(
        bind: SocketAddr,
        worker: WorkerHandle,
        metrics: Metrics,
    ) -> Result<StatusServer, StatusError> {
        Self::start_with(bind, worker, metrics, StatusOptions::default()).await
    }

    /// [`start`](Self::start) with [`StatusOptions`].
    pub async fn start_with(
        bind: SocketAddr,
        worker: WorkerHandle,
        metrics: Metrics,
        options: StatusOptions,
    ) -> Result<StatusServer, StatusError> {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|cause| StatusError::Bind { addr: bind, cause })?;
        let addr = listener
            .local_addr()
            .map_err(|cause| StatusError::Bind { addr: bind, cause })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router_with(worker, metrics, options);
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "status server failed");
            }
        });
        tracing::debug!(%addr, "status server started");
        Ok(StatusServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The dashboard's URL, e.g. `http://127.0.0.1:9999/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops taking connections and lets the requests being served finish (5 s at most).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DASHBOARD;

    /// Case names, test ids, errors and log lines come from records: the page puts them in the
    /// DOM as text (`textContent`, `setAttribute`, text nodes), never parses them as HTML or
    /// code, and links only to http(s) URLs.
    #[test]
    fn the_dashboard_never_parses_record_text_as_html() {
        let script = DASHBOARD
            .split_once("<script>")
            .expect("an inline script")
            .1;
        // Without its comments (which may name what the code avoids).
        let code: String = script
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "createContextualFragment",
            "DOMParser",
            "eval(",
            "Function(",
            "setTimeout(\"",
            "srcdoc",
        ] {
            assert!(!code.contains(sink), "the dashboard uses {sink}");
        }
        // Every text goes through `el`/`svg` as `text` (textContent), or `.textContent =`.
        assert!(code.contains("node.textContent = value"));
        // The trace link is built from an http(s) template only.
        assert!(code.contains("/^https?:\\/\\//i.test(data.trace_url"));
    }
}
