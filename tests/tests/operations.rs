//! The operator's surface: the status server's JSON API and `/metrics` against the reports of a
//! run, the alert webhook, the dashboard in a real browser (headless Chromium), and the
//! `livecheck` command line (help, bad values, status page, readiness, JSON logs).
//!
//! Every server here listens on 127.0.0.1 and is stopped by the test that started it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use livecheck::alerts::{Webhook, WebhookConfig};
use livecheck::metrics::Metrics;
use livecheck::status::{StatusOptions, StatusServer};
use livecheck::transport::kafka::KafkaConfig;
use livecheck::worker::SpawnedWorker;
use livecheck::{
    Case, CaseConfig, Client, MemoryTransport, Observer, SignalEvent, State, TestExecution,
    TestReport, Worker, WorkerHandle,
};
use livecheck_tests::cases::{flow, Step, FIRST};
use livecheck_tests::support::{read_log, service_client, terminate};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// The tracing backend the status page links tests to, in these tests.
const TRACE_URL: &str = "https://traces.example/trace/{trace_id}";

const WORKER: &str = env!("CARGO_BIN_EXE_livecheck-test-worker");

/// Passes or fails as told.
#[livecheck::case(name = "ops.verdict", probability = 1.0, warn_stalled_after = "1h")]
async fn verdict(pass: bool) -> livecheck::Result {
    livecheck::ensure!(pass, "told to fail");
    Ok(())
}

/// Waits for its signal and checks the value it carries.
#[livecheck::case(name = "ops.signalled", probability = 1.0, warn_stalled_after = "1h")]
async fn signalled(expect: u32) -> livecheck::Result {
    let got = OPS_READY.wait().timeout("30s").await?;
    livecheck::ensure!(got == expect, "got {got}, want {expect}");
    Ok(())
}

livecheck::signal! {
    /// The service under test is ready, with a number.
    pub OPS_READY: u32 for signalled;
}

/// Waits briefly for a signal nobody sends in these tests: a TIMEOUT naming `ops_shipped`.
#[livecheck::case(name = "ops.waits", probability = 1.0, warn_stalled_after = "1h")]
async fn waits() -> livecheck::Result {
    OPS_SHIPPED.wait().timeout("200ms").await?;
    Ok(())
}

livecheck::signal! {
    /// The order shipped.
    pub OPS_SHIPPED: bool for waits;
}

fn case<C: Case>(case: C) -> CaseConfig {
    CaseConfig::from(case.descriptor())
}

/// `ops.verdict` with a suite FAIL after two failures in a row, and its recovery reported as
/// soon as a newer test passes (no `state_transition_delay` after the FAIL).
fn verdict_failing_after_two() -> CaseConfig {
    let mut config = case(verdict);
    config.options.max_consecutive_failures = 2;
    config.options.state_transition_delay = Duration::ZERO;
    config
}

struct Collect(mpsc::UnboundedSender<TestReport>);

impl Observer for Collect {
    fn on_report(&self, report: &TestReport) {
        let _ = self.0.send(report.clone());
    }
}

/// A worker on the in-memory transport with metrics, a status server on a free loopback port,
/// and every report collected.
struct Running {
    handle: WorkerHandle,
    client: Client,
    server: StatusServer,
    reports: mpsc::UnboundedReceiver<TestReport>,
    seen: Vec<TestReport>,
    worker: SpawnedWorker,
}

impl Running {
    async fn start(cases: Vec<CaseConfig>, webhook: Option<&Webhook>) -> Running {
        let metrics = Metrics::new();
        let (tx, reports) = mpsc::unbounded_channel();
        let mut builder = Worker::builder(MemoryTransport::new())
            .cases(cases)
            .observer(metrics.clone());
        // Observers see a report in the order they were added: once `Collect` has seen a suite
        // report, the webhook has queued its alert.
        if let Some(webhook) = webhook {
            builder = builder.observer(webhook.clone());
            metrics.track_alerts(webhook);
        }
        let builder = builder.observer(Collect(tx));
        let worker = builder.build().expect("worker");
        let handle = worker.handle();
        let client = worker.client();
        let server = StatusServer::start_with(
            "127.0.0.1:0".parse().unwrap(),
            handle.clone(),
            metrics.clone(),
            StatusOptions::default().trace_url(TRACE_URL),
        )
        .await
        .expect("status server");
        assert!(server.local_addr().ip().is_loopback());
        let worker = worker.spawn();
        Running {
            handle,
            client,
            server,
            reports,
            seen: Vec::new(),
            worker,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.url(), path.trim_start_matches('/'))
    }

    /// Waits for the report of test `id`.
    async fn report(&mut self, id: &str) -> TestReport {
        loop {
            let found = self
                .seen
                .iter()
                .find(|r| r.test.as_ref().is_some_and(|t| t.id == id));
            if let Some(report) = found {
                return report.clone();
            }
            let report = tokio::time::timeout(Duration::from_secs(30), self.reports.recv())
                .await
                .unwrap_or_else(|_| panic!("no report for {id} in time"))
                .expect("the worker stopped");
            self.seen.push(report);
        }
    }

    /// Waits until `n` suite reports have been produced; returns their states.
    async fn suite_states(&mut self, n: usize) -> Vec<State> {
        let suites = |seen: &[TestReport]| -> Vec<State> {
            seen.iter()
                .filter(|r| r.is_suite())
                .map(|r| r.state)
                .collect()
        };
        while suites(&self.seen).len() < n {
            let report = tokio::time::timeout(Duration::from_secs(30), self.reports.recv())
                .await
                .unwrap_or_else(|_| panic!("fewer than {n} suite reports in time"))
                .expect("the worker stopped");
            self.seen.push(report);
        }
        suites(&self.seen)
    }

    /// Every report produced so far.
    fn all_reports(&mut self) -> &[TestReport] {
        while let Ok(report) = self.reports.try_recv() {
            self.seen.push(report);
        }
        &self.seen
    }

    async fn verdict(&mut self, id: &str, pass: bool) -> TestReport {
        self.client
            .scope(verdict.trigger(id, pass))
            .await
            .expect("trigger");
        self.report(id).await
    }

    async fn signalled(&mut self, id: &str, expect: u32, value: u32) -> TestReport {
        self.client
            .scope(async {
                signalled.trigger(id, expect).await.expect("trigger");
                OPS_READY.send_to(id, &value).await.expect("signal");
            })
            .await;
        self.report(id).await
    }

    async fn stop(self) {
        self.worker.stop().await.expect("worker run");
        self.server.stop().await;
    }
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn get_json(url: &str) -> Value {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// One sample of the Prometheus text format: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value: f64 = value.parse().expect("sample value");
            let Some((name, labels)) = series.split_once('{') else {
                return (series.to_owned(), BTreeMap::new(), value);
            };
            let mut map = BTreeMap::new();
            let mut rest = labels.trim_end_matches('}');
            while let Some((key, after)) = rest.split_once("=\"") {
                let end = after.find('"').expect("closing quote");
                map.insert(
                    key.trim_start_matches(',').to_owned(),
                    after[..end].to_owned(),
                );
                rest = &after[end + 1..];
            }
            (name.to_owned(), map, value)
        })
        .collect()
}

/// The value of the series `name` with exactly `labels`, if it is there.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| *v)
}

/// Every series docs/operations.md lists, by name.
const SERIES: &[&str] = &[
    "livecheck_build_info",
    "livecheck_tests_total",
    "livecheck_suite_reports_total",
    "livecheck_test_runtime_seconds_bucket",
    "livecheck_test_runtime_seconds_count",
    "livecheck_test_runtime_seconds_sum",
    "livecheck_signal_latency_seconds_bucket",
    "livecheck_signal_latency_seconds_count",
    "livecheck_signal_latency_seconds_sum",
    "livecheck_case_state",
    "livecheck_case_suite_failing",
    "livecheck_case_consecutive_failures",
    "livecheck_last_test_timestamp_seconds",
    "livecheck_tests_in_flight",
    "livecheck_worker_ready",
    "livecheck_worker_leader",
    "livecheck_stored_signals",
    "livecheck_tests_received_total",
    "livecheck_signals_received_total",
    "livecheck_skipped_messages_total",
    "livecheck_report_publish_errors_total",
    "livecheck_fake_request_errors_total",
    "livecheck_consumer_errors_total",
    "livecheck_messages_dropped_total",
    "livecheck_peer_reports_total",
    "livecheck_already_reported_total",
];

fn unix_now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

/// Runs `text` through `promtool check metrics` (Prometheus' own lint of the exposition
/// format and naming conventions), which must accept it with no complaint. Without promtool
/// on PATH the check is skipped with a note, unless `LIVECHECK_REQUIRE_PROMTOOL=1` (CI).
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let required = std::env::var("LIVECHECK_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1");
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
            eprintln!("promtool not found: /metrics not linted (apt-get install prometheus)");
            return;
        }
        Err(error) => panic!("cannot run promtool: {error}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\n--- /metrics:\n{text}",
        out.status
    );
}

async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_metrics_match_the_reports_of_a_run() {
    let mut run = Running::start(vec![case(verdict), case(signalled)], None).await;
    assert_eq!(get(&run.url("/healthz")).await, (200, "ok\n".into()));
    let url = run.url("/readyz");
    wait_until("/readyz", Duration::from_secs(10), || async {
        get(&url).await.0 == 200
    })
    .await;

    // 7 passes and 3 failures of one case; 3 passes and 1 failure of a case with a signal.
    for i in 0..10 {
        run.verdict(&format!("v-{i}"), i % 3 != 0 || i == 9).await;
    }
    for i in 0..4 {
        run.signalled(&format!("s-{i}"), 5, if i == 2 { 6 } else { 5 })
            .await;
    }
    // Bad input: a test and a signal for a case this worker does not run.
    let now = chrono::Utc::now();
    let stranger = TestExecution::new("x-1", "ops.nobody", now, now + chrono::Duration::hours(1));
    run.client
        .transport()
        .publish_test(&stranger)
        .unwrap()
        .await
        .unwrap();
    let signal = SignalEvent {
        signal_name: "nothing".into(),
        case_name: "ops.nobody".into(),
        key: "x-1".into(),
        value: Value::Null,
    };
    run.client
        .transport()
        .publish_signal(&signal, None)
        .unwrap()
        .await
        .unwrap();
    let handle = run.handle.clone();
    wait_until("the skipped messages", Duration::from_secs(10), || async {
        let stats = handle.stats();
        stats.unknown_case_tests == 1 && stats.unknown_case_signals == 1
    })
    .await;

    // What the reports say, counted here.
    let reports = run.all_reports().to_vec();
    assert!(reports.iter().all(|r| !r.is_suite()), "{reports:?}");
    let mut by_case_state: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in &reports {
        *by_case_state
            .entry((r.case_name.clone(), r.state.as_str().to_owned()))
            .or_default() += 1;
    }
    assert_eq!(
        by_case_state,
        BTreeMap::from([
            (("ops.signalled".into(), "FAIL".into()), 1),
            (("ops.signalled".into(), "PASS".into()), 3),
            (("ops.verdict".into(), "FAIL".into()), 3),
            (("ops.verdict".into(), "PASS".into()), 7),
        ])
    );

    // The JSON API.
    let api = get_json(&run.url("/api/cases")).await;
    let cases = api["cases"].as_array().expect("cases");
    let names: Vec<_> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ops.signalled", "ops.verdict"]);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        for state in ["PASS", "FAIL"] {
            assert_eq!(
                c["total_by_state"][state].as_u64(),
                Some(by_case_state[&(name.to_owned(), state.to_owned())]),
                "{name} {state}"
            );
        }
    }
    let verdict_api = &cases[1];
    assert_eq!(verdict_api["last_outcome"], "PASS");
    assert_eq!(verdict_api["state"], "PASS");
    assert_eq!(verdict_api["tests_last_hour"], 10);
    assert_eq!(verdict_api["consecutive_failures"], 0);
    assert_eq!(verdict_api["last_error"], "told to fail");
    assert_eq!(verdict_api["options"]["max_consecutive_failures"], 30);
    assert!(verdict_api["runtime_median_seconds"].as_f64().is_some());
    assert!(verdict_api["runtime_p99_seconds"].as_f64().is_some());
    assert!(cases[0]["signal_latency_median_seconds"]["ops_ready"]
        .as_f64()
        .is_some());
    let worker = &api["worker"];
    assert_eq!(worker["ready"], true);
    assert_eq!(worker["tests_received"], 15);
    assert_eq!(worker["signals_received"], 5);
    assert_eq!(worker["skipped"]["unknown_case_tests"], 1);
    assert_eq!(worker["skipped"]["unknown_case_signals"], 1);
    assert_eq!(worker["in_flight"], 0);

    let one = get_json(&run.url("/api/cases/ops.verdict")).await;
    assert_eq!(one["name"], "ops.verdict");
    assert_eq!(one["total_by_state"], verdict_api["total_by_state"]);
    let (status, body) = get(&run.url("/api/cases/ops.nobody")).await;
    assert_eq!(status, 404);
    assert!(body.contains("no case named"), "{body}");

    // /metrics: the same figures.
    let response = reqwest::get(run.url("/metrics")).await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    let metrics = samples(&text);
    for ((case, state), count) in &by_case_state {
        assert_eq!(
            sample(
                &metrics,
                "livecheck_tests_total",
                &[("case", case), ("state", state)]
            ),
            Some(*count as f64),
            "livecheck_tests_total{{case={case},state={state}}}"
        );
    }
    for state in ["ERROR", "TIMEOUT", "SKIP"] {
        assert_eq!(
            sample(
                &metrics,
                "livecheck_tests_total",
                &[("case", "ops.verdict"), ("state", state)]
            ),
            Some(0.0)
        );
    }
    for case in ["ops.verdict", "ops.signalled"] {
        let ran = reports.iter().filter(|r| r.case_name == case).count();
        assert_eq!(
            sample(
                &metrics,
                "livecheck_test_runtime_seconds_count",
                &[("case", case)]
            ),
            Some(ran as f64)
        );
        let sum: f64 = reports
            .iter()
            .filter(|r| r.case_name == case)
            .filter_map(|r| r.runtime)
            .sum();
        let exported = sample(
            &metrics,
            "livecheck_test_runtime_seconds_sum",
            &[("case", case)],
        )
        .unwrap();
        assert!((exported - sum).abs() < 1e-9, "{exported} vs {sum}");
    }
    let latencies: Vec<f64> = reports
        .iter()
        .filter_map(|r| r.signal_latency.get("ops_ready").copied())
        .collect();
    assert_eq!(latencies.len(), 4);
    let labels = [("case", "ops.signalled"), ("signal", "ops_ready")];
    assert_eq!(
        sample(&metrics, "livecheck_signal_latency_seconds_count", &labels),
        Some(4.0)
    );
    let exported = sample(&metrics, "livecheck_signal_latency_seconds_sum", &labels).unwrap();
    assert!((exported - latencies.iter().sum::<f64>()).abs() < 1e-9);
    let one_case = [("case", "ops.verdict")];
    assert_eq!(
        sample(&metrics, "livecheck_case_consecutive_failures", &one_case),
        Some(0.0)
    );
    let last_test = sample(&metrics, "livecheck_last_test_timestamp_seconds", &one_case)
        .expect("last test timestamp");
    let last_report = reports
        .iter()
        .filter(|r| r.case_name == "ops.verdict")
        .filter_map(|r| r.test.as_ref())
        .map(|t| t.timestamp.timestamp_millis() as f64 / 1e3)
        .fold(f64::MIN, f64::max);
    // Reported after it was issued, and before this scrape.
    assert!(
        last_test >= last_report && last_test <= unix_now(),
        "{last_test} vs issued {last_report}"
    );
    // The last of the 10 tests passed; a failure came before it.
    let last_failure = sample(
        &metrics,
        "livecheck_last_failure_timestamp_seconds",
        &one_case,
    )
    .expect("last failure timestamp");
    assert!(last_failure < last_test, "{last_failure} vs {last_test}");
    assert_eq!(
        sample(
            &metrics,
            "livecheck_case_state",
            &[("case", "ops.verdict"), ("state", "PASS")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "livecheck_case_state",
            &[("case", "ops.verdict"), ("state", "FAIL")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&metrics, "livecheck_tests_received_total", &[]),
        Some(15.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "livecheck_skipped_messages_total",
            &[("topic", "tests"), ("reason", "unknown_case")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "livecheck_skipped_messages_total",
            &[("topic", "bus"), ("reason", "unknown_case")]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&metrics, "livecheck_worker_ready", &[]), Some(1.0));
    assert_eq!(
        sample(&metrics, "livecheck_tests_in_flight", &[]),
        Some(0.0)
    );
    // No suite report in this run; the series exists once one is counted (see the alert test).
    for name in SERIES
        .iter()
        .filter(|n| !n.starts_with("livecheck_suite_reports"))
    {
        assert!(
            metrics.iter().any(|(n, _, _)| n == name),
            "{name} missing from /metrics:\n{text}"
        );
    }
    run.stop().await;
}

/// A test whose second signal never comes is a TIMEOUT counted against that signal, the
/// first signal's series is there at 0, and the whole /metrics page passes Prometheus' lint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_that_never_comes_has_a_timeout_series_and_metrics_pass_promtool() {
    let mut run = Running::start(vec![case(flow)], None).await;
    let step = Step {
        stage: 1,
        value: "ok".into(),
    };
    run.client
        .scope(async {
            flow.trigger("half", "ok".into(), 2, 300)
                .await
                .expect("trigger");
            FIRST.send_to("half", &step).await.expect("signal");
        })
        .await;
    let report = run.report("half").await;
    assert_eq!(report.state, State::Timeout, "{report:?}");
    assert_eq!(report.timed_out_signal.as_deref(), Some("second"));

    let text = get(&run.url("/metrics")).await.1;
    let metrics = samples(&text);
    let timeouts = |signal| {
        sample(
            &metrics,
            "livecheck_signal_timeouts_total",
            &[("case", "it.flow"), ("signal", signal)],
        )
    };
    assert_eq!(timeouts("second"), Some(1.0), "{text}");
    assert_eq!(timeouts("first"), Some(0.0), "{text}");
    let one_case = [("case", "it.flow")];
    let failed = sample(
        &metrics,
        "livecheck_last_failure_timestamp_seconds",
        &one_case,
    );
    assert!(failed.is_some_and(|t| t > 0.0 && t <= unix_now()), "{text}");
    assert_eq!(
        sample(&metrics, "livecheck_last_test_timestamp_seconds", &one_case),
        failed
    );
    // The TIMEOUT's wait lasted 300 ms: in the latency histogram it is the first signal's
    // arrival only; the bucket list reaches an hour.
    assert_eq!(
        sample(
            &metrics,
            "livecheck_signal_latency_seconds_bucket",
            &[("case", "it.flow"), ("signal", "first"), ("le", "3600")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        metrics.iter().any(|(n, l, v)| n == "livecheck_build_info"
            && l.get("version").map(String::as_str) == Some(env!("CARGO_PKG_VERSION"))
            && *v == 1.0),
        "{text}"
    );
    promtool_accepts(&text);
    run.stop().await;
}

/// What the test's webhook received; it refuses the first POST to make the sender retry.
#[derive(Clone, Default)]
struct Hook {
    requests: Arc<AtomicUsize>,
    accepted: Arc<Mutex<Vec<Value>>>,
}

async fn receive(Extract(hook): Extract<Hook>, Json(body): Json<Value>) -> StatusCode {
    if hook.requests.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    hook.accepted.lock().unwrap().push(body);
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_one_fail_and_one_recovery() {
    let hook = Hook::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    let (stop_hook, hook_stopped) = oneshot::channel::<()>();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(hook.clone());
    let hook_server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = hook_stopped.await;
            })
            .await
            .unwrap();
    });

    let mut config = WebhookConfig::new(&format!("http://{hook_addr}/hook")).unwrap();
    config.first_retry_delay = Duration::from_millis(50);
    let webhook = Webhook::start(config).unwrap();
    let mut run = Running::start(vec![verdict_failing_after_two()], Some(&webhook)).await;

    // Failures past the limit of 2, then passes: one suite FAIL (one per transition), one
    // recovery.
    for (id, pass) in [
        ("f-1", false),
        ("f-2", false),
        ("f-3", false),
        ("f-4", false),
        ("p-1", true),
        ("p-2", true),
    ] {
        assert_eq!(run.verdict(id, pass).await.state == State::Pass, pass);
    }
    // Suite reports leave after the test report that caused them (one ordered queue): wait for
    // both before flushing the webhook, whose queue then holds both alerts (flushing right
    // after the last test report raced the recovery alert, 1 run in 8).
    assert_eq!(run.suite_states(2).await, [State::Fail, State::Pass]);
    assert!(
        webhook.flush(Duration::from_secs(20)).await,
        "alerts in time"
    );
    let suites: Vec<_> = run
        .all_reports()
        .iter()
        .filter(|r| r.is_suite())
        .map(|r| r.state)
        .collect();
    assert_eq!(suites, [State::Fail, State::Pass]);
    let accepted = hook.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 2, "{accepted:#?}");
    let (fail, recovery) = (&accepted[0], &accepted[1]);
    assert_eq!(fail["event"], "fail");
    assert_eq!(fail["state"], "FAIL");
    assert_eq!(fail["case"], "ops.verdict");
    assert_eq!(fail["source"], "livecheck");
    let text = fail["text"].as_str().unwrap();
    assert!(
        text.contains("`ops.verdict` is failing") && text.contains("told to fail"),
        "{text}"
    );
    assert!(fail["error"]
        .as_str()
        .unwrap()
        .contains("2 consecutive failures"));
    assert_eq!(recovery["event"], "recovery");
    assert_eq!(recovery["state"], "PASS");
    assert_eq!(recovery["case"], "ops.verdict");
    assert!(recovery["text"].as_str().unwrap().contains("recovered"));
    // The first POST was refused and retried: three requests for two alerts.
    assert_eq!(hook.requests.load(Ordering::SeqCst), 3);
    let stats = webhook.stats();
    assert_eq!(stats.sent, 2);
    assert_eq!(stats.failed, 0);

    let text = get(&run.url("/metrics")).await.1;
    let metrics = samples(&text);
    let by_state = |state| [("case", "ops.verdict"), ("state", state)];
    assert_eq!(
        sample(&metrics, "livecheck_suite_reports_total", &by_state("FAIL")),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "livecheck_suite_reports_total", &by_state("PASS")),
        Some(1.0)
    );
    assert_eq!(
        sample(&metrics, "livecheck_alerts_total", &[("outcome", "sent")]),
        Some(2.0)
    );

    run.stop().await;
    let _ = stop_hook.send(());
    hook_server.await.unwrap();
}

// The click-through of the page: one of the newest tests with its report and the log lines an
// operator greps for; a test not kept is a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_of_the_page_has_its_report_and_log_lines() {
    let mut run = Running::start(vec![case(waits)], None).await;
    run.client
        .scope(waits.trigger("w-1"))
        .await
        .expect("trigger");
    let report = run.report("w-1").await;
    assert_eq!(report.timed_out_signal.as_deref(), Some("ops_shipped"));
    let test = get_json(&run.url("/api/cases/ops.waits/tests/w-1")).await;
    assert_eq!(test["outcome"], "TIMEOUT", "{test}");
    assert_eq!(test["report"]["timed_out_signal"], "ops_shipped", "{test}");
    assert_eq!(test["report"]["test"]["id"], "w-1", "{test}");
    let log = test["log"].as_str().expect("log");
    let first = log.lines().next().unwrap();
    assert!(
        first.contains(" TIMEOUT case=ops.waits test=w-1 attempt=1 runtime=")
            && first.contains(" timed_out_signal=ops_shipped trace_id="),
        "{log}"
    );
    let trace_id = report
        .trace_id
        .as_deref()
        .expect("every triggered test has a trace");
    assert!(first.ends_with(&format!(" trace_id={trace_id}")), "{log}");
    assert_eq!(test["report"]["trace_id"], trace_id, "{test}");
    assert!(
        log.contains(&format!("\nerror: {}", report.error.clone().unwrap())),
        "{log}"
    );
    let case = get_json(&run.url("/api/cases/ops.waits")).await;
    assert_eq!(case["recent_tests"][0]["id"], "w-1");
    assert_eq!(case["recent_tests"][0]["timed_out_signal"], "ops_shipped");
    assert_eq!(test["reported_at"], case["recent_tests"][0]["reported_at"]);
    let (status, body) = get(&run.url("/api/cases/ops.waits/tests/nope")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no test \\\"nope\\\""), "{body}");
    run.stop().await;
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs headless Chromium with `args` on a fresh profile; its stdout, or a panic after a minute.
fn run_chromium(chromium: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => {
            let output = output.expect("chromium output");
            assert!(
                output.status.success(),
                "chromium failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("chromium did not finish within a minute");
        }
    }
}

/// The `<tr ...>...</tr>` of `case` in a dumped DOM.
fn row<'a>(dom: &'a str, case: &str) -> &'a str {
    let start = dom
        .find(&format!("<tr data-case=\"{case}\""))
        .unwrap_or_else(|| panic!("no row for {case} in:\n{dom}"));
    let end = dom[start..].find("</tr>").expect("row end");
    &dom[start..start + end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_every_case_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing in CI: .ci/run installs it"
        );
        eprintln!(
            "SKIPPED the_dashboard_shows_every_case_in_a_real_browser: chromium is not \
             installed (apt-get install chromium)"
        );
        return;
    };
    let mut run = Running::start(
        vec![verdict_failing_after_two(), case(signalled), case(waits)],
        None,
    )
    .await;
    for i in 0..3 {
        run.verdict(&format!("f-{i}"), false).await;
    }
    for i in 0..2 {
        run.signalled(&format!("s-{i}"), 7, 7).await;
    }
    for i in 0..2 {
        let id = format!("w-{i}");
        run.client
            .scope(waits.trigger(id.as_str()))
            .await
            .expect("trigger");
        assert_eq!(run.report(&id).await.state, State::Timeout);
    }
    let api = get_json(&run.url("/api/cases")).await;
    let url = run.url("/");
    let dump = |url: String| {
        let chromium = chromium.clone();
        tokio::task::spawn_blocking(move || {
            run_chromium(
                &chromium,
                &[
                    "--virtual-time-budget=5000".into(),
                    "--dump-dom".into(),
                    url,
                ],
            )
        })
    };
    let dom = dump(url.clone()).await.unwrap();
    // A test's panel (what a click on it opens), by its address.
    let panel = dump(format!("{url}#test/ops.waits/w-1")).await.unwrap();
    let log_at = panel.find("<pre id=\"test-log\">").expect("the log block");
    let log = &panel[log_at..panel[log_at..].find("</pre>").unwrap() + log_at];
    assert!(
        log.contains(" TIMEOUT case=ops.waits test=w-1 attempt=1 runtime=")
            && log.contains("timed_out_signal=ops_shipped"),
        "{log}"
    );
    assert!(
        panel.contains("<pre id=\"test-report\">{\n  \"case_name\": \"ops.waits\""),
        "{panel}"
    );
    // The test's trace id, linked to the tracing backend (`--trace-url`).
    let w1 = get_json(&run.url("/api/cases/ops.waits/tests/w-1")).await;
    let trace_id = w1["report"]["trace_id"].as_str().expect("a trace id");
    assert_eq!(api["trace_url"], TRACE_URL);
    let link = format!(
        "<div class=\"sub\" id=\"test-trace\">trace <a href=\"{}\" target=\"_blank\" \
         rel=\"noopener\">{trace_id}</a></div>",
        TRACE_URL.replace("{trace_id}", trace_id)
    );
    assert!(panel.contains(&link), "{link} not in {panel}");

    assert!(
        dom.contains("3 cases · 1 passing · 1 in suite failure"),
        "{dom}"
    );
    dashboard_matches_the_api(&dom, &api);
    let failing = row(&dom, "ops.verdict");
    assert!(failing.contains("data-state=\"FAIL\""), "{failing}");
    assert!(failing.contains("class=\"suite-failed\""), "{failing}");
    assert!(
        failing.contains("<span class=\"badge s-FAIL\">FAIL</span>"),
        "{failing}"
    );
    assert!(
        failing.contains("data-col=\"consecutive-failures\">3 / 2<"),
        "{failing}"
    );
    assert!(
        failing.contains("data-col=\"tests-last-hour\"") && failing.contains(">3<"),
        "{failing}"
    );
    assert!(failing.contains("told to fail"), "{failing}");
    let passing = row(&dom, "ops.signalled");
    assert!(passing.contains("data-state=\"PASS\""), "{passing}");
    assert!(
        passing.contains("<span class=\"badge s-PASS\">PASS</span>"),
        "{passing}"
    );
    assert!(
        passing.contains("data-col=\"consecutive-failures\">0 / 30<"),
        "{passing}"
    );
    assert!(passing.contains("data-signal=\"ops_ready\""), "{passing}");
    assert!(passing.contains("data-col=\"stalled-for\">–<"), "{passing}");
    for col in ["runtime-p50", "runtime-p99"] {
        let at = passing
            .find(&format!("data-col=\"{col}\">"))
            .unwrap_or_else(|| panic!("no {col}"));
        let cell = &passing[at..];
        assert!(
            cell.contains(" ms<") || cell.contains(" µs<") || cell.contains(" s<"),
            "{col}: {cell}"
        );
    }
    run.stop().await;
}

/// The `<tr class="detail" ...>...</tr>` under `case`'s row: timeline, trend, newest tests.
fn detail<'a>(dom: &'a str, case: &str) -> &'a str {
    let start = dom
        .find(&format!("<tr class=\"detail\" data-detail-for=\"{case}\""))
        .unwrap_or_else(|| panic!("no detail row for {case} in:\n{dom}"));
    // The detail row holds a table of its own: it ends before the next case's row.
    let end = dom[start..]
        .find("<tr data-case=")
        .or_else(|| dom[start..].find("</tbody></table></div></main>"))
        .unwrap_or(dom.len() - start);
    &dom[start..start + end]
}

/// The since-when, the newest tests and the per-signal timeouts on the page are the API's.
fn dashboard_matches_the_api(dom: &str, api: &Value) {
    let cases = api["cases"].as_array().expect("cases");
    let by_name = |name: &str| {
        cases
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {api}"))
    };
    // Since when: the case turned FAIL with the report of its first test, f-0.
    let verdict_api = by_name("ops.verdict");
    let since = verdict_api["state_since_at"]
        .as_str()
        .expect("state_since_at");
    let first = verdict_api["recent_tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "f-0")
        .expect("f-0 among the newest tests");
    assert_eq!(since, first["reported_at"], "{verdict_api}");
    assert!(
        verdict_api["suite_failed_since_at"].is_string(),
        "{verdict_api}"
    );
    let failing = row(dom, "ops.verdict");
    let shown = format!("data-col=\"state-since\" data-at=\"{since}\"");
    assert!(failing.contains(&shown), "{shown} in {failing}");
    let utc = since.split('.').next().unwrap().to_owned() + "Z";
    assert!(failing.contains(&utc), "{utc} in {failing}");
    assert!(
        failing.contains("data-col=\"last-pass\"><span class=\"label\">pass</span><span class=\"rel\">never</span>"),
        "{failing}"
    );
    let last_failure = verdict_api["last_failure_at"]
        .as_str()
        .expect("last_failure_at");
    assert!(
        failing.contains(&format!(
            "data-col=\"last-failure\" data-at=\"{last_failure}\""
        )),
        "{failing}"
    );

    // The newest tests, newest first, one row each, as in the API.
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let listed: Vec<&str> = case["recent_tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        let detail = detail(dom, name);
        let shown: Vec<&str> = detail
            .split("<tr data-test-id=\"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        assert_eq!(shown, listed, "{name}: {detail}");
        assert_eq!(
            detail.matches("class=\"mark o-").count(),
            listed.len(),
            "{name}: one timeline mark per test"
        );
    }
    assert_eq!(
        detail(dom, "ops.verdict")
            .matches("<tr data-test-id=")
            .count(),
        3
    );

    // Timeouts per signal: ops_shipped never came, twice; ops_ready always did.
    let waits_api = by_name("ops.waits");
    assert_eq!(
        waits_api["signals"]["ops_shipped"]["timeouts"], 2,
        "{waits_api}"
    );
    assert_eq!(
        waits_api["signals"]["ops_shipped"]["missing"], true,
        "{waits_api}"
    );
    let waiting = row(dom, "ops.waits");
    assert!(
        waiting.contains("<li data-signal=\"ops_shipped\" data-timeouts=\"2\" class=\"missing\""),
        "{waiting}"
    );
    let signalled_api = by_name("ops.signalled");
    assert_eq!(signalled_api["signals"]["ops_ready"]["timeouts"], 0);
    let passing = row(dom, "ops.signalled");
    assert!(
        passing.contains("<li data-signal=\"ops_ready\" data-timeouts=\"0\" class=\"\""),
        "{passing}"
    );
}

/// A report of `case`'s test `id`, issued `runtime` seconds before `at`, for a peer's history.
fn history_report(
    case: &str,
    id: String,
    state: State,
    at: chrono::DateTime<chrono::Utc>,
    runtime: f64,
    signal: (&str, f64),
) -> TestReport {
    let issued = at - chrono::Duration::milliseconds((runtime * 1000.0) as i64);
    let timed_out = state == State::Timeout;
    let trace = livecheck::trace::TraceParent::new_root();
    TestReport {
        case_name: case.into(),
        state,
        test: Some(TestExecution {
            traceparent: Some(trace),
            ..TestExecution::new(id, case, issued, issued + chrono::Duration::hours(1))
        }),
        trace_id: Some(trace.trace_id()),
        runtime: Some(runtime),
        signal_latency: if timed_out || signal.0.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([(signal.0.to_owned(), signal.1)])
        },
        error: timed_out
            .then(|| format!("signal {} did not arrive within {:.2}s", signal.0, runtime)),
        traceback: None,
        attempt: 1,
        timed_out_signal: timed_out.then(|| signal.0.to_owned()),
    }
}

/// Headless Chromium's screenshot of `url`, 1400 × 1000, into `path`; then its DOM.
fn screenshot(chromium: &Path, url: &str, path: &Path) -> String {
    run_chromium(
        chromium,
        &[
            "--virtual-time-budget=5000".into(),
            "--window-size=1400,1000".into(),
            "--hide-scrollbars".into(),
            format!("--screenshot={}", path.display()),
            url.into(),
        ],
    );
    assert!(
        std::fs::metadata(path).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}",
        path.display()
    );
    run_chromium(
        chromium,
        &[
            "--virtual-time-budget=5000".into(),
            "--dump-dom".into(),
            url.into(),
        ],
    )
}

// The screenshots of docs/operations.md: the page healthy (45 min of a group's history), during
// an incident (a signal stops coming: TIMEOUTs, a suite FAIL) and after recovery. Run by hand:
//   cargo test -p livecheck-tests --test operations -- --ignored status_page_screenshots
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/status-page*.png; needs chromium"]
async fn status_page_screenshots() {
    let chromium = chromium().expect("chromium (apt-get install chromium)");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let transport = Arc::new(MemoryTransport::new());
    let mut waiting = case(waits);
    waiting.options.max_consecutive_failures = 3;
    waiting.options.state_transition_delay = Duration::ZERO;
    let cases = vec![case(verdict), case(signalled), waiting];
    let worker = Worker::builder_arc(transport.clone())
        .cases(cases)
        .build()
        .expect("worker");
    let handle = worker.handle();
    let client = worker.client();
    let server = StatusServer::start_with(
        "127.0.0.1:0".parse().unwrap(),
        handle.clone(),
        Metrics::new(),
        StatusOptions::default().trace_url(TRACE_URL),
    )
    .await
    .expect("status server");
    let worker = worker.spawn();
    let base = server.url();
    let api = move |name: &'static str| {
        let url = format!("{base}api/cases/{name}");
        async move { get_json(&url).await }
    };

    // 45 minutes of the group's history (other workers' reports): a test of each case every
    // 30 s, all passing.
    let now = chrono::Utc::now();
    let wave = |i: i64, base: f64| {
        base * (1.0 + 0.3 * ((i as f64) / 7.0).sin() + 0.05 * ((i * 37 % 11) as f64))
    };
    let mut fed = 0;
    for i in 0..90 {
        let at = now - chrono::Duration::seconds(45 * 60 - i * 30);
        for (name, signal, runtime) in [
            ("ops.verdict", "", 0.004),
            ("ops.signalled", "ops_ready", 0.021),
            ("ops.waits", "ops_shipped", 0.048),
        ] {
            let report = history_report(
                name,
                format!("h{i}-{name}"),
                State::Pass,
                at,
                wave(i, runtime),
                (signal, wave(i + 3, runtime) * 0.6),
            );
            transport.publish_peer_report_at(report, at);
            fed += 1;
        }
    }
    wait_until("the history counted", Duration::from_secs(10), || {
        let counted: u64 = handle
            .statuses()
            .iter()
            .map(|s| s.total_by_state.values().sum::<u64>())
            .sum();
        std::future::ready(counted >= fed)
    })
    .await;
    let send_shipped = |id: String| {
        let client = client.clone();
        async move {
            client
                .scope(async {
                    waits.trigger(id.as_str()).await.expect("trigger");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    OPS_SHIPPED
                        .send_to(id.as_str(), &true)
                        .await
                        .expect("signal");
                })
                .await;
        }
    };
    let live = |prefix: &'static str, n: usize| {
        let client = client.clone();
        async move {
            for i in 0..n {
                client
                    .scope(verdict.trigger(format!("{prefix}-v{i}").as_str(), true))
                    .await
                    .expect("trigger");
                client
                    .scope(async {
                        let id = format!("{prefix}-s{i}");
                        signalled.trigger(id.as_str(), 7).await.expect("trigger");
                        OPS_READY.send_to(id.as_str(), &7).await.expect("signal");
                    })
                    .await;
            }
        }
    };
    live("ok", 2).await;
    for i in 0..2 {
        send_shipped(format!("ok-w{i}")).await;
    }
    wait_until("healthy", Duration::from_secs(10), || {
        let case = api("ops.waits");
        async move { case.await["recent_tests"][0]["id"] == "ok-w1" }
    })
    .await;
    let healthy = screenshot(&chromium, &server.url(), &docs.join("status-page.png"));
    assert!(
        healthy.contains("3 cases · 3 passing · 0 in suite failure"),
        "{healthy}"
    );

    // The incident: ops_shipped stops coming; each test of ops.waits times out waiting for it.
    for i in 0..5 {
        client
            .scope(waits.trigger(format!("bad-w{i}").as_str()))
            .await
            .expect("trigger");
        let id = format!("bad-w{i}");
        wait_until("a TIMEOUT", Duration::from_secs(10), || {
            let case = api("ops.waits");
            let id = id.clone();
            async move { case.await["recent_tests"][0]["id"] == id.as_str() }
        })
        .await;
    }
    live("mid", 1).await;
    let case = api("ops.waits").await;
    assert_eq!(case["suite_failed"], true, "{case}");
    let failing = screenshot(
        &chromium,
        &format!("{}#test/ops.waits/bad-w4", server.url()),
        &docs.join("status-page-failing.png"),
    );
    assert!(failing.contains("1 in suite failure"), "{failing}");
    assert!(
        failing.contains("data-signal=\"ops_shipped\" data-timeouts=\"5\" class=\"missing\""),
        "{failing}"
    );
    assert!(
        failing.contains("timed_out_signal=ops_shipped"),
        "the test's log lines: {failing}"
    );

    // Recovery: the signal comes again.
    for i in 0..3 {
        send_shipped(format!("back-w{i}")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    live("late", 1).await;
    wait_until("recovered", Duration::from_secs(10), || {
        let case = api("ops.waits");
        async move {
            let case = case.await;
            case["suite_failed"] == false && case["recent_tests"][0]["id"] == "back-w2"
        }
    })
    .await;
    let recovered = screenshot(
        &chromium,
        &server.url(),
        &docs.join("status-page-recovered.png"),
    );
    assert!(
        recovered.contains("3 cases · 3 passing · 0 in suite failure"),
        "{recovered}"
    );
    assert!(
        recovered.contains("data-signal=\"ops_shipped\" data-timeouts=\"5\" class=\"\""),
        "{recovered}"
    );

    worker.stop().await.expect("worker run");
    server.stop().await;
}

/// Kills the worker process if the test fails while it runs, and shows its log.
struct Guard {
    child: Child,
    log: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            eprintln!("--- {} ---\n{}", self.log.display(), read_log(&self.log));
        }
    }
}

/// The text after `prefix` on the first line of `log` that has it, up to a space.
fn after<'a>(log: &'a str, prefix: &str) -> Option<&'a str> {
    let at = log.find(prefix)? + prefix.len();
    log[at..].split_whitespace().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_serves_its_status_page_metrics_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let child = Command::new(WORKER)
        .env_remove("LIVECHECK_BROKERS")
        .env("RUST_LOG", "warn,livecheck=info")
        .args(["--web-bind", "127.0.0.1:0", "--log-format", "json"])
        .args(["--partitions", "2"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the worker binary");
    let mut guard = Guard {
        child,
        log: log.clone(),
    };

    // It says where its status page and its embedded broker are.
    let mut text = String::new();
    for _ in 0..300 {
        text = read_log(&log);
        if text.contains("status page at") && text.contains("embedded Kafka") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = after(&text, "status page at ")
        .unwrap_or_else(|| panic!("no status page line in:\n{text}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let brokers = after(&text, "cluster) at ")
        .unwrap_or_else(|| panic!("no broker line in:\n{text}"))
        .to_owned();
    assert_eq!(get(&format!("{base}healthz")).await, (200, "ok\n".into()));
    let ready = format!("{base}readyz");
    wait_until(
        "/readyz (a partition assignment)",
        Duration::from_secs(60),
        || async { get(&ready).await.0 == 200 },
    )
    .await;
    let dashboard = get(&base).await;
    assert_eq!(dashboard.0, 200);
    assert!(dashboard.1.contains("<title>livecheck</title>"));

    // A passing and a failing test, through the embedded broker, and a message that is no test.
    let service = service_client(&KafkaConfig::new(brokers.clone()));
    service
        .scope(async {
            let step = |value: &str| Step {
                stage: 1,
                value: value.into(),
            };
            flow.trigger("cli-pass", "ok".into(), 1, 30_000)
                .await
                .unwrap();
            FIRST.send_to("cli-pass", &step("ok")).await.unwrap();
            flow.trigger("cli-fail", "ok".into(), 1, 30_000)
                .await
                .unwrap();
            FIRST.send_to("cli-fail", &step("bad")).await.unwrap();
        })
        .await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to("livecheck")
                .key("junk")
                .payload("not a test"),
            Duration::from_secs(10),
        )
        .await
        .expect("produce junk");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let by_state = |state| [("case", "it.flow"), ("state", state)];
    let (metrics, text) = loop {
        let text = get(&format!("{base}metrics")).await.1;
        let metrics = samples(&text);
        let done = sample(&metrics, "livecheck_tests_total", &by_state("PASS")) == Some(1.0)
            && sample(&metrics, "livecheck_tests_total", &by_state("FAIL")) == Some(1.0)
            && sample(
                &metrics,
                "livecheck_skipped_messages_total",
                &[("topic", "tests"), ("reason", "undecodable")],
            ) == Some(1.0);
        if done {
            break (metrics, text);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no two reports and one skipped message in time: {metrics:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The worker binary's own page, on Kafka (the embedded broker), passes Prometheus' lint.
    promtool_accepts(&text);
    assert_eq!(sample(&metrics, "livecheck_worker_ready", &[]), Some(1.0));
    assert_eq!(sample(&metrics, "livecheck_worker_leader", &[]), Some(1.0));
    let api = get_json(&format!("{base}api/cases/it.flow")).await;
    assert_eq!(api["total_by_state"]["PASS"], 1);
    assert_eq!(api["total_by_state"]["FAIL"], 1);
    assert_eq!(api["last_error"], "first stage saw \"bad\", want \"ok\"");
    // The header's worker and group: the brokers it was given, the partitions it consumes (the
    // mock cluster describes no group: no lag, no members).
    let worker = &get_json(&format!("{base}api/cases")).await["worker"];
    assert_eq!(worker["brokers"], brokers.as_str(), "{worker}");
    assert!(
        worker["assigned_partitions"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{worker}"
    );

    let status = terminate(&mut guard.child);
    assert!(status.success(), "{status:?}");

    // JSON logs: the failed test's log carries its span, with the case and the test id.
    let text = read_log(&log);
    let in_span = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["span"]["test"] == "cli-fail");
    let event = in_span.unwrap_or_else(|| panic!("no JSON event in the test's span:\n{text}"));
    assert_eq!(event["span"]["case"], "it.flow");
    assert_eq!(event["level"], "WARN");
}

/// Arguments, an environment variable, and the flag the error must name.
type BadValue<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, &'a str);

#[test]
fn help_lists_every_flag_and_a_bad_value_is_one_line_with_exit_code_2() {
    let out = Command::new(WORKER).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--brokers", "LIVECHECK_BROKERS"),
        ("-X <KEY=VALUE>", "LIVECHECK_KAFKA_PROPERTIES"),
        ("--group-id", "LIVECHECK_GROUP_ID"),
        ("--tests-topic", "LIVECHECK_TESTS_TOPIC"),
        ("--bus-topic", "LIVECHECK_BUS_TOPIC"),
        ("--report-topic", "LIVECHECK_REPORT_TOPIC"),
        ("--partitions", "LIVECHECK_PARTITIONS"),
        ("--replication", "LIVECHECK_REPLICATION"),
        ("--codec", "LIVECHECK_CODEC"),
        ("--case <GLOB>", "LIVECHECK_CASE"),
        ("--test-concurrency", "LIVECHECK_TEST_CONCURRENCY"),
        ("--no-reports", "LIVECHECK_NO_REPORTS"),
        ("--report-replay", "LIVECHECK_REPORT_REPLAY"),
        ("--suite-reminder", "LIVECHECK_SUITE_REMINDER"),
        ("--web-bind", "LIVECHECK_WEB_BIND"),
        ("--no-web", "LIVECHECK_NO_WEB"),
        ("--trace-url", "LIVECHECK_TRACE_URL"),
        ("--alert-webhook", "LIVECHECK_ALERT_WEBHOOK"),
        ("--alert-retries", "LIVECHECK_ALERT_RETRIES"),
        ("--log-format", "LIVECHECK_LOG_FORMAT"),
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        assert!(help.contains(env), "--help lacks {env}:\n{help}");
    }
    assert!(help.contains("[default: 127.0.0.1:9999]"), "{help}");

    let bad: &[BadValue<'_>] = &[
        (&["--web-bind", "nowhere"], None, "--web-bind"),
        (&[], Some(("LIVECHECK_WEB_BIND", "nowhere")), "--web-bind"),
        (
            &["--alert-webhook", "ftp://example.invalid/"],
            None,
            "--alert-webhook",
        ),
        (&["--log-format", "xml"], None, "--log-format"),
        (
            &["--trace-url", "https://jaeger.example/trace/"],
            None,
            "--trace-url",
        ),
        (&["--test-concurrency", "0"], None, "--test-concurrency"),
        (&["--codec", "avro"], None, "--codec"),
        (&["--suite-reminder", "soon"], None, "--suite-reminder"),
        (&["-X", "no-equals-sign"], None, "-X"),
        (&["--case", "nothing.like.this*"], None, "--case"),
        (&["--no-such-flag"], None, "--no-such-flag"),
    ];
    for (args, env, flag) in bad {
        let mut command = Command::new(WORKER);
        command.args(*args);
        if let Some((key, value)) = env {
            command.env(key, value);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(stderr.starts_with("livecheck: "), "{stderr}");
    }

    // The subcommand lists the cases --case selects, with their options.
    let out = Command::new(WORKER)
        .args(["cases", "--case", "it.*"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.starts_with("it.flow\n"), "{listing}");
    assert!(listing.contains("max_consecutive_failures=30"), "{listing}");
}
