//! Failures on a real broker: a worker killed mid-test, a broker that goes away, and the
//! `livecheck` command line with and without brokers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livecheck::transport::kafka::{KafkaConfig, KafkaTransport};
use livecheck::{Case, CaseConfig, State};
use livecheck_tests::broker::Broker;
use livecheck_tests::cases::{flow, Step, FIRST, SECOND};
use livecheck_tests::support::{
    more_reports, plain_consumer, read_log, reports_for, service_client, terminate, unique_config,
    wait_committed, wait_started, RunningWorker,
};

const WORKER: &str = env!("CARGO_BIN_EXE_livecheck-test-worker");

fn step(stage: u32, value: &str) -> Step {
    Step {
        stage,
        value: value.into(),
    }
}

fn flow_case() -> Vec<CaseConfig> {
    vec![CaseConfig::from(flow.descriptor())]
}

/// Starts the worker binary on `config`, its stderr in a temp file.
fn spawn_worker(config: &KafkaConfig, log: &std::path::Path) -> Child {
    Command::new(WORKER)
        .args(["--brokers", &config.brokers])
        .args(["--group-id", &config.group_id])
        .args(["--tests-topic", &config.topics.tests])
        .args(["--bus-topic", &config.topics.bus])
        .args(["--report-topic", &config.topics.reports])
        .args(["--partitions", &config.partitions.to_string()])
        // Several workers run at once here: each takes a free port for its status page.
        .args(["--web-bind", "127.0.0.1:0"])
        .env(
            "RUST_LOG",
            std::env::var("WORKER_LOG").unwrap_or("livecheck=info".into()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start the worker binary")
}

/// Prints a worker's log if the test fails while it is alive.
struct ShowLogOnPanic(std::path::PathBuf);

impl Drop for ShowLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.0.display(), read_log(&self.0));
        }
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_no_test_and_no_signal() {
    let broker = Broker::start();
    let config = unique_config(&broker, 4);
    KafkaTransport::new(config.clone())
        .unwrap()
        .ensure_topics()
        .await
        .unwrap();
    let reports = plain_consumer(&broker, &config.topics.reports);
    let bus = plain_consumer(&broker, &config.topics.bus);
    let dir = tempfile::tempdir().unwrap();
    let mut a = spawn_worker(&config, &dir.path().join("a.log"));
    let _show = ShowLogOnPanic(dir.path().join("a.log"));
    let service = service_client(&config);

    // 20 tests that finish on A before the kill: reported and committed once.
    let done = ids("done", 20);
    service
        .scope(async {
            for id in &done {
                flow.trigger(id.clone(), "d".into(), 1, 60_000)
                    .await
                    .unwrap();
                FIRST.send_to(id, &step(1, "d")).await.unwrap();
            }
        })
        .await;
    let finished = reports_for(&reports, &done, Duration::from_secs(60)).await;
    assert!(finished.values().all(|r| r[0].state == State::Pass));
    wait_committed(&config, 20, Duration::from_secs(30)).await;

    // 100 tests in flight on A: their first signal is sent before the kill, the second after.
    let in_flight = ids("flight", 100);
    service
        .scope(async {
            for id in &in_flight {
                flow.trigger(id.clone(), "f".into(), 2, 120_000)
                    .await
                    .unwrap();
                FIRST.send_to(id, &step(1, "f")).await.unwrap();
            }
        })
        .await;
    // A has started all 120 tests, and its progress markers say so (B's attempt numbers).
    wait_started(&bus, 120, Duration::from_secs(60)).await;
    a.kill().unwrap();
    a.wait().unwrap();

    // B joins; the group hands it A's partitions once A's session times out.
    let b = RunningWorker::start(&config, flow_case()).await;
    let mut assignment = b.transport.assignment();
    tokio::time::timeout(
        Duration::from_secs(60),
        assignment.wait_for(|p| p.len() == 4),
    )
    .await
    .expect("B never took all partitions")
    .unwrap();
    service
        .scope(async {
            for id in &in_flight {
                SECOND.send_to(id, &step(2, "f")).await.unwrap();
            }
        })
        .await;

    let mut by_id = reports_for(&reports, &in_flight, Duration::from_secs(90)).await;
    // Any duplicate comes after the first report: read on until 2 s pass without a report.
    more_reports(&reports, &mut by_id, Duration::from_secs(2)).await;
    let mut duplicates = 0;
    for id in &in_flight {
        let reports = &by_id[id];
        assert!(
            reports.iter().all(|r| r.state == State::Pass),
            "{id}: {reports:?}"
        );
        duplicates += reports.len() - 1;
    }
    for (id, reports) in finished {
        by_id.entry(id).or_default().extend(reports);
    }
    for id in &done {
        assert_eq!(
            by_id[id].len(),
            1,
            "{id} finished before the kill and ran again"
        );
    }
    // A was killed before any in-flight test finished, so it published none of their reports.
    println!("duplicate reports among the 100 in-flight tests: {duplicates}");
    assert_eq!(duplicates, 0);
    // A had started them all: B's runs are second attempts (from A's commit metadata), marked.
    let attempts: Vec<u32> = in_flight.iter().map(|id| by_id[id][0].attempt).collect();
    assert!(
        attempts.iter().all(|a| *a == 2),
        "attempts of the re-runs: {attempts:?}"
    );
    assert!(done.iter().all(|id| by_id[id][0].attempt == 1));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reconnects_after_a_broker_outage() {
    let mut broker = Broker::start_persistent();
    let config = unique_config(&broker, 2);
    let worker = RunningWorker::start(&config, flow_case()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let service = service_client(&config);
    let reports = plain_consumer(&broker, &config.topics.reports);
    let before = ids("before", 3);
    service
        .scope(async {
            for id in &before {
                flow.trigger(id.clone(), "b".into(), 1, 30_000)
                    .await
                    .unwrap();
                FIRST.send_to(id, &step(1, "b")).await.unwrap();
            }
        })
        .await;
    reports_for(&reports, &before, Duration::from_secs(60)).await;

    broker.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    broker.restart();

    let after = ids("after", 5);
    service
        .scope(async {
            for id in &after {
                flow.trigger(id.clone(), "a".into(), 1, 60_000)
                    .await
                    .unwrap();
                FIRST.send_to(id, &step(1, "a")).await.unwrap();
            }
        })
        .await;
    let by_id = reports_for(&reports, &after, Duration::from_secs(120)).await;
    for id in &after {
        assert_eq!(by_id[id][0].state, State::Pass, "{id}");
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_uses_the_embedded_broker_without_brokers_and_the_given_ones_with() {
    let dir = tempfile::tempdir().unwrap();
    // No brokers: the embedded mock cluster.
    let log = dir.path().join("embedded.log");
    let mut child = Command::new(WORKER)
        .env_remove("LIVECHECK_BROKERS")
        .args(["--web-bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        text = read_log(&log);
        if text.contains("started an embedded Kafka") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("started an embedded Kafka"), "{text}");
    assert!(text.contains("127.0.0.1:"), "{text}");
    assert!(terminate(&mut child).success());

    // With brokers: it runs tests from them and exits cleanly on SIGTERM.
    let broker = Broker::start();
    let config = unique_config(&broker, 2);
    let mut child = spawn_worker(&config, &dir.path().join("brokers.log"));
    let service = service_client(&config);
    let reports = plain_consumer(&broker, &config.topics.reports);
    // The worker creates the topics; trigger once they exist (a trigger is only queued, so it
    // cannot tell whether its topic is there).
    let mut created = false;
    for _ in 0..100 {
        let topics = broker.topics();
        if [&config.topics.tests, &config.topics.bus]
            .iter()
            .all(|t| topics.contains(t))
        {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(created, "{}", read_log(&dir.path().join("brokers.log")));
    service
        .scope(flow.trigger("cli-1", "c".into(), 1, 60_000))
        .await
        .unwrap();
    service
        .scope(FIRST.send_to("cli-1", &step(1, "c")))
        .await
        .unwrap();
    let by_id = reports_for(&reports, &["cli-1".to_string()], Duration::from_secs(60)).await;
    assert_eq!(by_id["cli-1"][0].state, State::Pass);
    let text = read_log(&dir.path().join("brokers.log"));
    assert!(!text.contains("embedded"), "{text}");
    assert!(terminate(&mut child).success());
}

#[test]
fn bad_flags_are_one_line_errors_with_exit_code_2() {
    let out = Command::new(WORKER)
        .args(["--partitions", "zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--partitions"), "{stderr}");
    let out = Command::new(WORKER).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--brokers",
        "-X",
        "--codec",
        "--test-concurrency",
        "LIVECHECK_BROKERS",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = Command::new(WORKER).arg("cases").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("it.flow"));
}
