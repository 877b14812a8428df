//! What the `livecheck` command says when something is wrong or when it stops: an unreachable
//! broker in one line, colours only on a terminal (and never with `NO_COLOR`), a bad value from
//! an environment variable under the variable's name, the demo's API port taken, a shutdown
//! that says what it waits for and ends at once on a second Ctrl-C, and tests too old to run.
//!
//! Every process here is started and stopped by its test, on 127.0.0.1, within a bounded time.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use livecheck::transport::kafka::KafkaConfig;
use livecheck::{
    Case, CaseConfig, MemoryTransport, Observer, Publish, State, TestExecution, TestReport, Worker,
    WorkerSettings,
};
use livecheck_tests::cases::{flow, Step, FIRST};
use livecheck_tests::support::{read_log, service_client};
use tokio::sync::mpsc;

const WORKER: &str = env!("CARGO_BIN_EXE_livecheck-test-worker");
const DEMO: &str = env!("CARGO_BIN_EXE_livecheck-demo");

/// A loopback port nothing listens on (a listener of ours had it a moment ago).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for `child`, killing it (and failing) past `within`.
fn wait_bounded(child: &mut Child, within: Duration, log: &Path) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {within:?}:\n{}", read_log(log));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `command` to its end within `within`; its exit status and stderr.
fn run(mut command: Command, within: Duration) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, within, &log);
    (status, read_log(&log))
}

#[test]
fn an_unreachable_broker_is_one_line_naming_it_and_the_cause() {
    for once in [false, true] {
        let port = closed_port();
        let mut command = Command::new(WORKER);
        command
            .args(["--brokers", &format!("127.0.0.1:{port}")])
            .args(["--connect-timeout", "2s", "--no-web"]);
        if once {
            command.args(["run", "--once"]);
        }
        let started = Instant::now();
        let (status, stderr) = run(command, Duration::from_secs(30));
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "livecheck: cannot reach the Kafka brokers 127.0.0.1:{port} (waited 2.00s): \
                 Connect to ipv4#127.0.0.1:{port} failed: Connection refused\n"
            )
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn a_bad_value_from_the_environment_is_reported_under_the_variable() {
    let mut command = Command::new(WORKER);
    command.env("LIVECHECK_PARTITIONS", "zero");
    let (status, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr
            .starts_with("livecheck: LIVECHECK_PARTITIONS: invalid value 'zero' for '--partitions"),
        "{stderr}"
    );
    // Given as a flag (which wins over the variable), the flag is what is named.
    let mut command = Command::new(WORKER);
    command
        .env("LIVECHECK_PARTITIONS", "zero")
        .args(["--partitions", "none"]);
    let (status, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with("livecheck: invalid value 'none' for '--partitions"),
        "{stderr}"
    );
    let mut command = Command::new(WORKER);
    command
        .args(["run", "--once"])
        .env("LIVECHECK_TIMEOUT", "soon");
    let (status, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.starts_with("livecheck: LIVECHECK_TIMEOUT: invalid value 'soon' for '--timeout"),
        "{stderr}"
    );
}

/// Runs `run --once` of the test worker (its case takes arguments and has no fake request:
/// nothing can run, so it ends at once, after its INFO lines) under a pseudo-terminal.
fn on_a_terminal(no_color: Option<&str>) -> String {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("`script` (util-linux / bsdutils) gives the command a terminal");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("terminal");
    let mut command = Command::new(script);
    command
        .args([
            "-qec",
            &format!("{WORKER} --no-web run --once"),
            "/dev/null",
        ])
        .env_remove("LIVECHECK_BROKERS")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "warn,livecheck=info");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_bounded(&mut child, Duration::from_secs(60), &log);
    let text = read_log(&log);
    assert!(text.contains("worker started"), "{text}");
    text
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    assert!(
        on_a_terminal(None).contains("\u{1b}["),
        "a terminal gets colours"
    );
    assert!(!on_a_terminal(Some("1")).contains("\u{1b}["), "NO_COLOR=1");
    // Not a terminal (a file): no colours either.
    let mut command = Command::new(WORKER);
    command
        .args(["--no-web", "run", "--once"])
        .env_remove("LIVECHECK_BROKERS")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "warn,livecheck=info");
    let (_, stderr) = run(command, Duration::from_secs(60));
    assert!(stderr.contains("worker started"), "{stderr}");
    assert!(!stderr.contains("\u{1b}["), "{stderr}");
}

#[test]
fn the_demo_exits_with_an_error_when_its_api_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut command = Command::new(DEMO);
    command
        .env_remove("LIVECHECK_BROKERS")
        .env("ORDERS_BIND", &address)
        .arg("--no-web");
    let (status, stderr) = run(command, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "livecheck: orders demo: cannot listen on {address} ("
        )),
        "{stderr}"
    );
    assert!(
        last.ends_with("set ORDERS_BIND to a free address (port 0 picks one)"),
        "{last}"
    );
    drop(taken);
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits until `log` has `text`, within `within`.
fn wait_for_log(log: &Path, text: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let now = read_log(log);
        if now.contains(text) {
            return now;
        }
        assert!(start.elapsed() < within, "no {text:?} in:\n{now}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_what_it_waits_for_and_a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let mut child = Command::new(WORKER)
        .env_remove("LIVECHECK_BROKERS")
        .env("RUST_LOG", "warn,livecheck=info")
        .args(["--web-bind", "127.0.0.1:0", "--partitions", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = wait_for_log(&log, "partitions assigned", Duration::from_secs(60));
    let brokers = text
        .split("cluster) at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no broker in:\n{text}"))
        .to_owned();
    // A test that waits a minute for a signal that never comes: still running at shutdown.
    let service = service_client(&KafkaConfig::new(brokers));
    service
        .scope(flow.trigger("slow", "x".into(), 1, 60_000))
        .await
        .unwrap();
    let status_page = text
        .split("status page at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no status page in:\n{text}"))
        .to_owned();
    let started = Instant::now();
    loop {
        let metrics = reqwest::get(format!("{status_page}metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.lines().any(|l| l == "livecheck_tests_in_flight 1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the test is not running:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    signal(&child, "INT");
    let text = wait_for_log(
        &log,
        "stopping: fake requests stopped",
        Duration::from_secs(10),
    );
    assert!(
        text.contains("press Ctrl-C again to exit at once"),
        "{text}"
    );
    assert!(
        text.contains("waiting up to 30.00s for the running tests"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("stopping: fake requests stopped"))
        .unwrap();
    assert!(line.contains("running=1"), "{line}");

    let second = Instant::now();
    signal(&child, "INT");
    let status = wait_bounded(&mut child, Duration::from_secs(10), &log);
    assert_eq!(status.code(), Some(130), "{}", read_log(&log));
    assert!(second.elapsed() < Duration::from_secs(3));
    assert!(read_log(&log).contains("second signal: exiting at once"));
}

struct Collect(mpsc::UnboundedSender<TestReport>);

impl Observer for Collect {
    fn on_report(&self, report: &TestReport) {
        let _ = self.0.send(report.clone());
    }
}

/// A test of `it.flow` triggered `age` ago, still valid for an hour.
fn test_of_age(id: &str, age: chrono::Duration) -> TestExecution {
    let now = Utc::now();
    TestExecution {
        test_args: vec!["ok".into(), 1.into(), 10_000.into()],
        ..TestExecution::new(id, "it.flow", now - age, now + chrono::Duration::hours(1))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_older_than_max_test_age_are_skip_without_running() {
    for max_test_age in [Some(Duration::from_secs(600)), None] {
        let transport = std::sync::Arc::new(MemoryTransport::new());
        let (tx, mut reports) = mpsc::unbounded_channel();
        let worker = Worker::builder_arc(transport.clone())
            .cases([CaseConfig::from(flow.descriptor())])
            .settings({
                let mut settings = WorkerSettings::default();
                settings.max_test_age = max_test_age;
                settings
            })
            .observer(Collect(tx))
            .build()
            .unwrap();
        let worker = worker.spawn();
        // An hour-old test (a backlog), then a fresh one; both get their signal.
        for (id, age) in [
            ("old", chrono::Duration::hours(1)),
            ("new", chrono::Duration::zero()),
        ] {
            transport
                .publish_test(&test_of_age(id, age))
                .unwrap()
                .await
                .unwrap();
            let step = Step {
                stage: 1,
                value: "ok".into(),
            };
            service_signal(&transport, id, &step).await;
        }
        let mut by_id = std::collections::HashMap::new();
        while by_id.len() < 2 {
            let report = tokio::time::timeout(Duration::from_secs(30), reports.recv())
                .await
                .expect("two reports in time")
                .unwrap();
            if let Some(test) = &report.test {
                by_id.insert(test.id.clone(), report.clone());
            }
        }
        assert_eq!(by_id["new"].state, State::Pass);
        match max_test_age {
            Some(_) => {
                let old = &by_id["old"];
                assert_eq!(old.state, State::Skip, "{old:?}");
                assert!(
                    old.error.as_deref().unwrap().contains("max_test_age"),
                    "{old:?}"
                );
                assert!(old.signal_latency.is_empty(), "not run: {old:?}");
            }
            None => assert_eq!(by_id["old"].state, State::Pass, "Faust's: run until expiry"),
        }
        worker.stop().await.unwrap();
    }
}

/// Sends `FIRST` for test `id` through `transport`, as a service would.
async fn service_signal(transport: &std::sync::Arc<MemoryTransport>, id: &str, step: &Step) {
    let client = livecheck::Client::from_arc(transport.clone());
    client.scope(FIRST.send_to(id, step)).await.unwrap();
}
