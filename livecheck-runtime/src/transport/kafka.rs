//! The Kafka transport, on `rdkafka`: topics `livecheck` (executions), `livecheck-bus` (signals)
//! and `livecheck-report` (reports), keyed by test id.
//!
//! - Workers form one consumer group on the tests topic. Offsets are committed by hand, only up
//!   to the oldest test whose report is not yet published (at-least-once).
//! - The bus is not consumed as a group: each worker assigns itself the bus partitions with the
//!   numbers of its tests partitions (the topics have the same partition count and every producer
//!   uses the same partitioner, so a test and its signals share a partition number). On a new
//!   assignment it reads those bus partitions again from "now − signal_replay", so a test that
//!   moved from a dead worker still finds the signals sent before the move.
//! - The leader is the worker that owns partition 0 of the tests topic.
//! - The report topic is read back by every worker, whole (all partitions, assigned, no group),
//!   from "now − report_replay": the group's reports feed every worker's case health, so the
//!   group judges as one ([`crate::worker`]). A report carries a `livecheck-publisher` header
//!   naming the transport that published it, so a worker knows its own.
//! - An undecodable message is logged, counted ([`Transport::counters`]) and skipped.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::group::{
    assigned_partitions, subscribed_topics, GroupView, Look, OrphanJudge, PartitionView,
    THIS_WORKER,
};
use super::offsets::{OffsetTracker, Received};
use super::{
    Acknowledger, Delivery, DropCounter, PublishedReport, Queued, ReportEvent, SkipCounter,
    Subscription, Transport, TransportCounters, TransportError, TransportFuture, QUEUE_FULL,
    UNDELIVERED,
};
use crate::codec::{encode_report, Codec};
use crate::context::current_test;
use crate::limits::Limits;
use crate::model::{
    HeaderTime, SignalEvent, TestExecution, TestReport, HEADER_TEST_EXPIRES, HEADER_TEST_ID,
    HEADER_TEST_NAME, HEADER_TEST_TIMESTAMP,
};
use crate::signing::{self, Source, HEADER_RECORD_SIGNATURE, HEADER_TEST_SIGNATURE};
use crate::text::Escaped;
use crate::trace::{TraceParent, TRACEPARENT, TRACESTATE};

/// Topic names (`#[non_exhaustive]`: [`Topics::new`] or [`Topics::default`], then fields set).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Topics {
    /// Test executions (`livecheck`).
    pub tests: String,
    /// Signals (`livecheck-bus`).
    pub bus: String,
    /// Reports (`livecheck-report`).
    pub reports: String,
}

impl Topics {
    /// The three topics by name: tests, bus (signals), reports.
    pub fn new(
        tests: impl Into<String>,
        bus: impl Into<String>,
        reports: impl Into<String>,
    ) -> Self {
        Topics {
            tests: tests.into(),
            bus: bus.into(),
            reports: reports.into(),
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            tests: "livecheck".into(),
            bus: "livecheck-bus".into(),
            reports: "livecheck-report".into(),
        }
    }
}

/// Settings of the Kafka transport. Its `Debug` shows the properties' names, not their values
/// (passwords, keys). `#[non_exhaustive]`: made by [`KafkaConfig::new`], then fields set.
#[derive(Clone)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// librdkafka properties, applied last, unchanged (`-X key=value`): TLS, SASL, tuning.
    pub properties: Vec<(String, String)>,
    /// Consumer group of the workers (`livecheck`).
    pub group_id: String,
    /// Topic names.
    pub topics: Topics,
    /// Partitions of topics created at start-up (8).
    pub partitions: i32,
    /// Replication factor of topics created at start-up (1).
    pub replication: i32,
    /// Encoding of executions and signals written (bincode); both are read. A service whose
    /// tests are run by Faust workers, or whose signals Faust cases wait for, must write
    /// [`Codec::Json`]: see [`with_codec`](Self::with_codec).
    pub codec: Codec,
    /// How often the group is looked at for partitions nobody consumes (10 s; see
    /// [`GroupView`]).
    pub group_check_interval: Duration,
    /// How far back the bus is read on a new assignment (3 h, Faust's `test_expires`; a worker
    /// sets it to the largest `test_expires` of its cases).
    pub signal_replay: Duration,
    /// How far back a starting worker reads the report topic to rebuild the group's view: case
    /// health, suite state, tests already reported (1 h).
    pub report_replay: Duration,
    /// The largest id, name and record read from the three topics ([`Limits::DEFAULT`]); what
    /// is over a limit is skipped, counted and acknowledged.
    pub limits: Limits,
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|(key, _)| format!("{key}=<hidden>"))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("properties", &properties)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("codec", &self.codec)
            .field("signal_replay", &self.signal_replay)
            .field("limits", &self.limits)
            .finish()
    }
}

impl KafkaConfig {
    /// Defaults for these brokers.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            properties: Vec::new(),
            group_id: "livecheck".into(),
            topics: Topics::default(),
            partitions: 8,
            replication: 1,
            codec: Codec::default(),
            signal_replay: Duration::from_secs(3 * 3600),
            report_replay: Duration::from_secs(3600),
            group_check_interval: Duration::from_secs(10),
            limits: Limits::DEFAULT,
        }
    }

    /// `text` (a client's error) with the value of every property replaced by `<hidden>`:
    /// librdkafka repeats a value it rejects, and values hold passwords. Values of one or two
    /// characters are left (no secret, and replacing them would garble the message).
    pub(crate) fn hide_values(&self, text: &str) -> String {
        let mut values: Vec<&str> = self
            .properties
            .iter()
            .map(|(_, value)| value.as_str())
            .filter(|value| value.chars().count() > 2)
            .collect();
        // Longest first: a value that contains another is hidden whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        values.into_iter().fold(text.to_owned(), |text, value| {
            text.replace(value, "<hidden>")
        })
    }

    /// Writes executions and signals in `codec`.
    ///
    /// Faust reads only [`Codec::Json`]: a Faust worker fails on the first bincode message. So a
    /// service in a mixed deployment (docs/kafka.md, "Mixed deployments with Faust") sets it on
    /// its client:
    ///
    /// ```no_run
    /// use livecheck::codec::Codec;
    /// use livecheck::transport::kafka::{KafkaConfig, KafkaTransport};
    ///
    /// let config = KafkaConfig::new("kafka:9092").with_codec(Codec::Json);
    /// livecheck::Client::new(KafkaTransport::new(config)?).install();
    /// # Ok::<(), livecheck::transport::TransportError>(())
    /// ```
    ///
    /// Workers take it from `--codec json` (`LIVECHECK_CODEC=json`).
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The settings of livecheck's producers (ours for low latency, then
    /// [`properties`](Self::properties) on top): for code that must produce exactly as livecheck
    /// does, such as a service's own producer or the benchmark's bare-Kafka floor.
    pub fn producer_config(&self) -> ClientConfig {
        self.client_config(Role::Producer)
    }

    /// The settings of a worker's consumers, in consumer group `group` (ours, then
    /// [`properties`](Self::properties) on top).
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        self.client_config(Role::Consumer { group })
    }

    /// How long a worker holds the tests it reads after a partition assignment before it runs
    /// them: the consumer's `session.timeout.ms`, and at least twice its
    /// `heartbeat.interval.ms` (6 s by default) — time for an earlier owner the broker did not
    /// fence to hear of the rebalance and stop (see [`Handover`]). A member that has not heard
    /// from the coordinator for a session is out of the group by then; two heartbeats (3 s)
    /// proved too short on tansu (an old owner still ran tests 3.6 s on).
    fn handover(&self) -> Duration {
        let config = self.client_config(Role::Consumer { group: "" });
        let ms = |key: &str, default: u64| {
            config
                .get(key)
                .and_then(|ms| ms.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let heartbeat = ms("heartbeat.interval.ms", 3000);
        let session = ms("session.timeout.ms", 45_000);
        Duration::from_millis(session.max(2 * heartbeat))
    }

    /// The client settings we choose for low latency, then the user's properties on top.
    fn client_config(&self, role: Role<'_>) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "livecheck")
            // Signals are small and latency is what we measure: no Nagle, no batching delay.
            .set("socket.nagle.disable", "true")
            // After a broker outage, librdkafka's default backoff (up to 10 s between
            // reconnects) left the bus consumer seconds behind the tests consumer: tests then
            // timed out waiting for signals already on the bus (the fault test's broker restart).
            .set("reconnect.backoff.max.ms", "1000");
        match role {
            Role::Producer => {
                config
                    .set("linger.ms", "0")
                    // librdkafka's default (1,000,000) sends a request per message under load:
                    // a broker then sees thousands of one-message batches a second (on tansu,
                    // whose fetches cost O(stored batches), one worker did 373 tests/s instead
                    // of 9,498; docs/benchmarks.md). With Java's default of 5 in flight,
                    // messages queued behind them share the next request, and a lone message
                    // still goes out at once: no latency is added.
                    .set("max.in.flight.requests.per.connection", "5")
                    // Java's (and Faust's) partitioner, on every producer: a test and its
                    // signals land on the same partition number.
                    .set("partitioner", "murmur2_random")
                    // The bound of the queue that services publish into without waiting
                    // (issue 9, point 6): librdkafka's 100,000 messages, and 64 MiB instead
                    // of its 1 GiB, so a broker outage costs a service little memory. What
                    // does not fit is dropped and counted. -X overrides both.
                    .set("queue.buffering.max.messages", "100000")
                    .set("queue.buffering.max.kbytes", "65536");
            }
            Role::Consumer { group } => {
                config
                    .set("group.id", group)
                    .set("enable.auto.commit", "false")
                    .set("enable.auto.offset.store", "false")
                    .set("auto.offset.reset", "earliest")
                    // Brokers that hold a fetch until fetch.wait.max.ms (tansu) add it to every
                    // hop; Apache Kafka answers as soon as data is there. 5 ms bounds both.
                    .set("fetch.wait.max.ms", "5")
                    .set("session.timeout.ms", "6000")
                    .set("heartbeat.interval.ms", "1500")
                    .set("partition.assignment.strategy", "range");
            }
            Role::Admin => {}
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

enum Role<'a> {
    Producer,
    Consumer { group: &'a str },
    Admin,
}

/// Counters of the Kafka transport, as it updates them (a snapshot: [`Transport::counters`]).
#[derive(Debug, Default)]
pub(crate) struct KafkaStats {
    /// Messages on the tests topic that did not decode (skipped).
    undecodable_tests: AtomicU64,
    /// Messages on the bus that did not decode (skipped).
    undecodable_signals: AtomicU64,
    /// Consumer errors seen (the client reconnects by itself).
    consumer_errors: AtomicU64,
    /// Messages on the report topic that did not decode (skipped).
    undecodable_reports: AtomicU64,
    /// Tests and signals that could not be queued (queue full): dropped.
    dropped: DropCounter,
    /// Messages queued that the broker never acknowledged.
    undelivered: DropCounter,
    /// Records skipped as untrusted input (over a limit, a claim or suite report not believed).
    skips: SkipCounter,
}

impl KafkaStats {
    /// Tests and signals a service published that could not be queued (the producer's queue
    /// was full: the broker is gone or too slow), dropped without waiting.
    fn dropped(&self) -> u64 {
        self.dropped.total()
    }

    /// Messages queued that the broker never acknowledged (within librdkafka's
    /// `message.timeout.ms`), reports included.
    fn undelivered(&self) -> u64 {
        self.undelivered.total()
    }
}

/// The producer's delivery reports: each goes to the [`Queued`] of its message (if anybody
/// awaits it), and failures are counted, for fire-and-forget messages too.
struct ProduceContext {
    stats: Arc<KafkaStats>,
}

impl ClientContext for ProduceContext {}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = Box<Acknowledger>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        match result {
            Ok(_) => ack.acknowledge(Ok(())),
            Err((error, message)) => {
                let topic = message.topic();
                self.stats.undelivered.count(UNDELIVERED, topic, error);
                ack.acknowledge(Err(produce_error(
                    format!("deliver to {topic}"),
                    error.clone(),
                )));
            }
        }
    }
}

/// The Kafka transport; also what a service's [`Client`](crate::Client) uses to trigger tests
/// and send signals.
pub struct KafkaTransport {
    config: KafkaConfig,
    producer: Arc<ThreadedProducer<ProduceContext>>,
    stats: Arc<KafkaStats>,
    running: Mutex<Option<Running>>,
    assigned: watch::Sender<Vec<i32>>,
    /// Names this transport in the reports it publishes (`livecheck-publisher`).
    publisher: String,
    group: watch::Sender<Option<GroupView>>,
    /// This worker's membership of the group (set at each assignment), named in the reports
    /// it publishes (`livecheck-member`) and in its claims.
    membership: Arc<Mutex<Option<Membership>>>,
}

/// A worker's membership of its consumer group, as its consumer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    /// The member id the coordinator gave it.
    member: String,
    /// The group's generation of its latest assignment.
    generation: i32,
}

/// The member id and generation of a consumer, as librdkafka knows them (`None` before it
/// joined). rdkafka has no safe accessor for them.
fn membership<C: ClientContext>(client: &rdkafka::client::Client<C>) -> Option<Membership> {
    use rdkafka::bindings as rd;
    // SAFETY: `native_ptr` is a live handle for the borrow of `client`. librdkafka returns a
    // copy of the group metadata (or null), owned by us: read, then destroyed once; the member
    // id it points to lives as long as that copy and is copied out before the destroy.
    unsafe {
        let metadata = rd::rd_kafka_consumer_group_metadata(client.native_ptr());
        if metadata.is_null() {
            return None;
        }
        let member = rd::rd_kafka_consumer_group_metadata_member_id(metadata);
        let member = (!member.is_null()).then(|| {
            std::ffi::CStr::from_ptr(member)
                .to_string_lossy()
                .into_owned()
        });
        let generation = rd::rd_kafka_consumer_group_metadata_generation_id(metadata);
        rd::rd_kafka_consumer_group_metadata_destroy(metadata);
        member
            .filter(|m| !m.is_empty())
            .map(|member| Membership { member, generation })
    }
}

struct Running {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for KafkaTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaTransport")
            .field("brokers", &self.config.brokers)
            .field("topics", &self.config.topics)
            .field("codec", &self.config.codec)
            .finish_non_exhaustive()
    }
}

fn broker_error(context: impl Into<String>, error: rdkafka::error::KafkaError) -> TransportError {
    TransportError::Broker {
        context: context.into(),
        cause: Box::new(error),
    }
}

/// A producer's error: [`TransportError::TooLarge`] for a message larger than the client or the
/// broker accepts (the worker then truncates its report), else a broker error.
fn produce_error(context: String, error: KafkaError) -> TransportError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
            TransportError::TooLarge
        }
        _ => broker_error(context, error),
    }
}

impl KafkaTransport {
    /// A transport on these settings. Creates the producer; connects lazily.
    pub fn new(config: KafkaConfig) -> Result<Self, TransportError> {
        let stats = Arc::new(KafkaStats::default());
        let producer = config
            .client_config(Role::Producer)
            .create_with_context(ProduceContext {
                stats: stats.clone(),
            })
            .map_err(|e| TransportError::Config(config.hide_values(&e.to_string())))?;
        Ok(KafkaTransport {
            config,
            producer: Arc::new(producer),
            stats,
            running: Mutex::new(None),
            assigned: watch::channel(Vec::new()).0,
            publisher: uuid::Uuid::new_v4().to_string(),
            group: watch::channel(None).0,
            membership: Arc::new(Mutex::new(None)),
        })
    }

    /// The settings.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// The partitions of the tests topic this worker owns now (empty until the group assigns
    /// some); watch it to know when a worker is ready.
    pub fn assignment(&self) -> watch::Receiver<Vec<i32>> {
        self.assigned.subscribe()
    }

    /// Creates the three topics where missing and checks that the tests and bus topics have the
    /// same partition count (else a test and its signals could meet on different workers).
    pub async fn ensure_topics(&self) -> Result<(), TransportError> {
        let admin: AdminClient<DefaultClientContext> = self
            .config
            .client_config(Role::Admin)
            .create()
            .map_err(|e| broker_error("create admin client", e))?;
        let topics = &self.config.topics;
        let names = [&topics.tests, &topics.bus, &topics.reports];
        let existing = self.partition_counts(&names).await?;
        let missing: Vec<NewTopic<'_>> = names
            .iter()
            .filter(|name| !existing.contains_key(name.as_str()))
            .map(|name| {
                NewTopic::new(
                    name,
                    self.config.partitions,
                    TopicReplication::Fixed(self.config.replication),
                )
            })
            .collect();
        if !missing.is_empty() {
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            let results = admin
                .create_topics(missing.iter(), &options)
                .await
                .map_err(|e| broker_error("create topics", e))?;
            for result in results {
                match result {
                    Ok(name) => tracing::info!(topic = %name, "topic created"),
                    Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                        tracing::debug!(topic = %name, "topic created meanwhile")
                    }
                    Err((name, code)) => {
                        return Err(TransportError::Config(format!(
                            "cannot create topic {name}: {code}"
                        )))
                    }
                }
            }
        }
        // Topic metadata can lag a creation: poll until all three are visible.
        let mut counts = HashMap::new();
        for _ in 0..50 {
            counts = self.partition_counts(&names).await?;
            if counts.len() == names.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (Some(tests), Some(bus)) = (counts.get(&topics.tests), counts.get(&topics.bus)) else {
            return Err(TransportError::Config(format!(
                "topics {} and {} do not exist and could not be created",
                topics.tests, topics.bus
            )));
        };
        if tests != bus {
            return Err(TransportError::Config(format!(
                "the tests topic {} has {tests} partitions but the bus topic {} has {bus}: they \
                 must be equal so that a test and its signals reach the same worker",
                topics.tests, topics.bus
            )));
        }
        Ok(())
    }

    async fn partition_counts(
        &self,
        names: &[&String],
    ) -> Result<HashMap<String, usize>, TransportError> {
        let consumer: BaseConsumer = self
            .config
            .client_config(Role::Admin)
            .create()
            .map_err(|e| broker_error("create metadata client", e))?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let mut counts = HashMap::new();
            for name in names {
                let metadata = consumer
                    .fetch_metadata(Some(&name), Duration::from_secs(10))
                    .map_err(|e| broker_error(format!("metadata of {name}"), e))?;
                if let Some(topic) = metadata.topics().first() {
                    if topic.error().is_none() && !topic.partitions().is_empty() {
                        counts.insert(name, topic.partitions().len());
                    }
                }
            }
            Ok(counts)
        })
        .await
        .map_err(|e| TransportError::Config(format!("metadata task failed: {e}")))?
    }

    /// Hands a record to librdkafka's queue, never waiting: the returned [`Queued`] resolves
    /// with its delivery report.
    fn enqueue(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<Queued, KafkaError> {
        let (ack, queued) = Queued::pending();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(ack))
            .key(key)
            .payload(payload);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        self.producer
            .send(record)
            .map(|()| queued)
            .map_err(|(error, _)| error)
    }

    /// The headers of a report: who wrote it (this transport, its group and member id) and,
    /// where the deployment has a key, its signature.
    fn report_headers(&self, key: &str, payload: &[u8]) -> OwnedHeaders {
        let member = lock(&self.membership).as_ref().map(|m| m.member.clone());
        let signature = signing::key().map(|k| k.sign_record(REPORT_KIND, key.as_bytes(), payload));
        [
            (HEADER_PUBLISHER, Some(self.publisher.as_str())),
            (HEADER_GROUP, Some(self.config.group_id.as_str())),
            (HEADER_MEMBER, member.as_deref()),
            (HEADER_RECORD_SIGNATURE, signature.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
        .fold(
            OwnedHeaders::new_with_capacity(4),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            },
        )
    }

    /// A message of a service that could not be queued: dropped, counted, logged (rarely).
    fn refused(&self, topic: &str, error: KafkaError) -> TransportError {
        self.stats.dropped.count(QUEUE_FULL, topic, &error);
        broker_error(format!("queue a message for {topic}"), error)
    }
}

impl Transport for KafkaTransport {
    fn publish_test(&self, test: &TestExecution) -> Result<Queued, TransportError> {
        let topic = &self.config.topics.tests;
        let payload = self.config.codec.encode_test(test);
        self.enqueue(topic, &test.id, &payload, Some(test_headers(test)))
            .map_err(|error| self.refused(topic, error))
    }

    fn publish_signal(&self, signal: &SignalEvent) -> Result<Queued, TransportError> {
        let topic = &self.config.topics.bus;
        let payload = self.config.codec.encode_signal(signal);
        // A signal sent in a test carries the test's trace, like the service's own records.
        let mut headers = current_test()
            .filter(|test| test.traceparent.is_some())
            .map(|test| insert_trace_headers(OwnedHeaders::new_with_capacity(3), &test));
        // Signed where the deployment has a key: a worker takes no unsigned signal then.
        if let Some(key) = signing::key() {
            let signature = key.sign_record(SIGNAL_KIND, signal.key.as_bytes(), &payload);
            headers = Some(headers.unwrap_or_default().insert(Header {
                key: HEADER_RECORD_SIGNATURE,
                value: Some(signature.as_bytes()),
            }));
        }
        self.enqueue(topic, &signal.key, &payload, headers)
            .map_err(|error| self.refused(topic, error))
    }

    fn publish_report<'a>(&'a self, report: &'a TestReport) -> TransportFuture<'a, ()> {
        Box::pin(async move {
            let payload = encode_report(report);
            let key = report
                .test
                .as_ref()
                .map_or(report.case_name.as_str(), |t| t.id.as_str());
            let publisher = self.report_headers(key, &payload);
            let topic = &self.config.topics.reports;
            loop {
                match self.enqueue(topic, key, &payload, Some(publisher.clone())) {
                    Ok(queued) => return queued.await,
                    // A report is never dropped: it waits for room (the worker is not on a
                    // service's request path), then for the broker's acknowledgement.
                    Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => return Err(produce_error(format!("produce to {topic}"), error)),
                }
            }
        })
    }

    fn flush(&self, timeout: Duration) -> TransportFuture<'_, ()> {
        let producer = self.producer.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || producer.flush(timeout))
                .await
                .map_err(|e| TransportError::Config(format!("flush task failed: {e}")))?
                .map_err(|e| broker_error("flush", e))
        })
    }

    fn subscribe(&self) -> TransportFuture<'_, Subscription> {
        Box::pin(async move {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if running.is_some() {
                return Err(TransportError::AlreadySubscribed);
            }
            let (shutdown, shutdown_rx) = watch::channel(false);
            let assigned_tx = self.assigned.clone();
            let assigned_rx = self.assigned.subscribe();
            let (leader_tx, leader_rx) = watch::channel(false);
            let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
            let (handover, handover_rx) = Handover::new(self.config.handover());
            let (claims, claims_rx) = mpsc::channel(CLAIMS_WAITING);
            let context = GroupContext {
                tests_topic: self.config.topics.tests.clone(),
                tracker: tracker.clone(),
                assigned: assigned_tx,
                leader: leader_tx,
                handover: handover.clone(),
                markers: Markers {
                    producer: self.producer.clone(),
                    bus: self.config.topics.bus.clone(),
                    group: self.config.group_id.clone(),
                    // Names this worker's markers on the bus (see `offsets`).
                    instance: uuid::Uuid::new_v4().to_string(),
                    codec: self.config.codec,
                },
                membership: self.membership.clone(),
                claims,
            };
            let tests: StreamConsumer<GroupContext> = self
                .config
                .client_config(Role::Consumer {
                    group: &self.config.group_id,
                })
                .create_with_context(context)
                .map_err(|e| broker_error("create tests consumer", e))?;
            tests
                .subscribe(&[&self.config.topics.tests])
                .map_err(|e| broker_error("subscribe", e))?;
            let bus_group = format!("{}-bus", self.config.group_id);
            let bus: StreamConsumer = self
                .config
                .client_config(Role::Consumer { group: &bus_group })
                .create()
                .map_err(|e| broker_error("create bus consumer", e))?;

            let tests = Arc::new(tests);
            let (tests_tx, tests_rx) = mpsc::channel(1024);
            let (signals_tx, signals_rx) = mpsc::channel(4096);
            let tasks = vec![
                tokio::spawn(resume_after_handover(
                    tests.clone(),
                    handover,
                    handover_rx,
                    shutdown_rx.clone(),
                )),
                tokio::spawn(consume_tests(
                    tests.clone(),
                    TestsReader {
                        tracker: tracker.clone(),
                        limits: self.config.limits,
                        budget: Arc::new(tokio::sync::Semaphore::new(TEST_BYTES_BUDGET)),
                    },
                    tests_tx,
                    self.stats.clone(),
                    shutdown_rx.clone(),
                )),
                tokio::spawn(watch_group(
                    tests.clone(),
                    self.config.group_id.clone(),
                    self.config.topics.reports.clone(),
                    self.config.group_check_interval,
                    self.group.clone(),
                    shutdown_rx.clone(),
                )),
                tokio::spawn(commit_loop(tests.clone(), tracker, shutdown_rx.clone())),
                tokio::spawn(judge_claims(
                    tests.clone(),
                    self.config.group_id.clone(),
                    claims_rx,
                    self.stats.clone(),
                    shutdown_rx.clone(),
                )),
                tokio::spawn(consume_bus(
                    Arc::new(bus),
                    BusReader {
                        topic: self.config.topics.bus.clone(),
                        replay: self.config.signal_replay,
                        tests,
                        limits: self.config.limits,
                    },
                    assigned_rx,
                    signals_tx,
                    self.stats.clone(),
                    shutdown_rx,
                )),
            ];
            let (feed, reports) = self.report_feed(shutdown.subscribe())?;
            let mut tasks = tasks;
            tasks.push(feed);
            *running = Some(Running { shutdown, tasks });
            Ok(Subscription {
                tests: receiver_stream(tests_rx).boxed(),
                signals: receiver_stream(signals_rx).boxed(),
                leader: leader_rx,
                reports,
            })
        })
    }

    fn counters(&self) -> TransportCounters {
        TransportCounters {
            undecodable_tests: self.stats.undecodable_tests.load(Ordering::Relaxed),
            undecodable_signals: self.stats.undecodable_signals.load(Ordering::Relaxed),
            consumer_errors: self.stats.consumer_errors.load(Ordering::Relaxed),
            dropped: self.stats.dropped(),
            undelivered: self.stats.undelivered(),
            undecodable_reports: self.stats.undecodable_reports.load(Ordering::Relaxed),
        }
    }

    fn is_assigned(&self) -> bool {
        !self.assigned.borrow().is_empty()
    }

    fn group(&self) -> Option<GroupView> {
        self.group.borrow().clone()
    }

    fn brokers(&self) -> Option<String> {
        Some(self.config.brokers.clone())
    }

    fn assigned_partitions(&self) -> Option<Vec<i32>> {
        Some(self.assigned.borrow().clone())
    }

    fn skipped(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.stats.skips.snapshot()
    }

    fn close(&self) -> TransportFuture<'_, ()> {
        Box::pin(async move {
            let running = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(running) = running {
                running.shutdown.send_replace(true);
                for task in running.tasks {
                    let _ = task.await;
                }
            }
            let producer = self.producer.clone();
            let _ =
                tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10))).await;
            Ok(())
        })
    }
}

fn receiver_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

/// Rebalance callbacks of the tests consumer: track offsets and leases, tell the bus which
/// partitions to read, and who leads.
struct GroupContext {
    tests_topic: String,
    tracker: Arc<Mutex<OffsetTracker>>,
    assigned: watch::Sender<Vec<i32>>,
    leader: watch::Sender<bool>,
    handover: Arc<Handover>,
    /// Claims at each assignment, progress while it works (see `offsets`).
    markers: Markers,
    /// This worker's membership, set at each assignment (shared with the transport).
    membership: Arc<Mutex<Option<Membership>>>,
    /// Claims of other members to be checked with the coordinator before they fence.
    claims: mpsc::Sender<ClaimRead>,
}

impl ClientContext for GroupContext {}

/// The handover after each partition assignment: the partitions assigned are paused, and
/// resumed `hold` later.
///
/// Apache Kafka's eager protocol revokes every member before it assigns anyone, so a partition
/// never has two owners. tansu 0.6.0 does not wait: it completes a rebalance as soon as its
/// leader syncs, the other members hear of it at their next heartbeat (up to
/// `heartbeat.interval.ms` later), and it does not fence their commits. For that while the old
/// owner goes on running the partition's new tests (issue 9's fault test saw them reported
/// twice). Paused for twice the heartbeat interval, the new owner reads those tests only once
/// the old owner has stopped, finds their reports already read back and skips them. Pausing
/// (not sleeping in the consumer loop) keeps the consumer polled, so the rebalances that follow
/// are served at once.
#[derive(Debug)]
struct Handover {
    hold: Duration,
    /// Bumped at every (re)assignment, under the lock the rebalance callback holds while it
    /// assigns and pauses: a resume meant for an earlier assignment is dropped.
    epoch: Mutex<u64>,
    /// The latest assignment's epoch and when its partitions resume.
    wake: watch::Sender<(u64, Option<Instant>)>,
}

impl Handover {
    fn new(hold: Duration) -> (Arc<Self>, watch::Receiver<(u64, Option<Instant>)>) {
        let (wake, rx) = watch::channel((0, None));
        let handover = Handover {
            hold,
            epoch: Mutex::new(0),
            wake,
        };
        (Arc::new(handover), rx)
    }

    /// Assigns through `assign`, then pauses the partitions assigned (`tpl`) for the hold.
    fn assign<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        tpl: &TopicPartitionList,
        assign: impl FnOnce() -> KafkaResult<()>,
    ) -> KafkaResult<()> {
        let mut epoch = lock(&self.epoch);
        *epoch += 1;
        assign()?;
        if self.hold.is_zero() || tpl.count() == 0 {
            return Ok(());
        }
        if let Err(error) = consumer.pause(tpl) {
            tracing::warn!(%error, "could not pause the partitions assigned for the handover");
            return Ok(());
        }
        tracing::debug!(hold = ?self.hold, partitions = tpl.count(), "handover: paused");
        self.wake
            .send_replace((*epoch, Some(Instant::now() + self.hold)));
        Ok(())
    }

    /// A revocation: a pending resume no longer applies.
    fn revoked(&self) {
        *lock(&self.epoch) += 1;
    }

    /// The hold of assignment `epoch` is over: resumes what is assigned, unless a later
    /// assignment came meanwhile (it has a hold of its own).
    fn resume<C: ConsumerContext>(&self, consumer: &impl Consumer<C>, epoch: u64) {
        let current = lock(&self.epoch);
        if *current != epoch {
            return;
        }
        let resumed = consumer
            .assignment()
            .and_then(|assigned| consumer.resume(&assigned));
        match resumed {
            Ok(()) => tracing::debug!("handover: resumed"),
            Err(error) => {
                tracing::warn!(%error, "could not resume the partitions after the handover")
            }
        }
    }
}

/// Resumes the tests consumer's partitions when each handover ends (see [`Handover`]).
async fn resume_after_handover(
    consumer: Arc<StreamConsumer<GroupContext>>,
    handover: Arc<Handover>,
    mut wake: watch::Receiver<(u64, Option<Instant>)>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (epoch, until) = *wake.borrow_and_update();
        if let Some(until) = until {
            tokio::select! {
                _ = shutdown.changed() => break,
                changed = wake.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(until.into()) => {
                    handover.resume(consumer.as_ref(), epoch);
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            changed = wake.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

impl GroupContext {
    fn partitions(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        let mut partitions: Vec<i32> = tpl
            .elements()
            .iter()
            .filter(|e| e.topic() == self.tests_topic)
            .map(|e| e.partition())
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        partitions
    }

    /// Settles the leases on the partitions now owned, and returns where kept partitions resume.
    fn settle(&self, partitions: Vec<i32>, membership: Option<Membership>) -> Vec<(i32, i64)> {
        let (resume, generation) = {
            let mut tracker = lock(&self.tracker);
            (tracker.assign(&partitions), tracker.generation())
        };
        if membership.is_some() {
            *lock(&self.membership) = membership.clone();
        }
        self.markers
            .claim(&partitions, generation, membership.as_ref());
        tracing::info!(?partitions, "partitions assigned");
        self.leader.send_replace(partitions.contains(&0));
        self.assigned.send_replace(partitions);
        resume
    }
}

impl GroupContext {
    /// A claim of another instance, read back from the bus after this worker's own and vouched
    /// for by the coordinator (see `offsets`, [`judge_claims`]): fences the partition here.
    fn claim_read(&self, partition: i32, instance: &str) {
        if !lock(&self.tracker).fence(partition) {
            return;
        }
        tracing::warn!(
            partition,
            by = %Escaped(signing::truncated(instance)),
            "partition claimed by another worker (the coordinator agrees): its tests stop here \
             unreported (fenced until the group assigns it back)"
        );
        if partition == 0 {
            self.leader.send_replace(false);
        }
        // Not this worker's any more: the bus reader lets the partition go, so that when an
        // assignment gives it back it replays the window again. A test that comes back here
        // then finds the signals it had before (they were let go when it stopped; a fault run
        // saw a test come back and TIMEOUT for a signal read before the fence).
        self.assigned
            .send_modify(|assigned| assigned.retain(|&p| p != partition));
    }
}

impl ConsumerContext for GroupContext {
    /// A commit the broker refused (asynchronous commits report only here): the offsets are
    /// committed again at the next tick. Left alone, a refused commit (tansu refuses some
    /// across rebalances) kept a partition's committed offset behind until its next test — so
    /// the orphaned-partitions watch saw tests waiting with no progress on a partition that was
    /// done, and a restart ran its last tests again.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let Err(error) = result else {
            return;
        };
        let refused: Vec<(i32, i64)> = offsets
            .elements()
            .iter()
            .filter(|e| e.topic() == self.tests_topic)
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect();
        lock(&self.tracker).commit_refused(&refused);
        if COMMIT_REFUSED_LOG.ready() {
            tracing::warn!(%error, partitions = ?refused,
                "offset commit refused; committing again (logged at most once a minute)");
        }
    }

    /// Kafka's rebalance, with livecheck's bookkeeping around it:
    /// - revoke (eager protocol: every partition, before any assignment): commit what is done,
    ///   then every running test's lease is pending;
    /// - assign: leases of partitions kept are owned again and those partitions resume after
    ///   what this worker already read (not at the committed offset, which would run the tests
    ///   in flight a second time); leases of partitions lost are lost.
    ///
    /// The cooperative protocol (`-X partition.assignment.strategy=cooperative-sticky`) moves
    /// only some partitions: its revocations are final at once.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::consumer::RebalanceProtocol;
        use rdkafka::types::RDKafkaRespErr as Code;
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            Code::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut partitions = self.partitions(tpl);
                if cooperative {
                    partitions.extend(self.assigned.borrow().iter().copied());
                    partitions.sort_unstable();
                    partitions.dedup();
                }
                for (partition, next) in self.settle(partitions, membership(consumer.client())) {
                    if let Some(mut element) = tpl.find_partition(&self.tests_topic, partition) {
                        let _ = element.set_offset(Offset::Offset(next));
                    }
                }
                let tpl = &*tpl;
                self.handover.assign(consumer, tpl, || {
                    if cooperative {
                        consumer.incremental_assign(tpl)
                    } else {
                        consumer.assign(tpl)
                    }
                })
            }
            Code::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.handover.revoked();
                commit_done(consumer, &self.tests_topic, &self.tracker, CommitMode::Sync);
                tracing::info!("partitions revoked");
                self.leader.send_replace(false);
                if cooperative {
                    let revoked = self.partitions(tpl);
                    let kept: Vec<i32> = self
                        .assigned
                        .borrow()
                        .iter()
                        .copied()
                        .filter(|p| !revoked.contains(p))
                        .collect();
                    self.settle(kept, membership(consumer.client()));
                    consumer.incremental_unassign(tpl)
                } else {
                    lock(&self.tracker).revoke_all();
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                // As librdkafka does on an error: drop the assignment; the group rejoins.
                lock(&self.tracker).revoke_all();
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "partition (un)assignment failed");
        }
    }
}

/// What the tests consumer needs beside its consumer and channel.
struct TestsReader {
    tracker: Arc<Mutex<OffsetTracker>>,
    limits: Limits,
    /// Bytes of test records decoded and not yet acknowledged (queued for a slot, or running):
    /// one permit a byte. A flood of large records waits in Kafka, not in memory.
    budget: Arc<tokio::sync::Semaphore>,
}

/// Bytes of test records a worker holds decoded at once (see [`TestsReader::budget`]); a record
/// larger than this takes the whole budget.
const TEST_BYTES_BUDGET: usize = 64 * 1024 * 1024;

async fn consume_tests(
    consumer: Arc<StreamConsumer<GroupContext>>,
    reader: TestsReader,
    out: mpsc::Sender<Delivery<TestExecution>>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let TestsReader {
        tracker,
        limits,
        budget,
    } = reader;
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                consumer_error(&stats, "tests", &error);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (partition, offset) = (message.partition(), message.offset());
        let received = lock(&tracker).received(partition, offset);
        let (generation, lease) = match received {
            Received::Run { generation, lease } => (generation, lease),
            Received::Seen => {
                tracing::debug!(partition, offset, "test already read here: not run twice");
                continue;
            }
            Received::NotAssigned => continue,
        };
        // Untrusted input: its size is checked before it is decoded, its fields before any
        // work is done on it. What is over a limit is skipped and acknowledged (its offset is
        // committed past: a restart does not read it again).
        let payload = message.payload().unwrap_or_default();
        let checked = limits
            .check_record(payload.len())
            .map_err(Skip::Over)
            .and_then(|()| Codec::decode_test(payload).map_err(Skip::Undecodable))
            .and_then(|test| match limits.check_test(&test) {
                Ok(()) => Ok(test),
                Err(over) => Err(Skip::Over(over)),
            });
        let size = payload.len();
        match checked {
            Ok(mut test) => {
                // The bincode record has no trace nor signature: its headers carry them.
                if test.traceparent.is_none() {
                    if let Some((parent, state)) = trace_of(&message) {
                        test.traceparent = Some(parent);
                        test.tracestate = state;
                    }
                }
                if test.signature.is_none() {
                    test.signature = header(&message, HEADER_TEST_SIGNATURE)
                        .and_then(|raw| std::str::from_utf8(raw).ok())
                        .filter(|text| text.len() <= 128)
                        .map(Box::from);
                }
                drop(message);
                let permits = u32::try_from(size.clamp(1, TEST_BYTES_BUDGET)).unwrap_or(u32::MAX);
                let held = tokio::select! {
                    _ = shutdown.changed() => break,
                    held = budget.clone().acquire_many_owned(permits) => held,
                };
                let (done, attempt) = (tracker.clone(), tracker.clone());
                let delivery = Delivery::with_ack(test, move || {
                    lock(&done).done(partition, offset, generation);
                    drop(held);
                })
                .with_lease(lease, move || lock(&attempt).attempt(partition, offset));
                if out.send(delivery).await.is_err() {
                    break;
                }
            }
            Err(Skip::Undecodable(error)) => {
                count_skip(&stats.undecodable_tests, "tests", partition, offset, &error);
                lock(&tracker).done(partition, offset, generation);
            }
            Err(Skip::Over(over)) => {
                stats.skips.skip(
                    "tests",
                    over.reason(),
                    format_args!("test at {partition}/{offset}: {over}"),
                );
                lock(&tracker).done(partition, offset, generation);
            }
        }
    }
}

/// Why a record is skipped.
enum Skip {
    Over(crate::limits::OverLimit),
    Undecodable(crate::codec::DecodeError),
}

/// The value of header `name` of `message` (case-insensitive), if any.
fn header<'a, M: Message>(message: &'a M, name: &str) -> Option<&'a [u8]> {
    message
        .headers()?
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .and_then(|h| h.value)
}

/// Counts a consumer error and logs it: the first, then one in a hundred (a broker outage makes
/// every consumer loop fail many times a second; the client reconnects by itself).
fn consumer_error(stats: &KafkaStats, consumer: &str, error: &dyn std::fmt::Display) {
    let n = stats.consumer_errors.fetch_add(1, Ordering::Relaxed) + 1;
    if n == 1 || n % 100 == 0 {
        tracing::warn!(consumer, errors = n, %error, "consumer error (the client retries)");
    } else {
        tracing::debug!(consumer, %error, "consumer error (the client retries)");
    }
}

fn count_skip(
    counter: &AtomicU64,
    topic: &str,
    partition: i32,
    offset: i64,
    error: &dyn std::fmt::Display,
) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    // One warning, then one per hundred: a flood of bad messages must not flood the log.
    if n == 1 || n % 100 == 0 {
        tracing::warn!(topic, partition, offset, skipped = n, %error,
            "undecodable message skipped");
    } else {
        tracing::debug!(topic, partition, offset, %error, "undecodable message skipped");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Looks at the group every `every` (see [`GroupView`]): who owns which partition of the tests
/// topic, the lag of each, and which are orphaned — said loudly, once when it starts and once
/// when it ends.
async fn watch_group(
    consumer: Arc<StreamConsumer<GroupContext>>,
    group: String,
    reports: String,
    every: Duration,
    view: watch::Sender<Option<GroupView>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut judge = OrphanJudge::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        let (c, g) = (consumer.clone(), group.clone());
        let r = reports.clone();
        let look = tokio::task::spawn_blocking(move || look_at_group(&c, &g, &r)).await;
        let (state, members, described, partitions) = match look {
            Ok(Ok(look)) => look,
            Ok(Err(error))
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature) =>
            {
                // librdkafka's mock cluster cannot list groups: nothing to watch there.
                tracing::debug!(%error, "the broker cannot describe consumer groups: orphaned partitions are not watched");
                break;
            }
            Ok(Err(error)) => {
                failures += 1;
                if failures == 1 || failures % 30 == 0 {
                    tracing::warn!(%error, failures, "could not look at the consumer group");
                }
                continue;
            }
            Err(_) => continue,
        };
        let orphaned = judge.judge(state == "Stable" && members > 0, described, &partitions);
        let before = view
            .borrow()
            .as_ref()
            .map(|v| v.orphaned.clone())
            .unwrap_or_default();
        if orphaned != before {
            if orphaned.is_empty() {
                tracing::info!(group, "orphaned partitions: none any more");
            } else {
                let waiting: i64 = orphaned
                    .iter()
                    .filter_map(|p| partitions.get(p).and_then(|(_, lag, _)| *lag))
                    .sum();
                // The owner the coordinator claims, where it names one: its word, against
                // the data (tests waiting, no progress).
                let owners: Vec<String> = orphaned
                    .iter()
                    .map(|p| {
                        let owner = partitions.get(p).and_then(|(owner, _, _)| owner.as_deref());
                        format!("{p}: {}", owner.unwrap_or("no member"))
                    })
                    .collect();
                tracing::error!(group, partitions = ?orphaned, tests_waiting = waiting,
                    coordinator_says = ?owners, state = %state, members,
                    "orphaned partitions: tests wait on them and nothing of them is committed or \
                     reported, whatever the coordinator says; restarting a worker makes the \
                     group rebalance");
            }
        }
        view.send_replace(Some(GroupView {
            group: group.clone(),
            topic: consumer.context().tests_topic.clone(),
            state,
            members,
            partitions: partitions
                .into_iter()
                .map(|(partition, (owner, lag, _))| PartitionView {
                    partition,
                    owner,
                    lag,
                })
                .collect(),
            orphaned,
        }));
    }
}

/// The group's state, its member count, and each tests partition's owner and lag.
#[allow(clippy::type_complexity)]
fn look_at_group(
    consumer: &StreamConsumer<GroupContext>,
    group: &str,
    reports: &str,
) -> rdkafka::error::KafkaResult<(String, usize, bool, Look)> {
    let timeout = Duration::from_secs(5);
    let topic = consumer.context().tests_topic.as_str();
    // What this worker owns, it knows: brokers need not describe it (tansu 0.6.0 may not).
    let mine = consumer.context().assigned.borrow().clone();
    let groups = consumer.fetch_group_list(Some(group), timeout)?;
    let (state, members) = match groups.groups().iter().find(|g| g.name() == group) {
        Some(info) => (info.state().to_owned(), info.members()),
        None => (String::from("Unknown"), &[][..]),
    };
    let mut owners = HashMap::new();
    let mut described = false;
    for member in members {
        let partitions = member
            .assignment()
            .filter(|bytes| !bytes.is_empty())
            .and_then(|bytes| assigned_partitions(bytes, topic))
            .unwrap_or_default();
        described |= !partitions.is_empty();
        for partition in partitions {
            owners.insert(
                partition,
                format!("{} ({})", member.id(), member.client_host()),
            );
        }
    }
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    let mut tpl = TopicPartitionList::new();
    for partition in 0..count {
        tpl.add_partition(topic, partition as i32);
    }
    let committed = consumer.committed_offsets(tpl, timeout)?;
    // Reports land on the report partition numbered like their test's when both topics have
    // the same partition count (same key, same partitioner).
    let reports_partitions = consumer
        .fetch_metadata(Some(reports), timeout)
        .ok()
        .and_then(|m| {
            m.topics()
                .iter()
                .find(|t| t.name() == reports)
                .map(|t| t.partitions().len())
        })
        == Some(count);
    let mut out = BTreeMap::new();
    for partition in 0..count as i32 {
        let offset = match committed
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        let lag = consumer
            .fetch_watermarks(topic, partition, timeout)
            .ok()
            .map(|(low, high)| (high - offset.filter(|o| *o >= low).unwrap_or(low)).max(0));
        let owner = owners
            .remove(&partition)
            .or_else(|| mine.contains(&partition).then(|| THIS_WORKER.to_owned()));
        let reports_high = reports_partitions
            .then(|| consumer.fetch_watermarks(reports, partition, timeout).ok())
            .flatten()
            .map(|(_, high)| high);
        out.insert(partition, (owner, lag, (offset, reports_high)));
    }
    Ok((state, members.len(), described, out))
}

/// Refused commits are logged at most once a minute (they are retried every tick).
static COMMIT_REFUSED_LOG: crate::throttle::Throttle = crate::throttle::Throttle::new();

/// Commits what the tracker allows, now.
fn commit_done<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
    tracker: &Mutex<OffsetTracker>,
    mode: CommitMode,
) {
    let commits = lock(tracker).take_commits();
    if commits.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in commits {
        let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    if let Err(error) = consumer.commit(&tpl, mode) {
        // Not sent at all: commit these again at the next tick.
        let refused: Vec<(i32, i64)> = tpl
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect();
        lock(tracker).commit_refused(&refused);
        if COMMIT_REFUSED_LOG.ready() {
            tracing::warn!(%error, "offset commit failed; committing again (logged at most once a minute)");
        }
    }
}

/// Where a worker writes its markers — progress and claims (see `offsets`): the bus, as this
/// instance.
struct Markers {
    producer: Arc<ThreadedProducer<ProduceContext>>,
    bus: String,
    /// The consumer group: markers of other groups on the same topics (a `run --once`, a
    /// second deployment) are not about this group's partitions.
    group: String,
    instance: String,
    codec: Codec,
}

/// The `case_name` of markers on the bus: no case has it (case names are paths).
const MARKER_CASE: &str = "__livecheck";
/// The `signal_name` of a progress marker.
const PROGRESS: &str = "progress";
/// The `signal_name` of a claim.
const CLAIM: &str = "claim";

impl Markers {
    /// Writes one marker to bus partition `partition`, without waiting for its delivery.
    fn write(&self, partition: i32, name: &str, mut value: serde_json::Value) {
        value["group"] = self.group.clone().into();
        let marker = SignalEvent {
            signal_name: name.into(),
            case_name: MARKER_CASE.into(),
            key: self.instance.clone(),
            value,
        };
        let payload = self.codec.encode_signal(&marker);
        // Nobody awaits its delivery; a failure is still counted.
        let (ack, _delivery) = Queued::pending();
        let mut record = BaseRecord::with_opaque_to(&self.bus, Box::new(ack))
            .partition(partition)
            .key(&self.instance)
            .payload(&payload);
        if let Some(key) = signing::key() {
            let signature = key.sign_record(MARKER_KIND, self.instance.as_bytes(), &payload);
            record = record.headers(OwnedHeaders::new_with_capacity(1).insert(Header {
                key: HEADER_RECORD_SIGNATURE,
                value: Some(signature.as_bytes()),
            }));
        }
        if let Err((error, _)) = self.producer.send(record) {
            tracing::debug!(%error, partition, marker = name, "marker not written");
        }
    }

    /// Writes the progress markers that changed (a lost one only makes a later re-run's attempt
    /// number one too low).
    fn progress(&self, tracker: &Mutex<OffsetTracker>) {
        for (partition, started_upto, attempt) in lock(tracker).take_progress() {
            let value = serde_json::json!({"started_upto": started_upto, "attempt": attempt});
            self.write(partition, PROGRESS, value);
        }
    }

    /// Claims the partitions of this worker's assignment `assignment` (its own count), made
    /// in the group's generation and under the member id of `membership` (a lost claim, or one
    /// without a membership, only leaves the partition unfenced: the handover alone guards it).
    fn claim(&self, partitions: &[i32], assignment: u64, membership: Option<&Membership>) {
        let (member, generation) = membership.map_or((None, -1), |m| {
            (Some(m.member.as_str()), i64::from(m.generation))
        });
        for &partition in partitions {
            let value = serde_json::json!({
                "assignment": assignment,
                "generation": generation,
                "member": member,
            });
            self.write(partition, CLAIM, value);
        }
    }
}

/// A claim of another worker, read after this worker's own: it fences the partition here only
/// once the coordinator agrees (see [`judge_claims`]).
#[derive(Debug)]
struct ClaimRead {
    partition: i32,
    /// The claiming worker's instance (the record's key).
    instance: String,
    /// Its member id, as it says.
    member: String,
    /// The group generation it claims in.
    generation: i64,
}

/// How many claims may wait for the coordinator's word; more are not believed (a flood).
const CLAIMS_WAITING: usize = 64;

/// Checks each claim of another worker with the group's coordinator before it fences: it is
/// believed when this worker is no longer a member of the group, or when the claiming member
/// is one and — where the broker describes assignments — owns the partition. A claim the
/// coordinator cannot vouch for (no such member, the coordinator cannot be asked) is not
/// believed: counted (`claim_not_believed`), logged at most once a minute.
async fn judge_claims(
    consumer: Arc<StreamConsumer<GroupContext>>,
    group: String,
    mut claims: mpsc::Receiver<ClaimRead>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let claim = tokio::select! {
            _ = shutdown.changed() => break,
            claim = claims.recv() => match claim {
                Some(claim) => claim,
                None => break,
            },
        };
        // tansu may leave a live group out of a listing now and then: a few looks.
        let mut look = Err(String::new());
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let (consumer, group) = (consumer.clone(), group.clone());
            look = tokio::task::spawn_blocking(move || {
                consumer
                    .fetch_group_list(Some(&group), Duration::from_secs(5))
                    .map(|list| {
                        let state = list
                            .groups()
                            .iter()
                            .find(|g| g.name() == group)
                            .map_or_else(String::new, |g| g.state().to_owned());
                        let members = members_of(&list, &group, &consumer.context().tests_topic);
                        (state, members)
                    })
                    .map_err(|error| error.to_string())
            })
            .await
            .unwrap_or_else(|error| Err(error.to_string()));
            if look.as_ref().is_ok_and(|(_, members)| !members.is_empty()) {
                break;
            }
        }
        let context = consumer.context();
        let ours = lock(&context.membership).clone();
        let verdict = match look {
            Ok((state, members)) => judge_claim(&claim, ours.as_ref(), &state, &members),
            Err(error) => Err(format!("the coordinator cannot be asked: {error}")),
        };
        match verdict {
            Ok(()) => context.claim_read(claim.partition, &claim.instance),
            Err(why) => stats.skips.skip(
                "bus",
                "claim_not_believed",
                format_args!(
                    "claim of partition {} by {} not believed: {why}",
                    claim.partition,
                    Escaped(signing::truncated(&claim.member))
                ),
            ),
        }
    }
}

/// A member of the group as the coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    id: String,
    /// Its partitions of the tests topic (empty where the broker does not describe
    /// assignments).
    partitions: Vec<i32>,
    /// Whether it subscribes to the tests topic (true where its subscription does not read).
    subscribed: bool,
}

/// The members of `group`, with their partitions of `topic`.
fn members_of(list: &rdkafka::groups::GroupList, group: &str, topic: &str) -> Vec<Member> {
    list.groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|member| Member {
            id: member.id().to_owned(),
            partitions: member
                .assignment()
                .filter(|bytes| !bytes.is_empty())
                .and_then(|bytes| assigned_partitions(bytes, topic))
                .unwrap_or_default(),
            subscribed: member
                .metadata()
                .and_then(subscribed_topics)
                .is_none_or(|topics| topics.iter().any(|t| t == topic)),
        })
        .collect()
}

/// The leader among `members` — the owner of partition 0 of the tests topic — as far as the
/// coordinator's description tells: the member assigned partition 0 where assignments are
/// described; else, under the range assignor (`range`, livecheck's default), the first
/// subscribed member in member-id order, which is the one the range assignor gives partition 0.
fn leader_of(members: &[Member], range: bool) -> Option<&str> {
    if members.iter().any(|m| !m.partitions.is_empty()) {
        return members
            .iter()
            .find(|m| m.partitions.contains(&0))
            .map(|m| m.id.as_str());
    }
    if !range {
        return None;
    }
    members
        .iter()
        .filter(|m| m.subscribed)
        .map(|m| m.id.as_str())
        .min()
}

/// Whether the coordinator's `members` vouch for `claim` (see [`judge_claims`]); why not.
fn judge_claim(
    claim: &ClaimRead,
    ours: Option<&Membership>,
    state: &str,
    members: &[Member],
) -> Result<(), String> {
    // A coordinator that lists nobody says nothing (tansu was seen to describe a live group as
    // `Unknown` with no member).
    if members.is_empty() {
        return Err(format!(
            "the coordinator lists no member (group state {state:?})"
        ));
    }
    if let Some(ours) = ours {
        if i64::from(ours.generation) > claim.generation {
            return Err(format!(
                "claimed in generation {}, this worker's is {}: an earlier owner's",
                claim.generation, ours.generation
            ));
        }
        if state == "Stable" && !members.iter().any(|m| m.id == ours.member) {
            return Ok(()); // this worker is no member any more: its partitions are not its own
        }
    }
    let Some(claimer) = members.iter().find(|m| m.id == claim.member) else {
        let listed: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        return Err(format!("no such member of the group (it lists {listed:?})"));
    };
    let described = members.iter().any(|m| !m.partitions.is_empty());
    if described && !claimer.partitions.contains(&claim.partition) {
        return Err("the coordinator assigned it elsewhere".into());
    }
    Ok(())
}

/// Reads a marker from bus partition `partition` (a progress marker of another instance, or
/// a claim); true if `signal` was one.
fn read_marker(
    signal: &SignalEvent,
    partition: i32,
    group: &GroupContext,
    stats: &KafkaStats,
) -> bool {
    if signal.case_name != MARKER_CASE {
        return false;
    }
    if signal.value["group"].as_str() != Some(&group.markers.group) {
        return true;
    }
    let mine = signal.key == group.markers.instance;
    match &*signal.signal_name {
        PROGRESS if !mine => {
            let started_upto = signal.value["started_upto"].as_i64();
            let attempt = signal.value["attempt"]
                .as_u64()
                .and_then(|a| u32::try_from(a).ok());
            if let (Some(started_upto), Some(attempt)) = (started_upto, attempt) {
                lock(&group.tracker).note_progress(partition, &signal.key, started_upto, attempt);
            }
        }
        CLAIM if mine => {
            if let Some(assignment) = signal.value["assignment"].as_u64() {
                lock(&group.tracker).note_own_claim(partition, assignment);
            }
        }
        CLAIM => {
            // Claims read before this worker's own are earlier owners': nothing to judge.
            if !lock(&group.tracker).claimed_here(partition) {
                return true;
            }
            let member = signal.value["member"].as_str().filter(|m| !m.is_empty());
            let generation = signal.value["generation"].as_i64();
            let (Some(member), Some(generation)) = (member, generation) else {
                stats.skips.skip(
                    "bus",
                    "claim_not_believed",
                    format_args!("claim of partition {partition} names no member and generation"),
                );
                return true;
            };
            let claim = ClaimRead {
                partition,
                instance: signal.key.clone(),
                member: member.to_owned(),
                generation,
            };
            if group.claims.try_send(claim).is_err() {
                stats.skips.skip(
                    "bus",
                    "claim_not_believed",
                    format_args!("claim of partition {partition}: too many claims waiting"),
                );
            }
        }
        _ => {}
    }
    true
}

/// Commits what the tracker allows and writes progress markers, every 100 ms, and commits once
/// more (synchronously) at shutdown.
///
/// The last commit blocks on the broker: it runs on the blocking pool, not on a runtime
/// thread (`block_in_place` panicked on a current-thread runtime).
async fn commit_loop(
    consumer: Arc<StreamConsumer<GroupContext>>,
    tracker: Arc<Mutex<OffsetTracker>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let topic = consumer.context().tests_topic.clone();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {
                consumer.context().markers.progress(&tracker);
                commit_done(&*consumer, &topic, &tracker, CommitMode::Async);
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        commit_done(&*consumer, &topic, &tracker, CommitMode::Sync)
    })
    .await;
}

/// What the bus consumer needs beside its consumer and channels.
struct BusReader {
    topic: String,
    replay: Duration,
    /// The tests consumer: markers read go to its group context (see `offsets`).
    tests: Arc<StreamConsumer<GroupContext>>,
    limits: Limits,
}

/// Reads a bus record as untrusted input: its size before it is decoded, its fields and, where
/// the deployment signs, its signature (`livecheck-signature`) before it is believed. `None`
/// (counted, logged rarely) when it is skipped.
fn read_signal<M: Message>(message: &M, limits: Limits, stats: &KafkaStats) -> Option<SignalEvent> {
    let (partition, offset) = (message.partition(), message.offset());
    let payload = message.payload().unwrap_or_default();
    if let Err(over) = limits.check_record(payload.len()) {
        let what = format_args!("bus record at {partition}/{offset}: {over}");
        stats.skips.skip("bus", over.reason(), what);
        return None;
    }
    let signal = match Codec::decode_signal(payload) {
        Ok(signal) => signal,
        Err(error) => {
            count_skip(&stats.undecodable_signals, "bus", partition, offset, &error);
            return None;
        }
    };
    if let Err(over) = limits.check_signal(&signal) {
        let what = format_args!("bus record at {partition}/{offset}: {over}");
        stats.skips.skip("bus", over.reason(), what);
        return None;
    }
    if let Some(key) = signing::key() {
        let (kind, source) = if signal.case_name == MARKER_CASE {
            (MARKER_KIND, Source::Marker)
        } else {
            (SIGNAL_KIND, Source::Signal)
        };
        let record_key = message.key().unwrap_or_default();
        let signature = header(message, HEADER_RECORD_SIGNATURE);
        if !key.verify_record(kind, record_key, payload, signature) {
            signing::reject(source, &signal.key);
            return None;
        }
    }
    Some(signal)
}

async fn consume_bus(
    consumer: Arc<StreamConsumer>,
    reader: BusReader,
    mut assigned: watch::Receiver<Vec<i32>>,
    out: mpsc::Sender<Delivery<SignalEvent>>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let BusReader {
        topic,
        replay,
        tests,
        limits,
    } = reader;
    let mut current: Vec<i32> = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            changed = assigned.changed() => {
                if changed.is_err() {
                    break;
                }
                let wanted = assigned.borrow_and_update().clone();
                reassign_bus(&consumer, &topic, replay, &current, &wanted).await;
                current = wanted;
            }
            message = consumer.recv(), if !current.is_empty() => match message {
                Ok(message) if older_than(&message, replay) => {
                    tracing::trace!(partition = message.partition(), offset = message.offset(),
                        "signal older than the replay window skipped");
                }
                Ok(message) => {
                    let (partition, offset) = (message.partition(), message.offset());
                    let signal = match read_signal(&message, limits, &stats) {
                        Some(signal) => signal,
                        None => continue,
                    };
                    drop(message);
                    if read_marker(&signal, partition, tests.context(), &stats) {
                        continue;
                    }
                    tracing::trace!(partition, offset, "signal read");
                    if out.send(Delivery::new(signal)).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    consumer_error(&stats, "bus", &error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// How many signals of a bus partition are read again, at most, when the broker cannot say
/// where the replay window starts.
const REPLAY_TAIL: i64 = 100_000;

/// Whether a bus message was written before the replay window (a replayed tail reaches back
/// further than the window).
fn older_than(message: &impl Message, window: Duration) -> bool {
    let Some(written) = message.timestamp().to_millis() else {
        return false;
    };
    let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    written < chrono::Utc::now().timestamp_millis().saturating_sub(window)
}

/// Assigns the bus partitions `wanted`: partitions kept continue where they are; new ones start
/// at the first signal of the replay window, so the store is rebuilt for tests moved here.
async fn reassign_bus(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    replay: Duration,
    current: &[i32],
    wanted: &[i32],
) {
    let since = chrono::Utc::now() - chrono::Duration::from_std(replay).unwrap_or_default();
    let consumer2 = consumer.clone();
    let topic = topic.to_owned();
    let current = current.to_vec();
    let partitions = wanted.to_vec();
    let wanted = wanted.to_vec();
    let result = tokio::task::spawn_blocking(move || {
        let positions = consumer2.position().unwrap_or_default();
        let mut lookup = TopicPartitionList::new();
        let mut tpl = TopicPartitionList::new();
        for &partition in &wanted {
            let kept = current.contains(&partition).then(|| {
                positions
                    .find_partition(&topic, partition)
                    .map(|e| e.offset())
                    .filter(|o| matches!(o, Offset::Offset(_)))
            });
            match kept.flatten() {
                Some(offset) => {
                    let _ = tpl.add_partition_offset(&topic, partition, offset);
                }
                None => {
                    let _ = lookup.add_partition_offset(
                        &topic,
                        partition,
                        Offset::Offset(since.timestamp_millis()),
                    );
                }
            }
        }
        if lookup.count() > 0 {
            match consumer2.offsets_for_times(lookup.clone(), Duration::from_secs(10)) {
                Ok(found) => {
                    for element in found.elements() {
                        let offset = match element.offset() {
                            Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                            // "No message since then" — or a broker that does not look offsets
                            // up by time (librdkafka's mock cluster answers -1 for everything:
                            // starting at the end lost every signal sent before a partition
                            // moved, issue 9). Replay a bounded tail instead; what is older
                            // than the window is skipped as it is read.
                            _ => Offset::OffsetTail(REPLAY_TAIL),
                        };
                        let _ = tpl.add_partition_offset(&topic, element.partition(), offset);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "bus offsets by time unavailable: replaying from the start");
                    for element in lookup.elements() {
                        let _ = tpl.add_partition_offset(&topic, element.partition(), Offset::Beginning);
                    }
                }
            }
        }
        consumer2.assign(&tpl)
    })
    .await;
    match result {
        Ok(Ok(())) => tracing::debug!(?partitions, "bus partitions assigned"),
        Ok(Err(error)) => tracing::error!(%error, "bus assignment failed"),
        Err(error) => tracing::error!(%error, "bus assignment task failed"),
    }
}

/// Header naming the transport that published a report.
const HEADER_PUBLISHER: &str = "livecheck-publisher";
/// Header naming the consumer group of the worker that published a report.
const HEADER_GROUP: &str = "livecheck-group";
/// Header naming the member id (in its group) of the worker that published a report.
const HEADER_MEMBER: &str = "livecheck-member";
/// What a signature of a signal signs (see [`signing`]).
const SIGNAL_KIND: &str = "signal";
/// What a signature of a marker signs.
const MARKER_KIND: &str = "marker";
/// What a signature of a report signs.
const REPORT_KIND: &str = "report";

impl KafkaTransport {
    /// Starts reading the report topic back (every partition, from `report_replay` ago) into
    /// the report stream of a subscription.
    fn report_feed(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(JoinHandle<()>, BoxStream<'static, ReportEvent>), TransportError> {
        let group = format!("{}-reports", self.config.group_id);
        let mut config = self.config.client_config(Role::Consumer { group: &group });
        // The end of each partition is how the look-back is known to be read.
        config.set("enable.partition.eof", "true");
        let consumer: StreamConsumer<ReportContext> = config
            .create_with_context(ReportContext)
            .map_err(|e| broker_error("create report consumer", e))?;
        let (out, feed) = mpsc::channel(4096);
        let range = self
            .config
            .client_config(Role::Consumer { group: "" })
            .get("partition.assignment.strategy")
            .is_some_and(|strategy| strategy.trim() == "range");
        let reader = ReportReader {
            topic: self.config.topics.reports.clone(),
            replay: self.config.report_replay,
            publisher: self.publisher.clone(),
            group: self.config.group_id.clone(),
            tests_topic: self.config.topics.tests.clone(),
            range,
            limits: self.config.limits,
        };
        let task = tokio::spawn(consume_reports(
            Arc::new(consumer),
            reader,
            out,
            self.stats.clone(),
            shutdown,
        ));
        Ok((task, receiver_stream(feed).boxed()))
    }
}

/// The report consumer's context: reaching a partition's end is how the look-back is known to
/// be read, not an error to log (librdkafka reports it as one, every time).
struct ReportContext;

impl ClientContext for ReportContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        match error {
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {}
            error => tracing::error!("librdkafka: {error}: {reason}"),
        }
    }
}

impl ConsumerContext for ReportContext {}

/// What the report consumer needs beside its consumer and channel.
struct ReportReader {
    topic: String,
    replay: Duration,
    /// This transport's name in the reports it publishes.
    publisher: String,
    /// The workers' consumer group, and its tests topic.
    group: String,
    tests_topic: String,
    /// Whether the group assigns with the range assignor (see [`leader_of`]).
    range: bool,
    limits: Limits,
}

/// How long a look at the group vouches for the leader of suite reports.
const LEADER_LOOK_FOR: Duration = Duration::from_secs(2);

/// Reads every partition of the report topic from `replay` ago and forwards each report, then
/// [`ReportEvent::CaughtUp`] once every partition's end is reached, then what comes.
///
/// Reports are untrusted input: a record over the limits is skipped; where the deployment
/// signs, a peer's unsigned report is dropped; a suite report (no test) of a peer is forwarded
/// only if its writer is the group's leader now, as the coordinator describes the group (during
/// the look-back, whose leaders the coordinator no longer knows, one of this group's members).
async fn consume_reports(
    consumer: Arc<StreamConsumer<ReportContext>>,
    reader: ReportReader,
    out: mpsc::Sender<ReportEvent>,
    stats: Arc<KafkaStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let ReportReader {
        topic,
        replay,
        publisher,
        group,
        tests_topic,
        range,
        limits,
    } = reader;
    let mut leader: Option<(Instant, Option<String>)> = None;
    let since = chrono::Utc::now() - chrono::Duration::from_std(replay).unwrap_or_default();
    let partitions = loop {
        let assign = {
            let consumer = consumer.clone();
            let topic = topic.clone();
            tokio::task::spawn_blocking(move || assign_reports(&consumer, &topic, since))
        };
        match assign.await {
            Ok(Ok(partitions)) => break partitions,
            Ok(Err(error)) => {
                stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "report topic not readable yet: retrying");
            }
            Err(error) => tracing::error!(%error, "report assignment task failed"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let mut at_end = std::collections::HashSet::new();
    let mut caught_up = false;
    let since_ms = since.timestamp_millis();
    loop {
        let message = tokio::select! {
            _ = shutdown.changed() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(rdkafka::error::KafkaError::PartitionEOF(partition)) => {
                at_end.insert(partition);
                if !caught_up && partitions.iter().all(|p| at_end.contains(p)) {
                    caught_up = true;
                    tracing::debug!(?partitions, "the group's recent reports are read");
                    if out.send(ReportEvent::CaughtUp).await.is_err() {
                        break;
                    }
                }
                continue;
            }
            Err(error) => {
                consumer_error(&stats, "report", &error);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let published_at = message
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis);
        // Read from a partition's beginning (no offset by time): older reports are skipped.
        if published_at.is_some_and(|at| at.timestamp_millis() < since_ms) {
            continue;
        }
        let own = header(&message, HEADER_PUBLISHER) == Some(publisher.as_bytes());
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        if let Err(over) = limits.check_record(payload.len()) {
            let what = format_args!("report at {partition}/{offset}: {over}");
            stats.skips.skip("reports", over.reason(), what);
            continue;
        }
        match crate::codec::decode_report(payload) {
            Ok(report) => {
                if let Err(over) = limits.check_report(&report) {
                    let what = format_args!("report at {partition}/{offset}: {over}");
                    stats.skips.skip("reports", over.reason(), what);
                    continue;
                }
                if !own {
                    if let Some(key) = signing::key() {
                        let record_key = message.key().unwrap_or_default();
                        let signature = header(&message, HEADER_RECORD_SIGNATURE);
                        if !key.verify_record(REPORT_KIND, record_key, payload, signature) {
                            let id = report.test.as_ref().map_or("", |t| t.id.as_str());
                            signing::reject(Source::Report, id);
                            continue;
                        }
                    }
                }
                let writer = |name| {
                    header(&message, name)
                        .and_then(|raw| std::str::from_utf8(raw).ok())
                        .map(str::to_owned)
                };
                let (writer_group, writer_member) = (writer(HEADER_GROUP), writer(HEADER_MEMBER));
                drop(message);
                if report.is_suite() && !own {
                    let from = if writer_group.as_deref() != Some(group.as_str()) {
                        Err("written by no worker of this group".to_owned())
                    } else if let Some(member) = writer_member {
                        if caught_up {
                            let fresh = leader
                                .as_ref()
                                .filter(|(at, _)| at.elapsed() < LEADER_LOOK_FOR)
                                .map(|(_, id)| id.clone());
                            let current = match fresh {
                                Some(id) => id,
                                None => {
                                    let id =
                                        look_for_leader(&consumer, &group, &tests_topic, range)
                                            .await;
                                    // Only an answer is kept: the next report asks again.
                                    leader = id.clone().map(|id| (Instant::now(), Some(id)));
                                    id
                                }
                            };
                            if current.as_deref() == Some(member.as_str()) {
                                Ok(())
                            } else {
                                Err(format!(
                                    "written by member {}, not the group's leader",
                                    Escaped(signing::truncated(&member))
                                ))
                            }
                        } else {
                            Ok(()) // the look-back: one of this group's members
                        }
                    } else {
                        Err("its writer is not named".to_owned())
                    };
                    if let Err(why) = from {
                        stats.skips.skip(
                            "reports",
                            "not_from_leader",
                            format_args!(
                                "suite report of {} at {partition}/{offset} not adopted: {why}",
                                Escaped(signing::truncated(&report.case_name))
                            ),
                        );
                        continue;
                    }
                }
                let report = PublishedReport::new(report, own, published_at);
                if out
                    .send(ReportEvent::Report(Box::new(report)))
                    .await
                    .is_err()
                {
                    break;
                }
                tracing::trace!(partition, offset, "report read back");
            }
            Err(error) => count_skip(
                &stats.undecodable_reports,
                "reports",
                message.partition(),
                message.offset(),
                &error,
            ),
        }
    }
}

/// The member the coordinator describes as the group's leader now (see [`leader_of`]); `None`
/// if it cannot be asked or does not say. tansu may leave a live group out of a listing now
/// and then: a few looks (a CI run saw a new leader repeat a suite FAIL its predecessor had
/// published, because one empty listing made the followers drop it).
async fn look_for_leader(
    consumer: &Arc<StreamConsumer<ReportContext>>,
    group: &str,
    tests_topic: &str,
    range: bool,
) -> Option<String> {
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (consumer, group, topic) = (consumer.clone(), group.to_owned(), tests_topic.to_owned());
        let look = tokio::task::spawn_blocking(move || {
            consumer
                .fetch_group_list(Some(&group), Duration::from_secs(5))
                .map(|list| members_of(&list, &group, &topic))
        })
        .await;
        match look {
            Ok(Ok(members)) if !members.is_empty() => {
                return leader_of(&members, range).map(str::to_owned);
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "the coordinator cannot say who leads");
            }
            Err(_) => {}
        }
    }
    None
}

/// Assigns every partition of the report topic, each at its first report since `since` (or at
/// its beginning where the broker cannot say: librdkafka's mock cluster answers offsets by time
/// with -1); returns the partitions.
fn assign_reports(
    consumer: &StreamConsumer<ReportContext>,
    topic: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<i32>, TransportError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| broker_error(format!("metadata of {topic}"), e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(TransportError::Config(format!(
            "the report topic {topic} has no partitions"
        )));
    }
    let mut lookup = TopicPartitionList::new();
    for &partition in &partitions {
        let _ =
            lookup.add_partition_offset(topic, partition, Offset::Offset(since.timestamp_millis()));
    }
    let mut tpl = TopicPartitionList::new();
    match consumer.offsets_for_times(lookup, Duration::from_secs(10)) {
        Ok(found) => {
            for element in found.elements() {
                let offset = match element.offset() {
                    Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                    _ => Offset::Beginning,
                };
                let _ = tpl.add_partition_offset(topic, element.partition(), offset);
            }
        }
        Err(error) => {
            tracing::warn!(%error, "report offsets by time unavailable: reading from the start");
            for &partition in &partitions {
                let _ = tpl.add_partition_offset(topic, partition, Offset::Beginning);
            }
        }
    }
    consumer
        .assign(&tpl)
        .map_err(|e| broker_error("assign the report topic", e))?;
    Ok(partitions)
}

/// The `LiveCheck-Test-*` headers of `test`, and its `traceparent` / `tracestate`, as Kafka
/// headers.
pub fn test_headers(test: &TestExecution) -> OwnedHeaders {
    insert_test_headers(OwnedHeaders::new_with_capacity(7), test)
}

/// Adds the current test's headers (if the task is working for a test) to an outgoing record's
/// headers, so the next service sees the test too.
///
/// ```no_run
/// # use rdkafka::message::OwnedHeaders;
/// # use rdkafka::producer::FutureRecord;
/// let headers = livecheck::transport::kafka::attach_test_headers(OwnedHeaders::new());
/// let record: FutureRecord<'_, str, str> =
///     FutureRecord::to("orders").key("o1").payload("...").headers(headers);
/// ```
pub fn attach_test_headers(headers: OwnedHeaders) -> OwnedHeaders {
    match current_test() {
        Some(test) => insert_test_headers(headers, &test),
        None => headers,
    }
}

/// Adds the four headers of `test` and its signature (if signed), borrowing its fields: no
/// `String` is built (this runs for every record a service sends in a test), then its trace's.
fn insert_test_headers(headers: OwnedHeaders, test: &TestExecution) -> OwnedHeaders {
    let timestamp = HeaderTime::new(test.timestamp);
    let expires = HeaderTime::new(test.expires);
    let headers = [
        (HEADER_TEST_ID, test.id.as_str()),
        (HEADER_TEST_NAME, test.case_name.as_str()),
        (HEADER_TEST_TIMESTAMP, timestamp.as_str()),
        (HEADER_TEST_EXPIRES, expires.as_str()),
    ]
    .into_iter()
    .chain(
        test.signature
            .as_deref()
            .map(|signature| (HEADER_TEST_SIGNATURE, signature)),
    )
    .fold(headers, |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        })
    });
    insert_trace_headers(headers, test)
}

/// Adds `traceparent` (and `tracestate`) of `test`, when it has a trace (crate::trace).
fn insert_trace_headers(mut headers: OwnedHeaders, test: &TestExecution) -> OwnedHeaders {
    if let Some(parent) = test.traceparent {
        headers = headers.insert(Header {
            key: TRACEPARENT,
            value: Some(parent.to_string().as_bytes()),
        });
        if let Some(state) = &test.tracestate {
            headers = headers.insert(Header {
                key: TRACESTATE,
                value: Some(state.as_bytes()),
            });
        }
    }
    headers
}

/// The trace a message carries in its `traceparent` / `tracestate` headers, if valid.
fn trace_of<M: Message>(message: &M) -> Option<(TraceParent, Option<Box<str>>)> {
    let headers = message.headers()?;
    crate::trace::from_headers(|name| {
        headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .and_then(|h| h.value)
    })
}

/// The test an incoming message is part of, read from its `LiveCheck-Test-*` headers; malformed
/// headers are ignored with a debug log. Where the deployment signs test context
/// ([`crate::signing`]), a test whose signature is missing or wrong is no test (counted).
pub fn test_from_message<M: Message>(message: &M) -> Option<TestExecution> {
    let headers = message.headers()?;
    let get = |name: &str| {
        headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .and_then(|h| h.value)
    };
    match TestExecution::from_headers(get) {
        // With a key, only signed test context is honoured (crate::signing).
        Ok(test) => test.filter(|test| signing::admit(Source::KafkaHeaders, test)),
        Err(error) => {
            tracing::debug!(%error, topic = message.topic(), "malformed livecheck headers ignored");
            None
        }
    }
}

/// Runs `handler` with the test of `message` (if it carries one) as the current test: signals
/// sent in it are keyed by that test, and records built with [`attach_test_headers`] carry it on.
pub async fn handle_message<M: Message, F: Future>(message: &M, handler: F) -> F::Output {
    match test_from_message(message) {
        Some(test) => crate::context::with_test(test, handler).await,
        None => handler.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_values_are_hidden_from_debug_and_errors() {
        let mut config = KafkaConfig::new("b:9092");
        config.properties = vec![
            ("sasl.password".into(), "hunter2,tail".into()),
            ("acks".into(), "1".into()),
        ];
        let debug = format!("{config:?}");
        assert!(debug.contains("sasl.password=<hidden>"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let text = config.hide_values(r#"Invalid value "hunter2,tail" for "sasl.password": 1"#);
        assert_eq!(text, r#"Invalid value "<hidden>" for "sasl.password": 1"#);

        config.properties = vec![("security.protocol".into(), "hunter2".into())];
        let error = KafkaTransport::new(config).unwrap_err().to_string();
        assert!(error.contains("security.protocol"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    fn member(id: &str, partitions: &[i32]) -> Member {
        Member {
            id: id.into(),
            partitions: partitions.to_vec(),
            subscribed: true,
        }
    }

    #[test]
    fn a_claim_fences_only_when_the_coordinator_vouches_for_it() {
        let ours = Membership {
            member: "livecheck-b".into(),
            generation: 7,
        };
        let claim = |member: &str, generation: i64| ClaimRead {
            partition: 1,
            instance: "i".into(),
            member: member.into(),
            generation,
        };
        let undescribed = [member("livecheck-a", &[]), member("livecheck-b", &[])];
        let judge = |c: &ClaimRead, state: &str, members: &[Member]| {
            judge_claim(c, Some(&ours), state, members)
        };
        // A member of the group, in our generation or later: believed.
        assert_eq!(
            judge(&claim("livecheck-a", 7), "Stable", &undescribed),
            Ok(())
        );
        assert_eq!(
            judge(&claim("livecheck-a", 9), "Stable", &undescribed),
            Ok(())
        );
        // An earlier owner's late claim, a stranger, an empty listing: not believed.
        let late = judge(&claim("livecheck-a", 6), "Stable", &undescribed).unwrap_err();
        assert!(late.contains("earlier owner"), "{late}");
        let stranger = judge(&claim("forged", 99), "Stable", &undescribed).unwrap_err();
        assert!(stranger.contains("no such member"), "{stranger}");
        assert!(judge(&claim("livecheck-a", 7), "Unknown", &[]).is_err());
        // Described assignments: the claimer must own the partition.
        let described = [member("livecheck-a", &[0]), member("livecheck-b", &[1])];
        assert!(judge(&claim("livecheck-a", 8), "Stable", &described).is_err());
        let moved = [member("livecheck-a", &[0, 1]), member("livecheck-b", &[2])];
        assert_eq!(judge(&claim("livecheck-a", 8), "Stable", &moved), Ok(()));
        // This worker is no member of the stable group any more: its partitions are not its own.
        let without_us = [member("livecheck-a", &[])];
        assert_eq!(judge(&claim("forged", 7), "Stable", &without_us), Ok(()));
        assert!(judge(&claim("forged", 7), "PreparingRebalance", &without_us).is_err());
    }

    #[test]
    fn the_leader_is_the_owner_of_partition_0() {
        let described = [member("b", &[0, 1]), member("a", &[2, 3])];
        assert_eq!(leader_of(&described, true), Some("b"));
        // Undescribed, under the range assignor: the first subscribed member by id.
        let mut undescribed = vec![member("livecheck-b", &[]), member("livecheck-a", &[])];
        assert_eq!(leader_of(&undescribed, true), Some("livecheck-a"));
        assert_eq!(
            leader_of(&undescribed, false),
            None,
            "another assignor: unknown"
        );
        undescribed[1].subscribed = false;
        assert_eq!(leader_of(&undescribed, true), Some("livecheck-b"));
        assert_eq!(leader_of(&[], true), None);
    }

    #[test]
    fn headers_attach_only_inside_a_test() {
        let headers = attach_test_headers(OwnedHeaders::new());
        assert_eq!(headers.count(), 0);
    }
}
