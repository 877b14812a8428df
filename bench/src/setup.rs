//! Shared set-up of `livecheck-bench` (`cargo run --release -p bench`): unique topics, a worker
//! in this process, a report counter, logging as the `livecheck` binary does it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use livecheck::transport::kafka::{KafkaConfig, KafkaTransport, Topics};
use livecheck::worker::SpawnedWorker;
use livecheck::{CaseConfig, Client, Observer, State, TestReport, Worker, WorkerHandle};
use livecheck::{TestExecution, WorkerSettings};
use livecheck_tests::broker::Broker;
use livecheck_tests::support::unique_topics;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Partitions of every topic the benchmark creates: `KafkaConfig`'s default.
pub(crate) const PARTITIONS: i32 = 8;

/// How long [`count_messages`] waits for one more message before it takes the count.
pub(crate) const COUNT_IDLE: Duration = Duration::from_secs(2);

static PROPERTIES: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Sets the librdkafka properties (`-X key=value`) every client of this process gets on top of
/// livecheck's settings (none by default: the figures are for livecheck's own settings).
pub(crate) fn set_properties(properties: Vec<(String, String)>) {
    let _ = PROPERTIES.set(properties);
}

/// The `-X` properties in effect.
pub(crate) fn properties() -> &'static [(String, String)] {
    PROPERTIES.get().map_or(&[], Vec::as_slice)
}

/// Parses `key=value`.
pub(crate) fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got {text:?}"))
}

/// Kafka settings with topics and a group of their own (`tag` names the measurement).
pub(crate) fn unique_config(brokers: &str, tag: &str) -> KafkaConfig {
    let mut config = unique_topics(brokers, &format!("bench-{tag}"), PARTITIONS);
    config.properties = properties().to_vec();
    config.signal_replay = Duration::from_secs(3600);
    config
}

/// Where a benchmark's worker child consumes: passed on its command line by the parent
/// ([`ChildKafka::command_line`]) and read back by clap (`#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChildKafka {
    /// Bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// Tests topic.
    #[arg(long)]
    tests_topic: String,
    /// Bus topic.
    #[arg(long)]
    bus_topic: String,
    /// Reports topic.
    #[arg(long)]
    report_topic: String,
    /// Consumer group.
    #[arg(long)]
    group: String,
    /// The case's `test_expires`, in seconds.
    #[arg(long)]
    expires_secs: u64,
    /// librdkafka properties on top of livecheck's settings.
    #[arg(short = 'X', value_parser = parse_property)]
    property: Vec<(String, String)>,
}

impl ChildKafka {
    /// The child's arguments for `config`, with the case's `test_expires`.
    pub(crate) fn command_line(
        brokers: &str,
        config: &KafkaConfig,
        expires: Duration,
    ) -> Vec<String> {
        let mut args: Vec<String> = [
            ("--brokers", brokers),
            ("--tests-topic", &config.topics.tests),
            ("--bus-topic", &config.topics.bus),
            ("--report-topic", &config.topics.reports),
            ("--group", &config.group_id),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value.to_owned()])
        .collect();
        args.extend(["--expires-secs".to_owned(), expires.as_secs().to_string()]);
        args.extend(
            config
                .properties
                .iter()
                .flat_map(|(k, v)| ["-X".to_owned(), format!("{k}={v}")]),
        );
        args
    }

    /// The Kafka settings the parent passed, and the case's `test_expires`.
    pub(crate) fn config(self) -> (KafkaConfig, Duration) {
        let mut config = KafkaConfig::new(&self.brokers);
        config.properties = self.property;
        config.topics = Topics::new(self.tests_topic, self.bus_topic, self.report_topic);
        config.group_id = self.group;
        config.partitions = PARTITIONS;
        (config, Duration::from_secs(self.expires_secs))
    }
}

/// Creates `topic` with [`PARTITIONS`] partitions through the admin API.
pub(crate) async fn create_topic(brokers: &str, topic: &str) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(
            [&NewTopic::new(
                topic,
                PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &options,
        )
        .await
        .map_err(|e| format!("create topic {topic}: {e}"))?;
    for result in results {
        result.map_err(|(name, code)| format!("create topic {name}: {code}"))?;
    }
    Ok(())
}

/// The messages in each of `topics` ([`PARTITIONS`] partitions each), counted by reading them
/// all from the beginning until none came for `idle`: call it when nothing writes to them.
///
/// Counted, not taken from the high watermarks: tansu 0.6.0's were seen a few messages short of
/// what a consumer of the same partitions read (14,895 for 14,901 messages produced and read).
pub(crate) async fn count_messages(
    brokers: &str,
    topics: &[String],
    idle: Duration,
) -> Result<Vec<u64>, String> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", Broker::unique("bench-count"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .map_err(|e| format!("counting consumer: {e}"))?;
    let mut partitions = TopicPartitionList::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            partitions
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
    }
    consumer.assign(&partitions).map_err(|e| e.to_string())?;
    let mut counts = vec![0u64; topics.len()];
    while let Ok(message) = tokio::time::timeout(idle, consumer.recv()).await {
        let message = message.map_err(|e| format!("counting: {e}"))?;
        if let Some(i) = topics.iter().position(|t| t == message.topic()) {
            counts[i] += 1;
        }
    }
    Ok(counts)
}

/// Logs as the `livecheck` binary does (`warn,livecheck=info`, or `RUST_LOG`), to stderr, so the
/// worker pays for its tracing spans as a deployed one does.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,livecheck=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Counts the test reports of a worker and when they came.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reports(Arc<ReportsInner>);

#[derive(Debug, Default)]
struct ReportsInner {
    passed: AtomicU64,
    timeouts: AtomicU64,
    others: AtomicU64,
    started: AtomicU64,
    last: Mutex<Option<Instant>>,
    /// When each test report came, if kept.
    timeline: Option<Mutex<Vec<Instant>>>,
}

impl Observer for Reports {
    fn on_test_start(&self, _test: &TestExecution) {
        self.0.started.fetch_add(1, Ordering::Relaxed);
    }

    fn on_report(&self, report: &TestReport) {
        if report.test.is_none() {
            return; // a suite report
        }
        let counter = match report.state {
            State::Pass => &self.0.passed,
            State::Timeout => &self.0.timeouts,
            _ => &self.0.others,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        if let Some(timeline) = &self.0.timeline {
            timeline.lock().unwrap_or_else(|e| e.into_inner()).push(now);
        }
    }
}

impl Reports {
    /// A counter that also keeps when each report came.
    pub(crate) fn with_timeline(capacity: usize) -> Self {
        Reports(Arc::new(ReportsInner {
            timeline: Some(Mutex::new(Vec::with_capacity(capacity))),
            ..ReportsInner::default()
        }))
    }

    /// When each test report came (empty unless made `with_timeline`).
    pub(crate) fn timeline(&self) -> Vec<Instant> {
        self.0.timeline.as_ref().map_or_else(Vec::new, |t| {
            t.lock().unwrap_or_else(|e| e.into_inner()).clone()
        })
    }

    /// Test reports so far.
    pub(crate) fn total(&self) -> u64 {
        self.passed() + self.timeouts() + self.others()
    }

    /// PASS reports.
    pub(crate) fn passed(&self) -> u64 {
        self.0.passed.load(Ordering::Relaxed)
    }

    /// TIMEOUT reports.
    pub(crate) fn timeouts(&self) -> u64 {
        self.0.timeouts.load(Ordering::Relaxed)
    }

    /// Reports of any other state (FAIL, ERROR, SKIP).
    pub(crate) fn others(&self) -> u64 {
        self.0.others.load(Ordering::Relaxed)
    }

    /// When the last test report came.
    pub(crate) fn last(&self) -> Option<Instant> {
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Polls until `n` test reports came; false if `within` passed first.
    pub(crate) async fn wait_for(&self, n: u64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.total() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// A worker running in this process on the Kafka transport.
#[derive(Debug)]
pub(crate) struct RunningWorker {
    /// Its view (counters, stored signals).
    pub(crate) handle: WorkerHandle,
    worker: SpawnedWorker,
}

impl RunningWorker {
    /// Creates the topics, starts a worker running `cases`, and waits until the group assigned
    /// it its partitions.
    pub(crate) async fn start(
        config: &KafkaConfig,
        cases: Vec<CaseConfig>,
        settings: WorkerSettings,
        reports: Reports,
    ) -> Result<RunningWorker, String> {
        let transport = Arc::new(KafkaTransport::new(config.clone()).map_err(|e| e.to_string())?);
        transport
            .ensure_topics()
            .await
            .map_err(|e| format!("topics: {e}"))?;
        let worker = Worker::builder_arc(transport.clone())
            .cases(cases)
            .settings(settings)
            .observer(reports)
            .build()
            .map_err(|e| e.to_string())?;
        let worker = worker.spawn();
        let mut assignment = transport.assignment();
        tokio::time::timeout(
            Duration::from_secs(60),
            assignment.wait_for(|p| p.len() == PARTITIONS as usize),
        )
        .await
        .map_err(|_| "the worker got no partitions within 60 s".to_owned())?
        .map_err(|_| "the transport is gone".to_owned())?;
        Ok(RunningWorker {
            handle: worker.handle().clone(),
            worker,
        })
    }

    /// Stops the worker (running tests get its grace period).
    pub(crate) async fn stop(self) {
        if let Err(error) = self.worker.stop().await {
            eprintln!("worker failed: {error}");
        }
    }
}

/// A service's client: a producer of its own, as a service process has.
pub(crate) fn service_client(config: &KafkaConfig) -> Result<Client, String> {
    KafkaTransport::new(config.clone())
        .map(Client::new)
        .map_err(|e| e.to_string())
}
