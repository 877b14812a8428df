//! One judgement per group, on a real broker (tansu, or LIVECHECK_TEST_BROKERS): three workers in
//! one consumer group over 8 partitions, each with its status server and the same alert
//! webhook. A broken stage raises exactly one suite FAIL and one webhook call, and every worker
//! shows the group's counts; a case tested often enough for the group, though not for any one
//! worker, never stalls.
//!
//! Every server here listens on 127.0.0.1 and is stopped by the test that started it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use livecheck::alerts::{Webhook, WebhookConfig};
use livecheck::metrics::Metrics;
use livecheck::status::StatusServer;
use livecheck::transport::kafka::{KafkaConfig, KafkaTransport};
use livecheck::worker::SpawnedWorker;
use livecheck::{
    Case, CaseConfig, Observer, State, TestReport, Worker, WorkerHandle, WorkerSettings,
};
use livecheck_tests::broker::Broker;
use livecheck_tests::cases::{flow, Step, FIRST};
use livecheck_tests::support::{plain_consumer, service_client, unique_config};
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use serde_json::Value;
use tokio::sync::oneshot;

const CASE: &str = "it.flow";
const WORKERS: usize = 3;
const PARTITIONS: i32 = 8;

fn step(value: &str) -> Step {
    Step {
        stage: 1,
        value: value.into(),
    }
}

/// The ids of the test reports a worker published, in order.
#[derive(Clone, Default)]
struct Own(Arc<Mutex<Vec<String>>>);

impl Observer for Own {
    fn on_report(&self, report: &TestReport) {
        if let Some(test) = &report.test {
            self.0.lock().unwrap().push(test.id.clone());
        }
    }
}

/// One worker of the group, in this process, with a status server and an alert webhook.
struct Member {
    handle: WorkerHandle,
    transport: Arc<KafkaTransport>,
    server: StatusServer,
    webhook: Webhook,
    own: Own,
    worker: SpawnedWorker,
}

impl Member {
    async fn start(config: &KafkaConfig, case: CaseConfig, hook: &str) -> Member {
        let transport = Arc::new(KafkaTransport::new(config.clone()).expect("transport"));
        let webhook = Webhook::start(WebhookConfig::new(hook).unwrap()).unwrap();
        let metrics = Metrics::new();
        metrics.track_alerts(&webhook);
        let own = Own::default();
        let worker = Worker::builder_arc(transport.clone())
            .cases([case])
            .settings({
                let mut settings = WorkerSettings::default();
                settings.shutdown_grace = Duration::from_secs(5);
                settings
            })
            .observer(metrics.clone())
            .observer(webhook.clone())
            .observer(own.clone())
            .build()
            .expect("worker");
        let handle = worker.handle();
        let server = StatusServer::start("127.0.0.1:0".parse().unwrap(), handle.clone(), metrics)
            .await
            .expect("status server");
        Member {
            handle,
            transport,
            server,
            webhook,
            own,
            worker: worker.spawn(),
        }
    }

    fn assigned(&self) -> Vec<i32> {
        self.transport.assignment().borrow().clone()
    }

    async fn api_case(&self) -> Value {
        let url = format!("{}api/cases/{CASE}", self.server.url());
        let response = reqwest::get(&url).await.expect("GET the case");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    async fn api_worker(&self) -> Value {
        let url = format!("{}api/cases", self.server.url());
        let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        body["worker"].clone()
    }

    fn own(&self) -> Vec<String> {
        self.own.0.lock().unwrap().clone()
    }

    async fn stop(self) {
        self.worker.stop().await.expect("worker run");
        self.server.stop().await;
    }
}

/// Starts the group and waits until its members share the 8 partitions, each with some.
async fn start_group(config: &KafkaConfig, case: CaseConfig, hook: &str) -> Vec<Member> {
    KafkaTransport::new(config.clone())
        .unwrap()
        .ensure_topics()
        .await
        .expect("topics");
    let mut members = Vec::new();
    for _ in 0..WORKERS {
        members.push(Member::start(config, case, hook).await);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let assigned: Vec<Vec<i32>> = members.iter().map(Member::assigned).collect();
        let all: BTreeSet<i32> = assigned.iter().flatten().copied().collect();
        let total: usize = assigned.iter().map(Vec::len).sum();
        let shared = all.len() == PARTITIONS as usize && total == PARTITIONS as usize;
        if shared && assigned.iter().all(|a| !a.is_empty()) {
            return members;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the group did not share the partitions in time: {assigned:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the test's webhook received.
#[derive(Clone, Default)]
struct Hook {
    calls: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn receive(Extract(hook): Extract<Hook>, Json(body): Json<Value>) -> StatusCode {
    hook.calls.fetch_add(1, Ordering::SeqCst);
    hook.bodies.lock().unwrap().push(body);
    StatusCode::OK
}

struct HookServer {
    hook: Hook,
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl HookServer {
    async fn start() -> HookServer {
        let hook = Hook::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(hook.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        HookServer {
            hook,
            url,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A report read from the report topic, with when it was published.
struct Read {
    report: TestReport,
    at: chrono::DateTime<chrono::Utc>,
}

/// Reads the report topic until `done` holds for what was read, or panics after `within`.
async fn read_reports(
    consumer: &StreamConsumer,
    seen: &mut Vec<Read>,
    within: Duration,
    done: impl Fn(&[Read]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !done(seen) {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => message,
            Ok(Err(_)) => continue,
            Err(_) => panic!("timed out on the report topic with {} reports", seen.len()),
        };
        let report = livecheck::codec::decode_report(message.payload().unwrap_or_default())
            .expect("a report");
        let at = message
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .expect("a timestamp");
        seen.push(Read { report, at });
    }
}

/// Reads the report topic for `quiet` more, to see what else comes.
async fn read_for(consumer: &StreamConsumer, seen: &mut Vec<Read>, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    while let Ok(message) = tokio::time::timeout_at(deadline, consumer.recv()).await {
        let Ok(message) = message else { continue };
        let report = livecheck::codec::decode_report(message.payload().unwrap_or_default())
            .expect("a report");
        let at = message
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .expect("a timestamp");
        seen.push(Read { report, at });
    }
}

fn suites(seen: &[Read]) -> Vec<&Read> {
    seen.iter().filter(|r| r.report.is_suite()).collect()
}

fn test_reports(seen: &[Read]) -> usize {
    seen.iter().filter(|r| !r.report.is_suite()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stage_raises_one_suite_fail_and_one_alert_and_every_worker_shows_the_group() {
    const FAILURES: usize = 12;
    let broker = Broker::start();
    let config = unique_config(&broker, PARTITIONS);
    let hook = HookServer::start().await;
    let mut case = CaseConfig::from(flow.descriptor());
    case.options.max_consecutive_failures = 4;
    let members = start_group(&config, case, &hook.url).await;
    let reports = plain_consumer(&broker, &config.topics.reports);

    // The stage is broken: every test sees the wrong value and FAILs.
    let service = service_client(&config);
    let ids: Vec<String> = (0..FAILURES).map(|i| format!("broken-{i}")).collect();
    service
        .scope(async {
            for id in &ids {
                flow.trigger(id, "a".into(), 1, 20_000).await.unwrap();
                FIRST.send_to(id, &step("b")).await.unwrap();
            }
        })
        .await;
    let mut seen = Vec::new();
    read_reports(&reports, &mut seen, Duration::from_secs(60), |seen| {
        test_reports(seen) >= FAILURES && !suites(seen).is_empty()
    })
    .await;
    // Every worker has counted every test; then anything else published comes within a few
    // health ticks (1 s each).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for member in &members {
        while member.handle.status(CASE).unwrap().total_failures < FAILURES as u64 {
            assert!(tokio::time::Instant::now() < deadline, "a worker lags");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    read_for(&reports, &mut seen, Duration::from_secs(3)).await;

    assert_eq!(test_reports(&seen), FAILURES, "one report per test");
    let suite: Vec<_> = suites(&seen).iter().map(|r| r.report.state).collect();
    assert_eq!(suite, [State::Fail], "one suite report for the group");
    let error = suites(&seen)[0].report.error.clone().unwrap();
    assert!(
        error.starts_with("4 consecutive failures (max 4)"),
        "{error}"
    );

    // The tests were spread over the workers; each shows the group's counts.
    let own: Vec<Vec<String>> = members.iter().map(Member::own).collect();
    let ran: Vec<usize> = own.iter().map(Vec::len).collect();
    eprintln!("tests run by each worker: {ran:?}; suite reports on the topic: 1");
    assert_eq!(ran.iter().sum::<usize>(), FAILURES, "{ran:?}");
    assert!(
        ran.iter().filter(|n| **n > 0).count() >= 2,
        "the tests ran on one worker only: {ran:?}"
    );
    let leaders = members.iter().filter(|m| m.handle.is_leader()).count();
    assert_eq!(leaders, 1);
    for (member, ran) in members.iter().zip(&ran) {
        let case = member.api_case().await;
        assert_eq!(case["total_by_state"]["FAIL"], FAILURES, "{case}");
        assert_eq!(case["consecutive_failures"], FAILURES, "{case}");
        assert_eq!(case["suite_failed"], true, "{case}");
        assert_eq!(case["state"], "FAIL", "{case}");
        let worker = member.api_worker().await;
        assert_eq!(
            worker["judgement"]["peer_reports"],
            FAILURES - ran,
            "{worker}"
        );
        assert_eq!(worker["tests_received"], *ran, "{worker}");
    }

    // One webhook call, from the leader, for the three workers.
    for member in &members {
        assert!(member.webhook.flush(Duration::from_secs(20)).await);
    }
    assert_eq!(hook.hook.calls.load(Ordering::SeqCst), 1);
    let body = hook.hook.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["event"], "fail");
    assert_eq!(body["case"], CASE);

    for member in members {
        member.stop().await;
    }
    hook.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_tested_often_enough_for_the_group_never_stalls() {
    const TESTS: usize = 30;
    const EVERY: Duration = Duration::from_secs(1);
    const WARN: Duration = Duration::from_secs(4);
    let broker = Broker::start();
    let config = unique_config(&broker, PARTITIONS);
    let hook = HookServer::start().await;
    let mut case = CaseConfig::from(flow.descriptor());
    case.options.warn_stalled_after = WARN;
    case.options.state_transition_delay = Duration::ZERO;
    let members = start_group(&config, case, &hook.url).await;
    let reports = plain_consumer(&broker, &config.topics.reports);

    // A test every second, spread over 8 partitions and 3 workers: each worker gets one every
    // ~3 s on average, with gaps longer than warn_stalled_after; the group one every second.
    let service = service_client(&config);
    let started = chrono::Utc::now();
    let mut tick = tokio::time::interval(EVERY);
    let ids: Vec<String> = (0..TESTS).map(|i| format!("steady-{i}")).collect();
    for id in &ids {
        tick.tick().await;
        service
            .scope(async {
                flow.trigger(id, "a".into(), 1, 20_000).await.unwrap();
                FIRST.send_to(id, &step("a")).await.unwrap();
            })
            .await;
    }
    let mut seen = Vec::new();
    read_reports(&reports, &mut seen, Duration::from_secs(60), |seen| {
        test_reports(seen) >= TESTS
    })
    .await;
    read_for(&reports, &mut seen, Duration::from_secs(2)).await;

    // A STALL from before the tests began (the group's join can outlast warn_stalled_after) is
    // legitimate; none may come once tests flow.
    let stalls: Vec<_> = suites(&seen)
        .into_iter()
        .filter(|r| r.report.state == State::Stall)
        .filter(|r| r.at > started + chrono::Duration::from_std(WARN).unwrap())
        .map(|r| (r.at, r.report.error.clone()))
        .collect();
    assert_eq!(
        stalls,
        [],
        "no STALL while the group gets a test every second"
    );
    assert!(seen
        .iter()
        .filter(|r| !r.report.is_suite())
        .all(|r| r.report.state == State::Pass));

    // The scenario discriminates: some worker went longer than warn_stalled_after without a
    // test of its own (each test's partition is fixed by its id).
    let longest_gap = members
        .iter()
        .map(|m| {
            let own: BTreeSet<usize> = m
                .own()
                .iter()
                .map(|id| id["steady-".len()..].parse().unwrap())
                .collect();
            let mut longest = 0;
            let mut gap = 0;
            for i in 0..TESTS {
                gap = if own.contains(&i) { 0 } else { gap + 1 };
                longest = longest.max(gap);
            }
            longest
        })
        .max()
        .unwrap();
    eprintln!("longest run of tests a worker did not get: {longest_gap} (1 s apart)");
    assert!(
        longest_gap as u32 > WARN.as_secs() as u32,
        "every worker got a test at least every {} s: the test proves nothing",
        WARN.as_secs()
    );

    for member in &members {
        let case = member.api_case().await;
        assert_eq!(case["total_by_state"]["PASS"], TESTS, "{case}");
        assert_eq!(case["suite_failed"], false, "{case}");
        assert_eq!(case["state"], "PASS", "{case}");
        assert!(case["stalled_for_seconds"].is_null(), "{case}");
    }
    for member in members {
        member.stop().await;
    }
    hook.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_does_not_repeat_the_fail_and_a_restarted_worker_rebuilds_the_view() {
    const FAILURES: usize = 8;
    let broker = Broker::start();
    let config = unique_config(&broker, PARTITIONS);
    let hook = HookServer::start().await;
    let mut case = CaseConfig::from(flow.descriptor());
    case.options.max_consecutive_failures = 4;
    case.options.state_transition_delay = Duration::ZERO;
    let mut members = start_group(&config, case, &hook.url).await;
    let reports = plain_consumer(&broker, &config.topics.reports);
    let service = service_client(&config);
    service
        .scope(async {
            for i in 0..FAILURES {
                let id = format!("broken-{i}");
                flow.trigger(&id, "a".into(), 1, 20_000).await.unwrap();
                FIRST.send_to(&id, &step("b")).await.unwrap();
            }
        })
        .await;
    let mut seen = Vec::new();
    read_reports(&reports, &mut seen, Duration::from_secs(60), |seen| {
        test_reports(seen) >= FAILURES && !suites(seen).is_empty()
    })
    .await;
    let counted = |handle: &WorkerHandle, failures: usize| {
        let status = handle.status(CASE).unwrap();
        status.total_failures == failures as u64 && status.suite_failed
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !members.iter().all(|m| counted(&m.handle, FAILURES)) {
        assert!(tokio::time::Instant::now() < deadline, "a worker lags");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The leader goes; another worker takes partition 0 and leads.
    let leader = members
        .iter()
        .position(|m| m.handle.is_leader())
        .expect("a leader");
    let old = members.remove(leader);
    assert!(old.webhook.flush(Duration::from_secs(20)).await);
    old.stop().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !members.iter().any(|m| m.handle.is_leader()) {
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A worker starts afresh: it reads the group's recent reports before taking tests.
    let restarted = Member::start(&config, case, &hook.url).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !counted(&restarted.handle, FAILURES) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no view after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    members.push(restarted);
    // Health ticks every second: a repeated FAIL would be out within a few.
    read_for(&reports, &mut seen, Duration::from_secs(4)).await;
    let states: Vec<_> = suites(&seen).iter().map(|r| r.report.state).collect();
    assert_eq!(
        states,
        [State::Fail],
        "the new leader does not repeat the FAIL"
    );

    // A newer test passes: one recovery, from the new leader.
    service
        .scope(async {
            flow.trigger("fixed", "a".into(), 1, 20_000).await.unwrap();
            FIRST.send_to("fixed", &step("a")).await.unwrap();
        })
        .await;
    read_reports(&reports, &mut seen, Duration::from_secs(60), |seen| {
        suites(seen).len() >= 2
    })
    .await;
    read_for(&reports, &mut seen, Duration::from_secs(3)).await;
    let states: Vec<_> = suites(&seen).iter().map(|r| r.report.state).collect();
    assert_eq!(states, [State::Fail, State::Pass]);
    for member in &members {
        assert!(member.webhook.flush(Duration::from_secs(20)).await);
    }
    let events: Vec<Value> = hook
        .hook
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["event"].clone())
        .collect();
    assert_eq!(events, ["fail", "recovery"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for member in &members {
        loop {
            let case = member.api_case().await;
            if case["total_by_state"]["PASS"] == 1 {
                assert_eq!(case["total_by_state"]["FAIL"], FAILURES, "{case}");
                assert_eq!(case["suite_failed"], false, "{case}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{case}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for member in members {
        member.stop().await;
    }
    hook.stop().await;
}
