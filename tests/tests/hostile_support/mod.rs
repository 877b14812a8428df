//! The scene of the hostile-writer tests (issue "Step 10 — Trust boundaries"): tansu, the
//! orders services in this process, demo worker *processes* pointed at them with `--brokers`
//! (their fake orders go through `ORDERS_URL` to those services), readers of livecheck's three
//! topics, and what a probe measures with: `/metrics`, the status API, the workers' logs.
//!
//! A probe writes what a hostile writer could (records on the tests, bus and report topics, HTTP
//! requests with forged `LiveCheck-Test-*` headers), then collects [`Figures`]: each is printed
//! in a table, and the ones with an expectation are asserted together at the end, so a failing
//! run still shows every figure.
//!
//! Everything started here is stopped by its owner's `Drop` (workers by PID, the services'
//! runtime, the readers, the broker last), also when a probe panics.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use livecheck::codec::{decode_report, Codec};
use livecheck::transport::kafka::{KafkaConfig, Topics};
use livecheck::{Case, SignalEvent, State, TestReport};
use livecheck_examples::orders::{self, case::test_order, OrdersConfig};
use livecheck_tests::broker::Broker;
use livecheck_tests::services::Services;
use livecheck_tests::support::{plain_consumer_at, unique_topics, Tasks};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// The demo binary (`examples/src/bin/livecheck.rs`), run as a worker with `--brokers`.
pub(crate) const DEMO: &str = env!("CARGO_BIN_EXE_livecheck-demo");

/// The demo's case: the orders flow.
pub(crate) const CASE: &str = <test_order as Case>::NAME;

/// Partitions of every topic of a scene.
pub(crate) const PARTITIONS: i32 = 4;

/// How long a worker may take to print its status URL.
const STATUS_URL_WITHIN: Duration = Duration::from_secs(30);
/// How long a worker may take to be assigned partitions (tansu's join, then the handover).
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a worker may take to report its first passing test.
const WARM_WITHIN: Duration = Duration::from_secs(60);

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A timestamp as livecheck's records carry it (`2026-11-24T22:11:29.940777Z`).
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A timestamp as the `LiveCheck-Test-*` headers carry it (Python's `isoformat()`).
pub(crate) fn header_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// `text` cut to at most `max` bytes (on a character boundary), for a table or a message.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// How long one probe may take in all: its waits are bounded one by one, this bounds the sum.
pub(crate) const PROBE_LIMIT: Duration = Duration::from_secs(300);

/// Runs a probe, failing it if it takes more than [`PROBE_LIMIT`] (what it started is stopped
/// as it is dropped).
pub(crate) async fn bounded(probe: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(PROBE_LIMIT, probe).await.is_err() {
        panic!("the probe did not finish within {PROBE_LIMIT:?}");
    }
}

/// Polls `check` every `every` until it returns `Some`, or `within` passes (`None`).
pub(crate) async fn poll<T, F, Fut>(within: Duration, every: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Figures: what a probe measured, printed as a table, then asserted

/// One line of a probe's table.
#[derive(Debug)]
struct Figure {
    what: String,
    value: String,
    expected: String,
    /// `None`: shown, not asserted.
    ok: Option<bool>,
}

/// What one probe measured.
#[derive(Debug)]
pub(crate) struct Figures {
    title: String,
    started: Instant,
    rows: Vec<Figure>,
    notes: Vec<String>,
}

impl Figures {
    /// Figures of a probe that began at `started` (the time shown in its title).
    pub(crate) fn new(title: impl Into<String>, started: Instant) -> Figures {
        Figures {
            title: title.into(),
            started,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A figure and what it must be.
    pub(crate) fn check(
        &mut self,
        what: impl Into<String>,
        value: impl Display,
        expected: impl Display,
        ok: bool,
    ) {
        self.rows.push(Figure {
            what: what.into(),
            value: value.to_string(),
            expected: expected.to_string(),
            ok: Some(ok),
        });
    }

    /// A figure shown for information.
    pub(crate) fn info(&mut self, what: impl Into<String>, value: impl Display) {
        self.rows.push(Figure {
            what: what.into(),
            value: value.to_string(),
            expected: String::new(),
            ok: None,
        });
    }

    /// A line printed under the table.
    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn table(&self) -> String {
        let mut out = format!(
            "\n{} ({:.0} s)\n\n| figure | value | expected | |\n|---|---|---|---|\n",
            self.title,
            self.started.elapsed().as_secs_f64()
        );
        for row in &self.rows {
            let mark = match row.ok {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {mark} |\n",
                row.what,
                row.value.replace('|', "\\|"),
                row.expected.replace('|', "\\|")
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("  {note}\n"));
        }
        out
    }

    /// Prints the table; panics naming every figure that is not what it must be.
    pub(crate) fn finish(self) {
        let table = self.table();
        println!("{table}");
        let failed: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.ok == Some(false))
            .map(|r| format!("{}: {} (expected {})", r.what, r.value, r.expected))
            .collect();
        assert!(
            failed.is_empty(),
            "{}: {} figure(s) not as expected:\n- {}\n{table}",
            self.title,
            failed.len(),
            failed.join("\n- ")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// /metrics and the status API

/// One sample of the Prometheus text format: name, labels, value.
pub(crate) type Sample = (String, BTreeMap<String, String>, f64);

/// A `/metrics` page, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples(pub(crate) Vec<Sample>);

impl Samples {
    pub(crate) fn parse(text: &str) -> Samples {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let Some((name, labels)) = series.split_once('{') else {
                    return Some((series.to_owned(), BTreeMap::new(), value));
                };
                let mut map = BTreeMap::new();
                let mut rest = labels.trim_end_matches('}');
                while let Some((key, after)) = rest.split_once("=\"") {
                    let end = after.find('"')?;
                    map.insert(
                        key.trim_start_matches(',').to_owned(),
                        after[..end].to_owned(),
                    );
                    rest = &after[end + 1..];
                }
                Some((name.to_owned(), map, value))
            })
            .collect();
        Samples(samples)
    }

    /// The series `name` with exactly `labels`.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|(_, _, v)| *v)
    }

    /// `livecheck_skipped_messages_total{topic, reason}`.
    pub(crate) fn skipped(&self, topic: &str, reason: &str) -> Option<f64> {
        self.get(
            "livecheck_skipped_messages_total",
            &[("topic", topic), ("reason", reason)],
        )
    }

    pub(crate) fn in_flight(&self) -> Option<f64> {
        self.get("livecheck_tests_in_flight", &[])
    }

    pub(crate) fn leader(&self) -> Option<f64> {
        self.get("livecheck_worker_leader", &[])
    }
}

/// "12" for a figure read from a metric, "absent" when the series is not exported.
pub(crate) fn shown(value: Option<f64>) -> String {
    value.map_or("absent".to_owned(), |v| v.to_string())
}

fn http() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client")
    })
}

/// GETs `url` within `timeout`: the body, or why not.
pub(crate) async fn get_text(url: &str, timeout: Duration) -> Result<String, String> {
    let response = http()
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status}: {}", clip(&body, 200)));
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// Worker processes

/// How a worker logs on stderr.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LogFormat {
    /// One JSON object a line (what the probes parse).
    Json,
    /// The default, human format (what an operator reads, and what forged text could break).
    Pretty,
}

/// A demo worker process: its stderr (log) and stdout (one line per report) go to files.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) label: String,
    child: Option<Child>,
    pub(crate) log: PathBuf,
    pub(crate) out: PathBuf,
    /// `http://127.0.0.1:PORT/` of its status page.
    pub(crate) url: String,
}

impl Worker {
    pub(crate) fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub(crate) fn out_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.out).unwrap_or_default()).into_owned()
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its `/metrics`, within `timeout`.
    pub(crate) async fn metrics(&self, timeout: Duration) -> Result<Samples, String> {
        get_text(&format!("{}metrics", self.url), timeout)
            .await
            .map(|text| Samples::parse(&text))
    }

    /// Its `/metrics`, or no samples when it does not answer within 3 s.
    pub(crate) async fn metrics_or_empty(&self) -> Samples {
        self.metrics(Duration::from_secs(3))
            .await
            .unwrap_or_default()
    }

    /// Its `GET /api/cases`, within 3 s.
    pub(crate) async fn api(&self) -> Result<Value, String> {
        let text = get_text(&format!("{}api/cases", self.url), Duration::from_secs(3)).await?;
        serde_json::from_str(&text).map_err(|e| format!("api/cases is not JSON: {e}"))
    }

    /// The partitions of the tests topic it consumes, as its status API says.
    pub(crate) async fn assigned(&self) -> Option<Vec<i32>> {
        let api = self.api().await.ok()?;
        partitions_of(&api)
    }

    /// The demo case's `state` and `suite_failed`, as its status API says.
    pub(crate) async fn case_state(&self) -> Option<(String, bool)> {
        let api = self.api().await.ok()?;
        case_state(&api)
    }

    /// The lines of its stdout reporting test `id` (`STATE case id=ID ...`).
    pub(crate) fn reported(&self, id: &str) -> usize {
        let needle = format!("id={id} ");
        self.out_text()
            .lines()
            .filter(|l| l.contains(&needle) || l.ends_with(&format!("id={id}")))
            .count()
    }

    /// Stops it with SIGTERM (as an orchestrator would) and waits up to 30 s for it to exit.
    pub(crate) fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        Some(tokio::task::block_in_place(|| {
            livecheck_tests::support::terminate(&mut child)
        }))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of its log, for a failure message.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let log = self.log_text();
        let all: Vec<&str> = log.lines().collect();
        format!(
            "--- last lines of {} ---\n{}",
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The tests-topic partitions of `GET /api/cases`.
pub(crate) fn partitions_of(api: &Value) -> Option<Vec<i32>> {
    api["worker"]["assigned_partitions"].as_array().map(|list| {
        list.iter()
            .filter_map(|p| p.as_i64().map(|p| p as i32))
            .collect()
    })
}

/// The demo case's `state` and `suite_failed` in `GET /api/cases`.
pub(crate) fn case_state(api: &Value) -> Option<(String, bool)> {
    let case = api["cases"]
        .as_array()?
        .iter()
        .find(|c| c["name"].as_str() == Some(CASE))?;
    Some((
        case["state"].as_str()?.to_owned(),
        case["suite_failed"].as_bool()?,
    ))
}

/// JSON events of a worker's log (`--log-format json`): (level, the whole event).
pub(crate) fn json_events(log: &str) -> Vec<(String, Value)> {
    log.lines()
        .filter_map(|line| {
            let event = serde_json::from_str::<Value>(line).ok()?;
            let level = event["level"].as_str().unwrap_or_default().to_owned();
            Some((level, event))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The scene

/// tansu, the orders services, readers of livecheck's topics, and the worker processes a probe
/// starts.
pub(crate) struct Scene {
    /// When it was started: the probe's beginning.
    pub(crate) started: Instant,
    pub(crate) config: KafkaConfig,
    /// The orders API, `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    pub(crate) readers: Readers,
    producer: FutureProducer,
    services: Option<Services>,
    dir: tempfile::TempDir,
    spawned: usize,
    // Last: stopped after everything that talks to it.
    broker: Broker,
}

impl Scene {
    /// A broker, unique topics and group (`label` in their names), the orders services, the
    /// readers. Call [`livecheck::signing::install`] before, if the services are to sign.
    pub(crate) async fn start(label: &str) -> Scene {
        let started = Instant::now();
        let broker = tokio::task::block_in_place(Broker::start);
        let config = unique_topics(&broker.bootstrap(), label, PARTITIONS);
        let mut orders_config = OrdersConfig::new(broker.bootstrap());
        orders_config.orders_topic = Broker::unique(&format!("{label}-orders"));
        orders_config.execution_topic = Broker::unique(&format!("{label}-execution"));
        orders_config.group_prefix = Broker::unique(&format!("{label}-orders-group"));
        orders_config.break_execution = false;
        orders::ensure_topics(&orders_config, &config)
            .await
            .unwrap_or_else(|e| panic!("cannot create the topics: {e}"));
        let services = Services::start(orders_config, &config);
        let base = services.base().to_owned();
        let readers = Readers::start(&config.brokers, &config.topics);
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("linger.ms", "5")
            .set("message.max.bytes", "4000000")
            // A delivery is awaited at most this long (librdkafka's default is 5 min).
            .set("message.timeout.ms", "30000")
            .create()
            .expect("producer");
        Scene {
            started,
            config,
            base,
            readers,
            producer,
            services: Some(services),
            dir: tempfile::tempdir().expect("a temp dir"),
            spawned: 0,
            broker,
        }
    }

    /// The figures of this scene's probe.
    pub(crate) fn figures(&self, title: impl Into<String>) -> Figures {
        Figures::new(title, self.started)
    }

    pub(crate) fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// Starts a demo worker process on this scene's topics and group, and waits for its status
    /// URL. `envs` are added to its environment (which has no `LIVECHECK_*` variables of this
    /// process, and no key unless given).
    pub(crate) async fn spawn(
        &mut self,
        label: &str,
        format: LogFormat,
        envs: &[(&str, &str)],
    ) -> Worker {
        self.spawned += 1;
        let stem = format!("{}-{label}", self.spawned);
        let log = self.dir.path().join(format!("{stem}.log"));
        let out = self.dir.path().join(format!("{stem}.out"));
        let config = &self.config;
        let mut command = Command::new(DEMO);
        command
            .args(["--brokers", &config.brokers])
            .args(["--group-id", &config.group_id])
            .args(["--tests-topic", &config.topics.tests])
            .args(["--bus-topic", &config.topics.bus])
            .args(["--report-topic", &config.topics.reports])
            .args(["--partitions", &config.partitions.to_string()])
            .args(["--web-bind", "127.0.0.1:0"])
            .args([
                "--log-format",
                match format {
                    LogFormat::Json => "json",
                    LogFormat::Pretty => "pretty",
                },
            ]);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LIVECHECK_") {
                command.env_remove(key);
            }
        }
        let child = command
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env("ORDERS_URL", &self.base)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("create a file"))
            .stderr(std::fs::File::create(&log).expect("create a file"))
            .spawn()
            .expect("start a demo worker");
        let mut worker = Worker {
            label: label.to_owned(),
            child: Some(child),
            log,
            out,
            url: String::new(),
        };
        let url = poll(STATUS_URL_WITHIN, Duration::from_millis(50), || {
            let log = worker.log_text();
            let exited = worker
                .child
                .as_mut()
                .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            async move {
                if exited {
                    return Some(Err(()));
                }
                let rest = log.split("status page at ").nth(1)?;
                Some(Ok(rest.split_whitespace().next()?.to_owned()))
            }
        })
        .await;
        worker.url = match url {
            Some(Ok(url)) => url,
            Some(Err(())) => panic!("worker {label} exited\n{}", worker.log_tail(40)),
            None => panic!(
                "worker {label} printed no status URL within {STATUS_URL_WITHIN:?}\n{}",
                worker.log_tail(40)
            ),
        };
        worker
    }

    /// Waits until `worker` consumes partitions of the tests topic and has reported a passing
    /// test (so its handover is over, and fake orders flow through the services).
    pub(crate) async fn warm(&self, worker: &Worker) {
        let assigned = poll(READY_WITHIN, Duration::from_millis(200), || async {
            worker.assigned().await.filter(|p| !p.is_empty())
        })
        .await;
        assert!(
            assigned.is_some(),
            "worker {} was not assigned partitions within {READY_WITHIN:?}\n{}",
            worker.label,
            worker.log_tail(40)
        );
        let passed = poll(WARM_WITHIN, Duration::from_millis(200), || async {
            worker
                .out_text()
                .lines()
                .any(|l| l.starts_with("PASS"))
                .then_some(())
        })
        .await;
        assert!(
            passed.is_some(),
            "worker {} reported no PASS within {WARM_WITHIN:?}\n--- its stdout ---\n{}\n{}",
            worker.label,
            worker.out_text(),
            worker.log_tail(40)
        );
    }

    /// Produces one record (`partition` `None`: by key), optionally with a timestamp (ms) and
    /// headers; panics if the broker does not take it within 30 s.
    pub(crate) async fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &[u8],
        payload: &[u8],
        timestamp: Option<i64>,
        headers: &[(&str, &str)],
    ) {
        let mut owned = OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        let mut record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(owned);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(timestamp) = timestamp {
            record = record.timestamp(timestamp);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("produce to {topic}: {e}"));
    }

    /// Places `n` orders through the API (each one a test: the case's probability is 1);
    /// returns their ids (= test ids).
    pub(crate) async fn place_orders(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let url = format!("{}/order/init/sell/", self.base);
            let body = get_text(&url, Duration::from_secs(15))
                .await
                .unwrap_or_else(|e| panic!("placing an order: {e}"));
            let order: Value = serde_json::from_str(&body).expect("an order");
            ids.push(order["id"].as_str().expect("an order id").to_owned());
        }
        ids
    }

    /// Waits (at most `within`) until every test of `ids` has a report; returns the ids
    /// without one.
    pub(crate) async fn unreported(&self, ids: &[String], within: Duration) -> Vec<String> {
        let missing = || {
            let seen = self.readers.lock();
            ids.iter()
                .filter(|id| !seen.reports_by_id.contains_key(*id))
                .cloned()
                .collect::<Vec<_>>()
        };
        poll(within, Duration::from_millis(200), || async {
            missing().is_empty().then_some(())
        })
        .await;
        missing()
    }

    /// The committed offsets of the workers' group on the tests topic, and the topic's high
    /// watermarks, by partition.
    pub(crate) async fn group_progress(&self) -> Vec<(i32, Option<i64>, i64)> {
        livecheck_tests::support::group_progress(
            &self.bootstrap(),
            &self.config.group_id,
            &self.config.topics.tests,
            PARTITIONS,
        )
        .await
    }

    /// The members of the workers' group: (member id, partitions of the tests topic).
    pub(crate) async fn members(&self) -> Vec<(String, Vec<i32>)> {
        let bootstrap = self.bootstrap();
        let group = self.config.group_id.clone();
        let topic = self.config.topics.tests.clone();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create()
                .expect("client");
            let Ok(list) = client.fetch_group_list(Some(&group), Duration::from_secs(10)) else {
                return Vec::new();
            };
            list.groups()
                .iter()
                .flat_map(|g| g.members())
                .map(|m| {
                    let partitions = m
                        .assignment()
                        .and_then(|a| assignment_partitions(a, &topic))
                        .unwrap_or_default();
                    (m.id().to_owned(), partitions)
                })
                .collect()
        })
        .await
        .expect("group members")
    }

    /// Stops the services and the readers while the broker is up (their Kafka clients close
    /// against it), then everything else.
    pub(crate) async fn stop(mut self) {
        if let Some(services) = self.services.take() {
            services.stop();
        }
        self.readers.stop().await;
    }
}

/// Reads a consumer-protocol assignment (what a member was given): its partitions of `topic`.
fn assignment_partitions(bytes: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let slice = bytes.get(at..at + n)?;
        at += n;
        Some(slice)
    };
    let _version = take(2)?;
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let ours = take(usize::try_from(len).ok()?)? == topic.as_bytes();
        let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..count.max(0) {
            let partition = i32::from_be_bytes(take(4)?.try_into().ok()?);
            if ours {
                out.push(partition);
            }
        }
    }
    out.sort_unstable();
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Forged records

/// A test execution as JSON (Faust's record), for the demo case unless `case` says otherwise.
pub(crate) fn test_record(
    id: &str,
    case: &str,
    timestamp: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Value {
    json!({
        "id": id,
        "case_name": case,
        "timestamp": iso(timestamp),
        "test_args": ["sell"],
        "test_kwargs": {},
        "expires": iso(expires),
        "__faust": {"ns": "faust.livecheck.models.TestExecution"},
    })
}

/// A report as JSON (Faust's record, as `codec::encode_report` writes it): of `test`, or a
/// suite report when `test` is null.
pub(crate) fn report_record(state: &str, test: Value, error: &str) -> Value {
    json!({
        "case_name": CASE,
        "state": state,
        "test": test,
        "runtime": if test.is_null() { Value::Null } else { json!(0.25) },
        "signal_latency": {},
        "error": error,
        "traceback": null,
        "__faust": {"ns": "faust.livecheck.models.TestReport"},
    })
}

// ---------------------------------------------------------------------------------------------
// Readers of livecheck's topics

/// A test execution read from the tests topic.
#[derive(Debug, Clone)]
pub(crate) struct SeenTest {
    /// Its id, cut to 256 bytes.
    pub(crate) id: String,
    pub(crate) id_len: usize,
    pub(crate) case: String,
    pub(crate) partition: i32,
    pub(crate) at: Instant,
}

/// A record read from the bus.
#[derive(Debug, Clone)]
pub(crate) struct SeenSignal {
    pub(crate) key: String,
    pub(crate) signal: Option<SignalEvent>,
    pub(crate) partition: i32,
    pub(crate) payload: Vec<u8>,
    pub(crate) at: Instant,
}

/// A report read from the report topic.
#[derive(Debug, Clone)]
pub(crate) struct SeenReport {
    pub(crate) report: TestReport,
    /// Its test's id, cut to 256 bytes (`None`: a suite report).
    pub(crate) id: Option<String>,
    pub(crate) id_len: usize,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) at: Instant,
}

/// Everything the readers saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) tests: Vec<SeenTest>,
    pub(crate) tests_undecodable: usize,
    pub(crate) bus: Vec<SeenSignal>,
    pub(crate) reports: Vec<SeenReport>,
    /// Test id → indexes in `reports`.
    pub(crate) reports_by_id: HashMap<String, Vec<usize>>,
}

impl Seen {
    /// The reports of test `id`.
    pub(crate) fn reports_of(&self, id: &str) -> Vec<&SeenReport> {
        self.reports_by_id
            .get(id)
            .map(|list| list.iter().map(|&i| &self.reports[i]).collect())
            .unwrap_or_default()
    }

    /// The partition test `id` went to, if it was read.
    pub(crate) fn partition_of(&self, id: &str) -> Option<i32> {
        self.tests.iter().find(|t| t.id == id).map(|t| t.partition)
    }
}

/// Plain consumers of the tests, bus and report topics (from the beginning), filling [`Seen`].
pub(crate) struct Readers {
    seen: Arc<Mutex<Seen>>,
    tasks: Tasks,
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(256);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Readers {
    fn start(bootstrap: &str, topics: &Topics) -> Readers {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let tests = plain_consumer_at(bootstrap, &topics.tests);
        let bus = plain_consumer_at(bootstrap, &topics.bus);
        let reports = plain_consumer_at(bootstrap, &topics.reports);
        let tasks = Tasks::new(vec![
            tokio::spawn(read(
                tests,
                seen.clone(),
                |seen, message| match Codec::decode_test(message.payload().unwrap_or_default()) {
                    Ok(test) => seen.tests.push(SeenTest {
                        id: cut(&test.id),
                        id_len: test.id.len(),
                        case: cut(&test.case_name),
                        partition: message.partition(),
                        at: Instant::now(),
                    }),
                    Err(_) => seen.tests_undecodable += 1,
                },
            )),
            tokio::spawn(read(bus, seen.clone(), |seen, message| {
                let payload = message.payload().unwrap_or_default();
                seen.bus.push(SeenSignal {
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    signal: Codec::decode_signal(payload).ok(),
                    partition: message.partition(),
                    payload: payload.to_vec(),
                    at: Instant::now(),
                });
            })),
            tokio::spawn(read(reports, seen.clone(), |seen, message| {
                let Ok(report) = decode_report(message.payload().unwrap_or_default()) else {
                    return;
                };
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let id = report.test.as_ref().map(|t| cut(&t.id));
                let id_len = report.test.as_ref().map_or(0, |t| t.id.len());
                let index = seen.reports.len();
                if let Some(id) = &id {
                    seen.reports_by_id
                        .entry(id.clone())
                        .or_default()
                        .push(index);
                }
                seen.reports.push(SeenReport {
                    report,
                    id,
                    id_len,
                    headers,
                    at: Instant::now(),
                });
            })),
        ]);
        Readers { seen, tasks }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }

    /// Stops the consumers and waits until they are gone (a consumer closes against its
    /// broker: before the broker stops).
    async fn stop(&mut self) {
        self.tasks.stop().await;
    }
}

async fn read(
    consumer: StreamConsumer,
    seen: Arc<Mutex<Seen>>,
    note: impl Fn(&mut Seen, &rdkafka::message::BorrowedMessage<'_>),
) {
    loop {
        match consumer.recv().await {
            Ok(message) => note(&mut lock(&seen), &message),
            // The client reconnects by itself.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The orders services, in this process

// ---------------------------------------------------------------------------------------------
// Sampling /metrics

/// One poll of `/metrics`.
#[derive(Debug, Clone)]
pub(crate) struct Poll {
    /// Since the sampler started.
    pub(crate) at: Duration,
    pub(crate) latency: Duration,
    pub(crate) result: Result<Samples, String>,
}

/// Polls a worker's `/metrics` every `every`, each poll with `timeout`, until stopped.
pub(crate) struct Sampler {
    polls: Arc<Mutex<Vec<Poll>>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    started: Instant,
}

impl Sampler {
    pub(crate) fn start(url: &str, every: Duration, timeout: Duration) -> Sampler {
        let polls = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let url = format!("{url}metrics");
        let started = Instant::now();
        let task = tokio::spawn({
            let polls = polls.clone();
            async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = tick.tick() => {}
                    }
                    let at = started.elapsed();
                    let begun = Instant::now();
                    let result = get_text(&url, timeout)
                        .await
                        .map(|text| Samples::parse(&text));
                    let poll = Poll {
                        at,
                        latency: begun.elapsed(),
                        result,
                    };
                    polls.lock().unwrap_or_else(|e| e.into_inner()).push(poll);
                }
            }
        });
        Sampler {
            polls,
            stop,
            task: Some(task),
            started,
        }
    }

    /// The polls so far.
    pub(crate) fn polls(&self) -> Vec<Poll> {
        self.polls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The last successful poll.
    pub(crate) fn last(&self) -> Option<Samples> {
        self.polls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find_map(|p| p.result.as_ref().ok().cloned())
    }

    /// Time since the sampler started (the `at` of a poll made now).
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) async fn stop(mut self) -> Vec<Poll> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.polls()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// How the polls went: (count, failed or slower than `limit`, slowest), with a sentence on
/// the first failure.
pub(crate) fn poll_figures(polls: &[Poll], limit: Duration) -> (usize, usize, Duration, String) {
    let slow: Vec<&Poll> = polls
        .iter()
        .filter(|p| p.result.is_err() || p.latency > limit)
        .collect();
    let slowest = polls.iter().map(|p| p.latency).max().unwrap_or_default();
    let first = slow.first().map_or(String::new(), |p| {
        format!(
            "first at +{:.1} s: {}",
            p.at.as_secs_f64(),
            match &p.result {
                Ok(_) => format!("answered in {:?}", p.latency),
                Err(e) => clip(e, 200),
            }
        )
    });
    (polls.len(), slow.len(), slowest, first)
}

// ---------------------------------------------------------------------------------------------
// Forged HTTP requests

/// The four `LiveCheck-Test-*` headers of a forged test `id` of the demo case, valid 10 min.
pub(crate) fn forged_headers(id: &str) -> Vec<(&'static str, String)> {
    let now = Utc::now();
    vec![
        ("LiveCheck-Test-Id", id.to_owned()),
        ("LiveCheck-Test-Name", CASE.to_owned()),
        ("LiveCheck-Test-Timestamp", header_time(now)),
        (
            "LiveCheck-Test-Expires",
            header_time(now + chrono::Duration::minutes(10)),
        ),
    ]
}

/// An order as the API takes it.
pub(crate) fn order(id: &str, side: &str) -> Value {
    json!({"id": id, "side": side, "symbol": "ACME", "quantity": 10, "price": 42.5})
}

/// `POST /order/create/` with `body` and forged test headers for `test_id`: the HTTP status.
pub(crate) async fn forged_create(base: &str, test_id: &str, body: &Value) -> Result<u16, String> {
    let mut request = http()
        .post(format!("{base}/order/create/"))
        .timeout(Duration::from_secs(15))
        .json(body);
    for (name, value) in forged_headers(test_id) {
        request = request.header(name, value);
    }
    request
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// `GET /order/init/sell/` with forged test headers for `test_id`: the order placed.
pub(crate) async fn forged_init(base: &str, test_id: &str) -> Result<Value, String> {
    let mut request = http()
        .get(format!("{base}/order/init/sell/"))
        .timeout(Duration::from_secs(15));
    for (name, value) in forged_headers(test_id) {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", clip(&body, 200)));
    }
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

/// Whether the orders store holds order `id` (`GET /order/{id}`).
pub(crate) async fn stored(base: &str, id: &str) -> bool {
    get_text(&format!("{base}/order/{id}"), Duration::from_secs(5))
        .await
        .is_ok()
}

/// "STATE error" of a report (the error cut to 120 bytes).
pub(crate) fn summary(report: &SeenReport) -> String {
    let error = report.report.error.as_deref().unwrap_or("");
    format!("{} {}", report.report.state.as_str(), clip(error, 120))
        .trim_end()
        .to_owned()
}

/// The state names of `reports`, e.g. `[PASS]`.
pub(crate) fn states(reports: &[&SeenReport]) -> Vec<&'static str> {
    reports.iter().map(|r| r.report.state.as_str()).collect()
}

/// Whether `reports` is exactly one PASS.
pub(crate) fn one_pass(reports: &[&SeenReport]) -> bool {
    reports.len() == 1 && reports[0].report.state == State::Pass
}

// ---------------------------------------------------------------------------------------------
// A live test, and a forged request carrying its id

/// What [`attack_live_test`] did.
#[derive(Debug)]
pub(crate) struct LiveAttack {
    /// The live test's id.
    pub(crate) id: String,
    /// The HTTP status of the forged request carrying its id.
    pub(crate) forged_status: Result<u16, String>,
    /// Whether the forged request's order went through the orders agent before the real one.
    pub(crate) forged_first: bool,
}

/// Starts a live test of the demo case the way the services do (through `client`, so it is
/// signed when this process has a key), then sends a forged `POST /order/create/` carrying
/// its id in `LiveCheck-Test-*` headers — another order (side `buy`) — and, once the orders
/// agent has handled that one, the real order in the test's own (signed) context. If the
/// forged context were honoured, the test's first `order_sent_to_db` would be the forged
/// order: a FAIL.
pub(crate) async fn attack_live_test(scene: &Scene, client: &livecheck::Client) -> LiveAttack {
    let id = Broker::unique("live");
    let test = client
        .scope(test_order.trigger(id.clone(), "sell".into()))
        .await
        .expect("trigger the live test");
    let on_topic = poll(
        Duration::from_secs(15),
        Duration::from_millis(50),
        || async { scene.readers.lock().partition_of(&id).map(|_| ()) },
    )
    .await;
    assert!(on_topic.is_some(), "live test {id} not on the tests topic");
    let forged_order = Broker::unique("forged-order");
    let forged_status = forged_create(&scene.base, &id, &order(&forged_order, "buy")).await;
    let forged_first = poll(
        Duration::from_secs(15),
        Duration::from_millis(50),
        || async { stored(&scene.base, &forged_order).await.then_some(()) },
    )
    .await
    .is_some();
    let url = format!("{}/order/create/", scene.base);
    let real = livecheck::with_test(test, async {
        livecheck::propagation::http::client()
            .post(url)
            .json(&order(&id, "sell"))
            .timeout(Duration::from_secs(15))
            .send()
            .await
    })
    .await;
    match real {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => panic!("the live test's order: {}", response.status()),
        Err(error) => panic!("the live test's order: {error}"),
    }
    LiveAttack {
        id,
        forged_status,
        forged_first,
    }
}

/// The bus records keyed by `id` that are signals of the demo case: (count, how many carry an
/// order whose id is not `id`).
pub(crate) fn signals_for(seen: &Seen, id: &str) -> (usize, usize) {
    let signals: Vec<&SignalEvent> = seen
        .bus
        .iter()
        .filter(|r| r.key == id)
        .filter_map(|r| r.signal.as_ref())
        .filter(|s| s.case_name == CASE)
        .collect();
    let foreign = signals
        .iter()
        .filter(|s| s.value["id"].as_str().is_some_and(|order| order != id))
        .count();
    (signals.len(), foreign)
}
