//! The `otel` feature: a span per test run, exported over OTLP/HTTP to a fake collector that
//! decodes what it gets (docs/operations.md, "Traces: OpenTelemetry export").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use livecheck::otel::OtlpExport;
use livecheck::testing::TestKit;
use livecheck::trace::TraceParent;
use livecheck::{Case, State};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::sync::mpsc;

/// Passes or fails as told.
#[livecheck::case(name = "otel.verdict", probability = 1.0)]
async fn verdict(pass: bool) -> livecheck::Result {
    livecheck::ensure!(pass, "told to fail");
    Ok(())
}

/// A fake OTLP/HTTP collector on 127.0.0.1: the body of every POST /v1/traces, as it came.
async fn collector() -> (SocketAddr, mpsc::UnboundedReceiver<Bytes>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                // An empty ExportTraceServiceResponse: everything taken.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

fn text(value: &str) -> Option<Value> {
    Some(Value::StringValue(value.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_test_is_a_span_in_the_trace_that_triggered_it() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, mut bodies) = collector().await;
        let mut kit = TestKit::builder()
            .case(verdict)
            .otlp(OtlpExport::endpoint(format!("http://{addr}")))
            .start();
        let handle = kit.handle().clone();
        // The requests that triggered the tests, each in a trace of its own.
        let pass_parent = TraceParent::new_root();
        let fail_parent = TraceParent::new_root();
        kit.run(livecheck::with_trace(
            pass_parent,
            None,
            verdict.trigger("t-pass", true),
        ))
        .await
        .unwrap();
        kit.run(livecheck::with_trace(
            fail_parent,
            None,
            verdict.trigger("t-fail", false),
        ))
        .await
        .unwrap();
        let passed = kit.report_for("t-pass").await;
        let failed = kit.report_for("t-fail").await;
        assert_eq!(passed.state, State::Pass);
        assert_eq!(failed.state, State::Fail);
        assert_eq!(
            passed.trace_id.as_deref(),
            Some(pass_parent.trace_id().as_str())
        );
        // Exported within the batch interval (1 s), before any shutdown.
        let mut spans: Vec<Span> = Vec::new();
        while spans.len() < 2 {
            let body = bodies.recv().await.expect("the collector stopped");
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                    .and_then(|kv| kv.value.clone())
                    .and_then(|v| v.value);
                assert_eq!(service, text("livecheck"));
                for scope in resource.scope_spans {
                    assert_eq!(scope.scope.map(|s| s.name).as_deref(), Some("livecheck"));
                    spans.extend(scope.spans);
                }
            }
        }
        assert_eq!(spans.len(), 2, "{spans:#?}");
        for (report, parent) in [(&passed, pass_parent), (&failed, fail_parent)] {
            let id = &report.test.as_ref().unwrap().id;
            let span = spans
                .iter()
                .find(|s| attribute(s, "livecheck.test_id") == text(id))
                .unwrap_or_else(|| panic!("no span of {id}: {spans:#?}"));
            assert_eq!(span.name, "livecheck.test");
            assert_eq!(Some(hex(&span.trace_id)), report.trace_id, "{id}");
            assert_eq!(hex(&span.trace_id), parent.trace_id(), "{id}");
            assert_eq!(hex(&span.parent_span_id), parent.parent_id(), "{id}");
            assert_eq!(span.span_id.len(), 8);
            assert_ne!(hex(&span.span_id), parent.parent_id());
            assert!(
                span.end_time_unix_nano >= span.start_time_unix_nano,
                "{span:#?}"
            );
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            assert!(
                now - span.end_time_unix_nano < 30_000_000_000,
                "ended just now"
            );
            assert_eq!(attribute(span, "livecheck.case"), text("otel.verdict"));
            assert_eq!(
                attribute(span, "livecheck.state"),
                text(report.state.as_str())
            );
            assert_eq!(
                attribute(span, "livecheck.attempt"),
                Some(Value::IntValue(1))
            );
            let status = span.status.clone().expect("a status");
            if report.state == State::Pass {
                assert_eq!(status.code, StatusCode::Ok as i32, "{id}");
            } else {
                assert_eq!(status.code, StatusCode::Error as i32, "{id}");
                assert_eq!(status.message, "told to fail");
                assert_eq!(report.error.as_deref(), Some("told to fail"));
            }
        }
        kit.shutdown().await;
        let stats = handle.stats();
        assert_eq!((stats.spans_exported, stats.spans_dropped), (2, 0));
    })
    .await
    .expect("the export test took more than 30 s");
}

/// A collector that is down slows no test and takes no worker down: its spans are dropped and
/// counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_a_test_nothing() {
    tokio::time::timeout(Duration::from_secs(30), async {
        // A port nothing listens on.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let mut kit = TestKit::builder()
            .case(verdict)
            .otlp(OtlpExport::endpoint(format!("http://{closed}")))
            .start();
        let handle = kit.handle().clone();
        let started = Instant::now();
        for i in 0..3 {
            let id = format!("down-{i}");
            kit.run(verdict.trigger(id.as_str(), true)).await.unwrap();
            assert_eq!(kit.report_for(&id).await.state, State::Pass);
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let stopping = Instant::now();
        kit.shutdown().await;
        assert!(
            stopping.elapsed() < Duration::from_secs(8),
            "{:?}",
            stopping.elapsed()
        );
        // The export gives up within its timeout: the spans are counted as dropped.
        while handle.stats().spans_dropped < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(handle.stats().spans_exported, 0);
    })
    .await
    .expect("the collector-down test took more than 30 s");
}

/// Fails, and takes no argument: `run --once` can trigger it.
#[livecheck::case(name = "otel.once", probability = 1.0)]
async fn once_fails() -> livecheck::Result {
    livecheck::fail!("broken on purpose")
}

/// A one-shot (CI) run exports its tests' spans too, flushed before it returns: a failed test
/// in a pipeline links to its trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_run_exports_its_tests_spans() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (addr, mut bodies) = collector().await;
        let transport: std::sync::Arc<dyn livecheck::Transport> =
            std::sync::Arc::new(livecheck::MemoryTransport::new());
        let summary = livecheck::once::OnceRun::new(
            transport,
            vec![livecheck::CaseConfig::from(once_fails.descriptor())],
        )
        .otlp(OtlpExport::endpoint(format!("http://{addr}")))
        .run()
        .await
        .expect("the run starts");
        let outcome = &summary.cases[0];
        assert_eq!(outcome.verdict, livecheck::once::Verdict::Fail);
        let report = outcome
            .last()
            .and_then(|a| a.report.clone())
            .expect("a report");
        let body = bodies.recv().await.expect("the collector stopped");
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
        let spans: Vec<Span> = request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect();
        assert_eq!(spans.len(), 1, "{spans:#?}");
        let span = &spans[0];
        assert_eq!(attribute(span, "livecheck.case"), text("otel.once"));
        assert_eq!(attribute(span, "livecheck.state"), text("FAIL"));
        assert_eq!(Some(hex(&span.trace_id)), report.trace_id);
        let status = span.status.clone().expect("a status");
        assert_eq!(status.code, StatusCode::Error as i32);
        assert!(status.message.contains("broken on purpose"), "{status:?}");
    })
    .await
    .expect("in time");
}
