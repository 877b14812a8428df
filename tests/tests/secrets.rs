//! Secrets stay secret (out of logs, status pages and reports): the librdkafka properties (`-X`,
//! `LIVECHECK_KAFKA_PROPERTIES`), the alert webhook's URL and the OTLP collector's URL and
//! headers, set by flags and by the environment, appear nowhere: not in `--help`, not in an
//! error, not in the worker's logs (at debug level, with an alert failing to reach the webhook
//! and spans failing to reach the collector), not on the status page, the JSON API or
//! `/metrics`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use livecheck_tests::broker::Broker;
use livecheck_tests::cases::flow;
use livecheck_tests::support::{read_log, service_client, terminate, unique_config};

const WORKER: &str = env!("CARGO_BIN_EXE_livecheck-test-worker");

/// Every secret of this file contains this; none may ever be printed.
const MARK: &str = "hunter2";

/// A webhook URL whose path is a secret (as a Slack webhook's token is), on a port nobody
/// listens on: the alert fails, and its error is logged.
fn webhook_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/services/T0/{MARK}-webhook-token")
}

/// An OTLP collector URL with a password in it, on a port nobody listens on.
fn otlp_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://otel:{MARK}-otlp-password@127.0.0.1:{port}")
}

/// The worker binary with no `LIVECHECK_*` variable inherited.
fn worker() -> Command {
    let mut command = Command::new(WORKER);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LIVECHECK_") {
            command.env_remove(key);
        }
    }
    command.stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> (Option<i32>, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run the worker binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code(), text)
}

fn assert_no_secret(place: &str, text: &str) {
    assert!(!text.contains(MARK), "a secret appears in {place}:\n{text}");
}

#[test]
fn help_names_the_variables_but_never_shows_their_values() {
    let (code, help) = run(worker()
        .arg("--help")
        .env(
            "LIVECHECK_KAFKA_PROPERTIES",
            format!("sasl.password={MARK}-env,with,commas"),
        )
        .env("LIVECHECK_ALERT_WEBHOOK", webhook_url())
        .env("LIVECHECK_BROKERS", format!("{MARK}-host:9092"))
        .env("LIVECHECK_OTLP_ENDPOINT", otlp_endpoint()));
    assert_eq!(code, Some(0), "{help}");
    assert_no_secret("--help", &help);
    for named in [
        "LIVECHECK_KAFKA_PROPERTIES",
        "LIVECHECK_ALERT_WEBHOOK",
        "LIVECHECK_BROKERS",
        "LIVECHECK_OTLP_ENDPOINT",
    ] {
        assert!(
            help.contains(named),
            "--help does not name {named}:\n{help}"
        );
    }
}

#[test]
fn errors_name_the_flag_but_never_repeat_a_secret() {
    let mistakes: Vec<(&str, Command, i32, &str)> = vec![
        (
            "-X without '='",
            with_args(&["-X", &format!("{MARK}-tail")]),
            2,
            "-X",
        ),
        (
            "a value split by the shell",
            with_args(&["-X", "sasl.password=ab", &format!("{MARK}-tail")]),
            2,
            "not shown",
        ),
        (
            "a webhook that is not http",
            with_args(&[
                "--alert-webhook",
                &format!("ftp://hooks.example/{MARK}-token"),
            ]),
            2,
            "--alert-webhook",
        ),
        (
            "the same from the environment",
            with_env(
                "LIVECHECK_ALERT_WEBHOOK",
                &format!("ftp://hooks.example/{MARK}-token"),
            ),
            2,
            "--alert-webhook",
        ),
        (
            "a line without '=' in LIVECHECK_KAFKA_PROPERTIES",
            with_env(
                "LIVECHECK_KAFKA_PROPERTIES",
                &format!("sasl.password=ok\n{MARK}-line"),
            ),
            2,
            "line 2",
        ),
        (
            "a value librdkafka rejects (and would repeat)",
            with_args(&[
                "--brokers",
                "127.0.0.1:1",
                "--no-web",
                "-X",
                &format!("security.protocol={MARK}-protocol"),
            ]),
            1,
            "security.protocol",
        ),
    ];
    for (what, mut command, want, names) in mistakes {
        let (code, text) = run(&mut command);
        assert_eq!(code, Some(want), "{what}: {text}");
        assert_no_secret(what, &text);
        assert!(text.contains(names), "{what}: {text}");
    }

    // A comma in a value is no longer a mistake: `cases` parses every flag and exits 0.
    let (code, text) = run(worker().args(["-X", &format!("sasl.password={MARK},cd"), "cases"]));
    assert_eq!(code, Some(0), "{text}");
    assert_no_secret("`cases`", &text);
}

fn with_args(args: &[&str]) -> Command {
    let mut command = worker();
    command.args(args);
    command
}

fn with_env(key: &str, value: &str) -> Command {
    let mut command = worker();
    command.env(key, value);
    command
}

/// Polls `check` every 100 ms until it returns something, for at most `within`.
async fn poll<T, F, Fut>(what: &str, within: Duration, log: &Path, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the worker's log:\n{}",
            read_log(log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(http: &reqwest::Client, url: &str) -> Option<String> {
    let response = http.get(url).send().await.ok()?;
    response.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_shows_no_secret_anywhere() {
    let broker = Broker::start();
    let config = unique_config(&broker, 2);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    let mut child: Child = worker()
        .args(["--brokers", &config.brokers])
        .args(["--group-id", &config.group_id])
        .args(["--tests-topic", &config.topics.tests])
        .args(["--bus-topic", &config.topics.bus])
        .args(["--report-topic", &config.topics.reports])
        .args(["--partitions", "2", "--web-bind", "127.0.0.1:0"])
        .args(["--case", "it.flow", "--alert-retries", "0"])
        // Ignored on a plaintext connection, but set, and so in every client's configuration.
        // The flag's password is applied after the variable's.
        .args(["-X", &format!("sasl.password={MARK}-flag,with,commas")])
        .env(
            "LIVECHECK_KAFKA_PROPERTIES",
            format!("sasl.username={MARK}-user\nsasl.password={MARK}-env"),
        )
        .env("LIVECHECK_ALERT_WEBHOOK", webhook_url())
        // The span export (feature `otel`, on in this crate's tests): a collector nobody
        // listens on, a password in its URL and a key in its headers; its failures are logged.
        .args(["--otlp-endpoint", &otlp_endpoint()])
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("authorization=Bearer%20{MARK}-otlp-key"),
        )
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(dir.path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the worker binary");

    let base = poll("the status page", Duration::from_secs(30), &log, || async {
        let text = read_log(&log);
        let at = text.find("status page at ")? + "status page at ".len();
        let url = text[at..].split_whitespace().next()?;
        Some(url.trim_end_matches('/').to_owned())
    })
    .await;
    poll("topics", Duration::from_secs(30), &log, || async {
        let topics = tokio::task::block_in_place(|| broker.topics());
        topics.contains(&config.topics.tests).then_some(())
    })
    .await;

    // 30 tests that time out at once: a suite FAIL, and an alert the webhook cannot take.
    let service = service_client(&config);
    service
        .scope(async {
            for n in 0..30 {
                flow.trigger(format!("secret-{n}"), "x".into(), 1, 1)
                    .await
                    .unwrap();
            }
        })
        .await;
    service.flush(Duration::from_secs(10)).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let metrics = poll(
        "the alert to fail",
        Duration::from_secs(60),
        &log,
        || async {
            let metrics = get(&http, &format!("{base}/metrics")).await?;
            metrics
                .contains("livecheck_alerts_total{outcome=\"failed\"} 1")
                .then_some(metrics)
        },
    )
    .await;
    assert_no_secret("/metrics", &metrics);
    for path in [
        "/",
        "/api/cases",
        "/api/cases/it.flow",
        "/healthz",
        "/readyz",
    ] {
        let page = get(&http, &format!("{base}{path}"))
            .await
            .unwrap_or_else(|| panic!("GET {path}"));
        assert_no_secret(path, &page);
    }

    assert!(terminate(&mut child).success());
    let log = read_log(&dir.path().join("worker.log"));
    assert!(log.contains("alert not delivered"), "{log}");
    assert!(
        log.contains("OpenTelemetry spans of tests dropped"),
        "{log}"
    );
    assert_no_secret("the worker's log", &log);
    assert_no_secret(
        "the worker's stdout",
        &read_log(&dir.path().join("stdout.log")),
    );
}
