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
//! - An undecodable message is logged, counted ([`TransportCounters`]) and skipped.
//!
//! One concern a file: `config` (settings), `produce` (the producer), `admin` (topics),
//! `tests_topic` (the tests consumer and its rebalance callbacks), `handover`, `markers`
//! (progress markers, claims, commits), `members` and `claims` (the group as the coordinator
//! describes it, and the claims it vouches for), `group_watch` (the orphan watch and the claim
//! judge), `consume` (what every consumer loop shares), `bus`, `reports`, `stats` (counters and
//! errors), and `headers` (a test as Kafka headers and back).

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

mod admin;
mod bus;
mod claims;
mod config;
mod consume;
mod group_watch;
mod handover;
pub(crate) mod headers;
mod markers;
mod members;
mod produce;
use produce::Outgoing;
mod reports;
mod stats;
mod tests_topic;

pub use config::{KafkaConfig, Topics};
pub(crate) use headers::{insert_test_headers, test_headers};

use self::bus::{consume_bus, BusReader};
use self::claims::CLAIMS_WAITING;
use self::config::Role;
use self::group_watch::{judge_claims, watch_group};
use self::handover::{resume_after_handover, GroupLook, Handover};
use self::headers::{insert_trace_headers, SIGNAL_KIND};
use self::markers::{commit_loop, Markers};
use self::members::Membership;
use self::produce::{produce_error, ProduceContext};
use self::stats::{broker_error, KafkaStats};
use self::tests_topic::{consume_tests, GroupContext, TestsReader, TEST_BYTES_BUDGET};
use crate::lock::lock;
use crate::transport::group::GroupView;
use crate::transport::offsets::OffsetTracker;
use crate::transport::{
    Consume, Introspect, Publish, Queued, Subscription, TransportCounters, TransportError,
    TransportFuture, TransportSnapshot,
};
use crate::wire::codec::encode_report;
use crate::wire::model::{SignalEvent, TestExecution, TestReport};
use crate::wire::signing::{self, HEADER_RECORD_SIGNATURE};

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
}

impl Publish for KafkaTransport {
    fn publish_test(&self, test: &TestExecution) -> Result<Queued, TransportError> {
        let topic = &self.config.topics.tests;
        let payload = self.config.codec.encode_test(test);
        self.enqueue(topic, &test.id, &payload, Some(test_headers(test)))
            .map_err(|error| self.refused(topic, error))
    }

    fn publish_signal(
        &self,
        signal: &SignalEvent,
        within: Option<&TestExecution>,
    ) -> Result<Queued, TransportError> {
        let topic = &self.config.topics.bus;
        let payload = self.config.codec.encode_signal(signal);
        // A signal sent in a test carries the test's trace, like the service's own records.
        let mut headers = within
            .filter(|test| test.traceparent.is_some())
            .map(|test| insert_trace_headers(OwnedHeaders::new_with_capacity(3), test));
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

    fn flush(&self, timeout: Duration) -> TransportFuture<'_, ()> {
        let producer = self.producer.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || producer.flush(timeout))
                .await
                .map_err(|e| TransportError::Config(format!("flush task failed: {e}")))?
                .map_err(|e| broker_error("flush", e))
        })
    }
}

impl Consume for KafkaTransport {
    fn subscribe(&self) -> TransportFuture<'_, Subscription> {
        Box::pin(async move {
            let mut running = lock(&self.running);
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
            let markers = Arc::new(Markers {
                producer: self.producer.clone(),
                bus: self.config.topics.bus.clone(),
                group: self.config.group_id.clone(),
                // Names this worker's markers on the bus (see `offsets`).
                instance: uuid::Uuid::new_v4().to_string(),
                codec: self.config.codec,
            });
            let context = GroupContext {
                tests_topic: self.config.topics.tests.clone(),
                tracker: tracker.clone(),
                assigned: assigned_tx,
                leader: leader_tx,
                handover: handover.clone(),
                markers: markers.clone(),
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
                    GroupLook {
                        group: self.config.group_id.clone(),
                        topic: self.config.topics.tests.clone(),
                        assigned: self.assigned.subscribe(),
                        tracker: tracker.clone(),
                        membership: self.membership.clone(),
                    },
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
                tokio::spawn(commit_loop(
                    tests.clone(),
                    self.config.topics.tests.clone(),
                    markers,
                    tracker,
                    shutdown_rx.clone(),
                )),
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

    fn publish_report<'a>(
        &'a self,
        report: &'a TestReport,
        at: chrono::DateTime<chrono::Utc>,
    ) -> TransportFuture<'a, ()> {
        Box::pin(async move {
            let payload = encode_report(report);
            let key = report
                .test
                .as_ref()
                .map_or(report.case_name.as_str(), |t| t.id.as_str());
            let publisher = self.report_headers(key, &payload);
            let topic = &self.config.topics.reports;
            loop {
                let record = Outgoing {
                    topic,
                    key,
                    payload: &payload,
                    headers: Some(publisher.clone()),
                    timestamp: Some(at.timestamp_millis()),
                };
                match self.enqueue_record(record) {
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

    fn is_assigned(&self) -> bool {
        !self.assigned.borrow().is_empty()
    }

    fn close(&self) -> TransportFuture<'_, ()> {
        Box::pin(async move {
            let running = lock(&self.running).take();
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

impl Introspect for KafkaTransport {
    fn snapshot(&self) -> TransportSnapshot {
        TransportSnapshot {
            counters: TransportCounters {
                undecodable_tests: self.stats.undecodable_tests.load(Ordering::Relaxed),
                undecodable_signals: self.stats.undecodable_signals.load(Ordering::Relaxed),
                consumer_errors: self.stats.consumer_errors.load(Ordering::Relaxed),
                dropped: self.stats.dropped(),
                undelivered: self.stats.undelivered(),
                undecodable_reports: self.stats.undecodable_reports.load(Ordering::Relaxed),
            },
            group: self.group.borrow().clone(),
            brokers: Some(self.config.brokers.clone()),
            assigned_partitions: Some(self.assigned.borrow().clone()),
            skipped: self.stats.skips.snapshot(),
        }
    }
}

fn receiver_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
