//! Helpers for integration tests on a real broker: unique topics, workers, report readers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use livecheck::transport::kafka::{KafkaConfig, KafkaTransport, Topics};
use livecheck::worker::SpawnedWorker;
use livecheck::{CaseConfig, Client, Worker, WorkerHandle, WorkerSettings};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use crate::broker::Broker;

/// Settings on `bootstrap` with topics and a group of their own (`{label}-tests`, `-bus`,
/// `-report` and `-group`, made unique by [`Broker::unique`]), `partitions` each; every other
/// field is [`KafkaConfig::new`]'s. The one construction of a test's or benchmark's topics.
pub fn unique_topics(bootstrap: &str, label: &str, partitions: i32) -> KafkaConfig {
    let mut config = KafkaConfig::new(bootstrap);
    config.topics = Topics::new(
        Broker::unique(&format!("{label}-tests")),
        Broker::unique(&format!("{label}-bus")),
        Broker::unique(&format!("{label}-report")),
    );
    config.group_id = Broker::unique(&format!("{label}-group"));
    config.partitions = partitions;
    config
}

/// Settings with unique topics and group for one test on `broker`, signals replayed for 10
/// minutes.
pub fn unique_config(broker: &Broker, partitions: i32) -> KafkaConfig {
    let mut config = unique_topics(&broker.bootstrap(), "lc", partitions);
    config.signal_replay = Duration::from_secs(600);
    config
}

/// A worker running in this process.
#[derive(Debug)]
pub struct RunningWorker {
    /// Its view.
    pub handle: WorkerHandle,
    /// Its transport.
    pub transport: Arc<KafkaTransport>,
    worker: SpawnedWorker,
}

impl RunningWorker {
    /// Creates topics if needed and starts a worker on `config` running `cases`.
    pub async fn start(config: &KafkaConfig, cases: Vec<CaseConfig>) -> RunningWorker {
        let transport = Arc::new(KafkaTransport::new(config.clone()).expect("transport"));
        transport.ensure_topics().await.expect("topics");
        let worker = Worker::builder_arc(transport.clone())
            .cases(cases)
            .settings({
                let mut settings = WorkerSettings::default();
                settings.shutdown_grace = Duration::from_secs(5);
                settings
            })
            .build()
            .expect("worker");
        let worker = worker.spawn();
        RunningWorker {
            handle: worker.handle().clone(),
            transport,
            worker,
        }
    }

    /// Waits until the group gave this worker at least one partition.
    pub async fn wait_assigned(&self, within: Duration) -> Vec<i32> {
        let mut assignment = self.transport.assignment();
        let assigned = tokio::time::timeout(within, assignment.wait_for(|p| !p.is_empty()))
            .await
            .expect("no partition assigned in time")
            .expect("transport gone")
            .clone();
        assigned
    }

    /// Stops the worker gracefully. A failed run (e.g. the transport's close on a stopped
    /// broker) is printed, not a failure of the test: the tests judge what the worker did.
    pub async fn stop(self) {
        if let Err(error) = self.worker.stop().await {
            eprintln!("worker run: {error}");
        }
    }
}

/// A client publishing as a service would, through its own producer.
pub fn service_client(config: &KafkaConfig) -> Client {
    Client::new(KafkaTransport::new(config.clone()).expect("service transport"))
}

/// A plain consumer of every partition of `topic`, from the beginning. It assigns the partitions
/// itself rather than joining a group: a reader needs no coordination, and starts at once.
pub fn plain_consumer(broker: &Broker, topic: &str) -> StreamConsumer {
    plain_consumer_at(&broker.bootstrap(), topic)
}

/// [`plain_consumer`] on any bootstrap servers (e.g. librdkafka's mock cluster).
pub fn plain_consumer_at(bootstrap: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", Broker::unique("reader"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        // Never skip ahead: a reader that lost its position (broker restart) starts over.
        .set("auto.offset.reset", "earliest")
        // Without a group to rejoin, only a metadata refresh finds a partition's leader again
        // after the broker came back (librdkafka's default refresh is every 5 min).
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .expect("consumer");
    let mut partitions = 0;
    for _ in 0..50 {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        if partitions > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        tpl.add_partition_offset(topic, partition, Offset::Offset(0))
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// A plain producer.
pub fn plain_producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Produces `payload` to `topic` under `key`.
pub async fn produce_raw(producer: &FutureProducer, topic: &str, key: &str, payload: &[u8]) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(30),
        )
        .await
        .expect("produce");
}

/// Reads raw JSON values from `consumer` until `done` says so, or panics after `within`.
pub async fn read_json_until(
    consumer: &StreamConsumer,
    within: Duration,
    mut done: impl FnMut(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while !done(&seen) {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out with {} messages read", seen.len()))
            .expect("consume");
        let value: serde_json::Value =
            serde_json::from_slice(message.payload().unwrap_or_default()).expect("json");
        seen.push(value);
    }
    seen
}

/// Reads every further test report of `consumer` into `by_id`, until none comes for `quiet`:
/// what a count of duplicates needs, since a duplicate would come after the first report.
pub async fn more_reports(
    consumer: &StreamConsumer,
    by_id: &mut HashMap<String, Vec<livecheck::TestReport>>,
    quiet: Duration,
) {
    while let Ok(message) = tokio::time::timeout(quiet, consumer.recv()).await {
        let Ok(message) = message else {
            continue;
        };
        let report = livecheck::codec::decode_report(message.payload().unwrap_or_default())
            .expect("report decodes");
        if let Some(test) = &report.test {
            by_id.entry(test.id.clone()).or_default().push(report);
        }
    }
}

/// The committed offset of `group` on each partition of `topic` (`None`: nothing committed), and
/// the partition's high watermark, by partition.
pub async fn group_progress(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(i32, Option<i64>, i64)> {
    let (bootstrap, group, topic) = (bootstrap.to_owned(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap_or_default();
        (0..partitions)
            .map(|p| {
                let offset = committed
                    .find_partition(&topic, p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    });
                let (_, high) = consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(10))
                    .unwrap_or((0, -1));
                (p, offset, high)
            })
            .collect()
    })
    .await
    .expect("group progress")
}

/// Waits until the committed offsets of `config`'s group on its tests topic add up to `count`
/// (every test of a topic holding `count` finished and committed); panics after `within`.
pub async fn wait_committed(config: &KafkaConfig, count: i64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let progress = group_progress(
            &config.brokers,
            &config.group_id,
            &config.topics.tests,
            config.partitions,
        )
        .await;
        let committed: i64 = progress.iter().filter_map(|(_, offset, _)| *offset).sum();
        if committed >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{committed} of {count} tests committed after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads the progress markers workers write to the bus (`bus`, read from its beginning) until
/// they say that `count` tests of the tests topic were started (the highest offset started on
/// each partition, plus one, adds up to `count`); panics after `within`.
pub async fn wait_started(bus: &StreamConsumer, count: i64, within: Duration) {
    let mut started: HashMap<i32, i64> = HashMap::new();
    let deadline = tokio::time::Instant::now() + within;
    while started.values().sum::<i64>() < count {
        let message = match tokio::time::timeout_at(deadline, bus.recv()).await {
            Ok(Ok(message)) => message,
            Ok(Err(_)) => continue,
            Err(_) => panic!("markers say {started:?} started, not {count}, after {within:?}"),
        };
        let Ok(marker) =
            livecheck::codec::Codec::decode_signal(message.payload().unwrap_or_default())
        else {
            continue;
        };
        if marker.case_name != "__livecheck" || marker.signal_name != "progress" {
            continue;
        }
        if let Some(upto) = marker.value["started_upto"].as_i64() {
            let entry = started.entry(message.partition()).or_default();
            *entry = (*entry).max(upto + 1);
        }
    }
}

/// Reads reports until every id in `ids` has at least one test report; returns the reports read
/// (of these tests and others) by test id. What is read is consumed: merge the results of
/// successive calls.
pub async fn reports_for(
    consumer: &StreamConsumer,
    ids: &[String],
    within: Duration,
) -> HashMap<String, Vec<livecheck::TestReport>> {
    let mut by_id: HashMap<String, Vec<livecheck::TestReport>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + within;
    while !ids.iter().all(|id| by_id.contains_key(id)) {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => message,
            // The client reconnects by itself (e.g. across a broker restart).
            Ok(Err(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                let missing: Vec<_> = ids.iter().filter(|id| !by_id.contains_key(*id)).collect();
                panic!(
                    "no report in time for {} tests, e.g. {:?}",
                    missing.len(),
                    missing.first()
                );
            }
        };
        let report = livecheck::codec::decode_report(message.payload().unwrap_or_default())
            .expect("report decodes");
        if let Some(test) = &report.test {
            by_id.entry(test.id.clone()).or_default().push(report);
        }
    }
    by_id
}

/// The text of a log file (empty if it does not exist yet).
pub fn read_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Stops a worker process with SIGTERM, as an orchestrator would, and waits up to 30 s for it.
pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("wait for the worker") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the worker did not exit within 30 s of SIGTERM");
}

/// Background tasks of a test (topic readers, say): aborted when dropped, or stopped and
/// awaited with [`Tasks::stop`] — a consumer closes against its broker, so readers must be
/// stopped before the broker is.
#[derive(Debug, Default)]
pub struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    /// These tasks.
    pub fn new(tasks: Vec<JoinHandle<()>>) -> Self {
        Tasks(tasks)
    }

    /// Aborts every task and waits until each is gone.
    pub async fn stop(&mut self) {
        for task in std::mem::take(&mut self.0) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
