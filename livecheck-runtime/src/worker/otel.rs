//! OpenTelemetry export: the worker sends one span per test run to an OTLP/HTTP collector, in
//! the trace of the request that triggered the test.
//!
//! Off unless an endpoint is configured: give the worker an [`OtlpExport`]
//! ([`WorkerBuilder::otlp`](crate::worker::WorkerBuilder::otlp)); the `livecheck` command does
//! so for `--otlp-endpoint` / `LIVECHECK_OTLP_ENDPOINT` or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
//!
//! # The span
//!
//! - **Name** [`SPAN_NAME`] (`livecheck.test`), kind internal; the case is an attribute, so a
//!   backend groups every test under one operation name.
//! - **Trace** the test's [`TraceParent`](crate::trace::TraceParent): its trace id, and its
//!   parent id as the span's (remote) parent. The span is a child of the span of the request
//!   that triggered the test, in the same trace as the spans of the services the test passed
//!   through. A test with no `traceparent` (from a producer that does not write one) gets a
//!   trace of its own; a test whose trace is not sampled (flags `00`) is not exported.
//! - **Time** from when the test started to when its report was made (the report's
//!   `runtime`).
//! - **Status** `Ok` for PASS; `Error`, with the report's error text (its first 4 KiB), for
//!   FAIL, ERROR and TIMEOUT. SKIP reports are not exported: those tests did not run.
//! - **Attributes** `livecheck.case`, `livecheck.test_id`, `livecheck.state` (`PASS`, `FAIL`,
//!   ...), `livecheck.attempt` (1 for a first run), `livecheck.runtime_seconds`, and
//!   `livecheck.timed_out_signal` for a TIMEOUT that waited for a signal. The resource has
//!   `service.name` from `OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`), else
//!   `livecheck`.
//!
//! # Off the test's path
//!
//! A finished test's span goes into a bounded queue ([`OtlpExport::max_queue`], 2048) and the
//! worker moves on; a task of the worker sends the queue in batches (up to 512 spans, at least
//! once a second). A collector that is down or slow costs no test any time: spans that find the
//! queue full, or whose export failed (after the exporter's retries, within
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by default), are dropped and counted
//! ([`WorkerStats::spans_dropped`](crate::worker::WorkerStats::spans_dropped)), with a warning
//! the first time and at most one a minute after that. On shutdown, once the running tests are
//! done, the queue is sent for at most 5 s.
//!
//! Headers (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_HEADERS`) are read by the
//! exporter and sent with each request; they are never logged nor shown, and neither is the
//! user and password part of an endpoint URL, nor its query and fragment (shown `?<hidden>`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use opentelemetry_sdk::Resource;
use tokio::sync::{mpsc, oneshot};

use crate::lock::lock;
use crate::wire::model::{State, TestReport};

/// The name of a test's span.
pub(crate) const SPAN_NAME: &str = "livecheck.test";

/// The path of the traces endpoint under an OTLP/HTTP base URL.
const TRACES_PATH: &str = "/v1/traces";
/// The longest error text put in a span's status.
const MAX_STATUS_BYTES: usize = 4096;
/// At most one warning about dropped spans in this long.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Where and how a worker exports its tests' spans (see the [module docs](self)).
///
/// The exporter also reads the standard variables it knows: headers
/// (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TRACES_HEADERS`), the timeout
/// (`OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`) and compression.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtlpExport {
    /// The traces URL, or `None` for the one the environment gives.
    traces_url: Option<String>,
    max_queue: usize,
}

impl OtlpExport {
    /// Export to the OTLP/HTTP collector at `base_url` (e.g. `http://otel-collector:4318`), as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` would: spans are posted to `base_url` + `/v1/traces`. This
    /// wins over the endpoint variables.
    pub fn endpoint(base_url: impl AsRef<str>) -> Self {
        let base = base_url.as_ref().trim();
        // The path goes before a query (a collector may take its token there), not after it.
        let (base, query) = base.split_at(base.find(['?', '#']).unwrap_or(base.len()));
        let base = base.trim_end_matches('/');
        OtlpExport {
            traces_url: Some(format!("{base}{TRACES_PATH}{query}")),
            max_queue: 2048,
        }
    }

    /// Export as the environment says, if it names an endpoint: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// (the traces URL as it is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL, `/v1/traces`
    /// appended). `None` when neither is set (non-empty), or when `OTEL_SDK_DISABLED=true` or
    /// `OTEL_TRACES_EXPORTER=none`.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
        {
            return None;
        }
        if var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        {
            return Some(OtlpExport {
                traces_url: None,
                max_queue: 2048,
            });
        }
        None
    }

    /// Spans waiting to be sent, at most (2048); more are dropped and counted.
    pub fn max_queue(mut self, spans: usize) -> Self {
        self.max_queue = spans.max(1);
        self
    }

    /// The traces URL spans are posted to, as it can be shown (no user or password, no query).
    fn shown_url(&self) -> String {
        let url = match &self.traces_url {
            Some(url) => url.clone(),
            None => env_traces_url().unwrap_or_default(),
        };
        strip_userinfo(&url)
    }
}

impl fmt::Debug for OtlpExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExport")
            .field("traces_url", &self.shown_url())
            .field("max_queue", &self.max_queue)
            .finish()
    }
}

/// The traces URL the environment gives, as the exporter resolves it.
fn env_traces_url() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
        var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|base| format!("{}{TRACES_PATH}", base.trim().trim_end_matches('/')))
    })
}

/// `text` with the secrets of every URL in it hidden: the `user:password@` taken out, the query
/// and fragment (a collector's token may travel as `?api_key=...`) shown as `<hidden>`.
fn strip_userinfo(text: &str) -> String {
    crate::text::hide_url_secrets(text)
}

/// The export's counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) exported: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// Warns about dropped spans: the first time, then at most once per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Complaints {
    last: Mutex<Option<(std::time::Instant, u64)>>,
}

impl Complaints {
    fn dropped(&self, spans: u64, counters: &Counters, why: fmt::Arguments<'_>) {
        let total = counters.dropped.fetch_add(spans, Ordering::Relaxed) + spans;
        let mut last = lock(&self.last);
        let now = std::time::Instant::now();
        let since = match *last {
            Some((at, _)) if now.duration_since(at) < WARN_EVERY => return,
            Some((_, before)) => total - before,
            None => total,
        };
        *last = Some((now, total));
        tracing::warn!(
            dropped_since_last_warning = since,
            dropped_total = total,
            "OpenTelemetry spans of tests dropped: {why} (warned at most once a minute)"
        );
    }
}

enum Message {
    Span(Box<SpanData>),
    Shutdown(oneshot::Sender<()>),
}

/// A worker's span export: the queue's sending end, and what the export task takes at start.
pub(crate) struct Export {
    queue: mpsc::Sender<Message>,
    pub(crate) counters: Arc<Counters>,
    complaints: Arc<Complaints>,
    task: Mutex<Option<ExportTask>>,
    scope: InstrumentationScope,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

struct ExportTask {
    exporter: opentelemetry_otlp::SpanExporter,
    queue: mpsc::Receiver<Message>,
    shown_url: String,
}

impl Export {
    /// Builds the exporter (no connection is made yet); an error names what is wrong with the
    /// configuration.
    pub(crate) fn new(config: &OtlpExport) -> Result<Self, String> {
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary);
        if let Some(url) = &config.traces_url {
            builder = builder.with_endpoint(url.clone());
        }
        let mut exporter = builder
            .build()
            .map_err(|e| strip_userinfo(&e.to_string()))?;
        exporter.set_resource(&resource());
        let (queue, rx) = mpsc::channel(config.max_queue);
        Ok(Export {
            queue,
            counters: Arc::default(),
            complaints: Arc::default(),
            task: Mutex::new(Some(ExportTask {
                exporter,
                queue: rx,
                shown_url: config.shown_url(),
            })),
            scope: InstrumentationScope::builder("livecheck")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        })
    }

    /// Starts the export task (once; on the worker's runtime).
    pub(crate) fn start(&self) {
        let Some(task) = lock(&self.task).take() else {
            return;
        };
        tracing::info!(endpoint = %task.shown_url, "exporting a span per test (OpenTelemetry, OTLP/HTTP)");
        tokio::spawn(export_loop(
            task,
            self.counters.clone(),
            self.complaints.clone(),
        ));
    }

    /// Queues the span of a test that ended `ended` with `report`, without waiting: a full
    /// queue drops it.
    pub(crate) fn test_ended(&self, report: &TestReport, ended: SystemTime) {
        let Some(span) = span_of(report, ended, &self.scope) else {
            return;
        };
        match self.queue.try_send(Message::Span(Box::new(span))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.complaints.dropped(
                1,
                &self.counters,
                format_args!("the export queue is full (the collector is slow or down)"),
            ),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.complaints
                    .dropped(1, &self.counters, format_args!("the export has stopped"))
            }
        }
    }

    /// Sends what is queued and stops the exporter, within `within`.
    pub(crate) async fn shutdown(&self, within: Duration) {
        let flushed = tokio::time::timeout(within, async {
            let (done, finished) = oneshot::channel();
            if self.queue.send(Message::Shutdown(done)).await.is_ok() {
                let _ = finished.await;
            }
        })
        .await;
        if flushed.is_err() {
            tracing::warn!(
                "OpenTelemetry spans still queued after {}: not sent",
                crate::wire::duration::humanize(within)
            );
        }
    }
}

/// The resource of the spans: `service.name` from the environment, else `livecheck`.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name("livecheck").build()
    }
}

/// Sends the queue in batches: [`MAX_BATCH`] spans, or what came within [`EXPORT_EVERY`].
async fn export_loop(task: ExportTask, counters: Arc<Counters>, complaints: Arc<Complaints>) {
    const MAX_BATCH: usize = 512;
    const EXPORT_EVERY: Duration = Duration::from_secs(1);
    let ExportTask {
        exporter,
        mut queue,
        shown_url: _,
    } = task;
    let send = |batch: Vec<SpanData>| {
        let (exporter, counters, complaints) = (&exporter, &counters, &complaints);
        async move {
            let spans = batch.len() as u64;
            match exporter.export(batch).await {
                Ok(()) => {
                    counters.exported.fetch_add(spans, Ordering::Relaxed);
                }
                Err(error) => complaints.dropped(
                    spans,
                    counters,
                    format_args!(
                        "the collector did not take them: {}",
                        strip_userinfo(&error.to_string())
                    ),
                ),
            }
        }
    };
    let mut batch = Vec::new();
    let mut tick = tokio::time::interval(EXPORT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let done = loop {
        tokio::select! {
            message = queue.recv() => match message {
                Some(Message::Span(span)) => {
                    batch.push(*span);
                    if batch.len() >= MAX_BATCH {
                        send(std::mem::take(&mut batch)).await;
                    }
                }
                Some(Message::Shutdown(done)) => break Some(done),
                None => break None,
            },
            _ = tick.tick() => {
                if !batch.is_empty() {
                    send(std::mem::take(&mut batch)).await;
                }
            }
        }
    };
    // What came before the shutdown: all of it, in batches.
    while let Ok(Message::Span(span)) = queue.try_recv() {
        batch.push(*span);
    }
    for chunk in batch.chunks(MAX_BATCH) {
        send(chunk.to_vec()).await;
    }
    let _ = exporter.shutdown();
    if let Some(done) = done {
        let _ = done.send(());
    }
}

/// The span of a test from its report, or `None` for a report that is not exported (a suite
/// report, a SKIP, an unsampled trace).
fn span_of(
    report: &TestReport,
    ended: SystemTime,
    scope: &InstrumentationScope,
) -> Option<SpanData> {
    let test = report.test.as_ref()?;
    let status = match report.state {
        State::Pass => Status::Ok,
        State::Fail | State::Error | State::Timeout => {
            let text = report.error.as_deref().unwrap_or(report.state.as_str());
            Status::error(truncate(text, MAX_STATUS_BYTES).to_owned())
        }
        State::Init | State::Stall | State::Skip => return None,
    };
    let (trace_id, parent_span_id, trace_state) = match test.traceparent {
        Some(parent) if !parent.sampled() => return None,
        Some(parent) => {
            let (trace, span) = parent.ids();
            let state = test
                .tracestate
                .as_deref()
                .and_then(|s| TraceState::from_str(s).ok())
                .unwrap_or_default();
            (TraceId::from_bytes(trace), SpanId::from_bytes(span), state)
        }
        None => (
            TraceId::from_bytes(nonzero()),
            SpanId::INVALID,
            TraceState::default(),
        ),
    };
    let runtime = report.runtime.unwrap_or(0.0).max(0.0);
    let start_time = Duration::try_from_secs_f64(runtime)
        .ok()
        .and_then(|runtime| ended.checked_sub(runtime))
        .unwrap_or(ended);
    let mut attributes = vec![
        KeyValue::new("livecheck.case", report.case_name.clone()),
        KeyValue::new("livecheck.test_id", test.id.clone()),
        KeyValue::new("livecheck.state", report.state.as_str()),
        KeyValue::new("livecheck.attempt", i64::from(report.attempt)),
        KeyValue::new("livecheck.runtime_seconds", runtime),
    ];
    if let Some(signal) = &report.timed_out_signal {
        attributes.push(KeyValue::new("livecheck.timed_out_signal", signal.clone()));
    }
    Some(SpanData {
        span_context: SpanContext::new(
            trace_id,
            SpanId::from_bytes(nonzero()),
            TraceFlags::SAMPLED,
            false,
            trace_state,
        ),
        parent_span_id,
        parent_span_is_remote: parent_span_id != SpanId::INVALID,
        span_kind: SpanKind::Internal,
        name: Cow::Borrowed(SPAN_NAME),
        start_time,
        end_time: ended,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    })
}

/// Random bytes, not all zero (an id).
fn nonzero<const N: usize>() -> [u8; N] {
    loop {
        let bytes: [u8; N] = std::array::from_fn(|_| rand::random());
        if bytes != [0; N] {
            return bytes;
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_user_and_password_and_query() {
        assert_eq!(
            strip_userinfo("error sending request for url (https://u:p@collector:4318/v1/traces)"),
            "error sending request for url (https://collector:4318/v1/traces)"
        );
        assert_eq!(
            strip_userinfo("https://user:pw@host/v1/traces?token=abc"),
            "https://host/v1/traces?<hidden>"
        );
        assert_eq!(strip_userinfo("http://a/b@c"), "http://a/b@c");
        assert_eq!(strip_userinfo("no url"), "no url");
    }

    #[test]
    fn an_endpoint_is_a_base_url() {
        let export = OtlpExport::endpoint("http://collector:4318/");
        assert_eq!(
            export.traces_url.as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        let shown = format!(
            "{:?}",
            OtlpExport::endpoint("http://me:secret@collector:4318")
        );
        assert!(!shown.contains("secret"), "{shown}");
        // A token in the query (some collectors take one there) is hidden too.
        let export = OtlpExport::endpoint("https://collector:4318?api_key=secret");
        assert_eq!(
            export.shown_url(),
            "https://collector:4318/v1/traces?<hidden>"
        );
    }

    #[test]
    fn the_status_text_is_cut_at_a_character() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
