//! How executions, signals and reports travel: the [`Transport`] traits — [`Publish`] (a
//! service's side), [`Consume`] (a worker's) and [`Introspect`] (a status page's) — and the
//! in-process [`MemoryTransport`]. The Kafka transport implements the same traits.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use tokio::sync::watch;

pub use crate::wire::error::TransportError;
use crate::wire::model::{SignalEvent, TestExecution, TestReport};

#[cfg(feature = "embedded")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded")))]
pub mod embedded;
mod group;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
mod lease;
mod memory;
#[cfg(feature = "kafka")]
mod offsets;
mod publish;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod reach;

pub use group::{GroupView, PartitionView};
pub use lease::{Lease, Ownership};
pub use memory::MemoryTransport;
pub use publish::{Acknowledger, Queued};
pub(crate) use publish::{DropCounter, CLOSED};
#[cfg(feature = "kafka")]
pub(crate) use publish::{QUEUE_FULL, UNDELIVERED};

/// A boxed future borrowing its transport.
pub type TransportFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, TransportError>> + Send + 'a>>;

/// A whole transport: what a service publishes through ([`Publish`]), what a worker consumes
/// ([`Consume`]) and what a status page reads ([`Introspect`]). Implemented for every type that
/// implements the three; [`Worker::builder`](crate::Worker::builder), [`Client`](crate::Client)
/// and [`OnceRun`](crate::once::OnceRun) take one.
///
/// A transport of your own implements the three traits; every method but
/// [`publish_test`](Publish::publish_test), [`publish_signal`](Publish::publish_signal),
/// [`publish_report`](Consume::publish_report) and [`subscribe`](Consume::subscribe) has a
/// default.
pub trait Transport: Publish + Consume + Introspect {}

impl<T: Publish + Consume + Introspect> Transport for T {}

/// What a service publishes through (its [`Client`](crate::Client)): test executions and
/// signals.
///
/// On a service's request path: [`publish_test`](Self::publish_test) and
/// [`publish_signal`](Self::publish_signal) must never wait on the broker. They queue the
/// message and return; a message that cannot be queued (queue full, broker gone, transport
/// closed) is refused with an error, counted as `dropped` in the
/// [`counters`](TransportSnapshot::counters) of its [`snapshot`](Introspect::snapshot) and logged
/// at most once a minute.
pub trait Publish: Send + Sync + fmt::Debug + 'static {
    /// Queues a test execution, keyed by its id, without waiting on the broker; await the
    /// [`Queued`] to wait for delivery.
    ///
    /// # Errors
    /// The message could not be queued (it is dropped, and counted).
    fn publish_test(&self, test: &TestExecution) -> Result<Queued, TransportError>;
    /// Queues a signal, keyed by its test id, without waiting on the broker; await the
    /// [`Queued`] to wait for delivery. `within` is the test the signal is sent in, if any: its
    /// trace travels with the signal where the transport has headers.
    ///
    /// # Errors
    /// The message could not be queued (it is dropped, and counted).
    fn publish_signal(
        &self,
        signal: &SignalEvent,
        within: Option<&TestExecution>,
    ) -> Result<Queued, TransportError>;
    /// Waits until every message queued so far is delivered or has failed, for at most
    /// `timeout` (at once by default: nothing is queued).
    fn flush(&self, timeout: Duration) -> TransportFuture<'_, ()> {
        let _ = timeout;
        Box::pin(async { Ok(()) })
    }
}

/// What a worker consumes, and its reports: the worker [`subscribe`](Self::subscribe)s once,
/// publishes each test's report at least once ([`publish_report`](Self::publish_report) waits
/// for the broker), and [`close`](Self::close)s last.
pub trait Consume: Send + Sync + fmt::Debug + 'static {
    /// Starts consuming; a transport may allow only one subscription.
    fn subscribe(&self) -> TransportFuture<'_, Subscription>;
    /// Publishes a report and waits until the broker has it (at-least-once: the worker
    /// acknowledges the test only then). `at` is when the verdict was reached: the record's
    /// timestamp, the same on every attempt — a report published again after a broker outage
    /// still says when its verdict fell, not when the broker came back.
    fn publish_report<'a>(
        &'a self,
        report: &'a TestReport,
        at: DateTime<Utc>,
    ) -> TransportFuture<'a, ()>;
    /// Stops consuming, commits what is handled and flushes what is published; the worker calls
    /// it last, once its running tests are done.
    fn close(&self) -> TransportFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Whether the subscriber has what it needs to consume: for Kafka, a partition assignment
    /// of the tests topic. True by default (nothing to wait for). Read by `/readyz`.
    fn is_assigned(&self) -> bool {
        true
    }
}

/// What a transport tells about itself, for the status page, `/metrics` and
/// [`Client::counters`](crate::Client::counters): one [`TransportSnapshot`], read when a page or
/// a scrape asks (never per test).
pub trait Introspect: Send + Sync + fmt::Debug + 'static {
    /// The transport now: its counters, its consumer group, brokers and partitions, and the
    /// records it skipped. Empty by default (zeros, `None`s, nothing skipped).
    fn snapshot(&self) -> TransportSnapshot {
        TransportSnapshot::default()
    }
}

/// A transport as it is now ([`Introspect::snapshot`]). `#[non_exhaustive]`: a transport of your
/// own starts from `TransportSnapshot::default()` and sets what it knows.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TransportSnapshot {
    /// Counters of what the transport skipped, dropped or could not deliver.
    pub counters: TransportCounters,
    /// The consumer group as the broker describes it — owners and lag of each partition, and
    /// the partitions nobody consumes — where the transport has one (Kafka); `None` otherwise
    /// or before the first look.
    pub group: Option<GroupView>,
    /// The brokers this transport was configured with (Kafka's `bootstrap.servers`), for the
    /// status page; `None` where there are none (in memory).
    pub brokers: Option<String>,
    /// The partitions of the tests topic this worker consumes now (Kafka); `None` where the
    /// transport has no partitions.
    pub assigned_partitions: Option<Vec<i32>>,
    /// Records the transport read and skipped as untrusted input, by topic (`tests`, `bus`,
    /// `reports`) and reason (`record_too_large`, `id_too_long`, `name_too_long`,
    /// `claim_not_believed`, `not_from_leader`): `(topic, reason, count)`.
    pub skipped: Vec<(&'static str, &'static str, u64)>,
}

#[cfg(feature = "kafka")]
/// Counts of records skipped, by topic and reason, each logged at most once a minute (a flood
/// of bad records must not flood the log).
#[derive(Debug, Default)]
pub(crate) struct SkipCounter {
    counts: std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
    log: crate::throttle::Throttle,
}

#[cfg(feature = "kafka")]
impl SkipCounter {
    /// Counts one record of `topic` skipped for `reason`, and logs it (at most once a minute).
    pub(crate) fn skip(&self, topic: &'static str, reason: &'static str, what: fmt::Arguments<'_>) {
        let n = {
            let mut counts = crate::lock::lock(&self.counts);
            let n = counts.entry((topic, reason)).or_default();
            *n += 1;
            *n
        };
        if self.log.ready() {
            tracing::warn!(
                topic,
                reason,
                skipped = n,
                "record skipped: {what} (logged at most once a minute; \
                 livecheck_skipped_messages_total counts every one)"
            );
        } else {
            tracing::debug!(topic, reason, "record skipped: {what}");
        }
    }

    /// Every count, `(topic, reason, count)`.
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let counts = crate::lock::lock(&self.counts);
        counts.iter().map(|(&(t, r), &n)| (t, r, n)).collect()
    }
}

/// Counters a transport keeps about its consumers, exported as metrics.
/// `#[non_exhaustive]`: a transport of your own starts from `TransportCounters::default()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct TransportCounters {
    /// Messages on the tests topic that did not decode (logged and skipped).
    pub undecodable_tests: u64,
    /// Messages on the bus that did not decode (logged and skipped).
    pub undecodable_signals: u64,
    /// Consumer errors seen (the client reconnects by itself).
    pub consumer_errors: u64,
    /// Tests and signals a service published that could not be queued (queue full, broker
    /// gone, transport closed): dropped without waiting.
    pub dropped: u64,
    /// Messages queued that the broker never acknowledged (e.g. down for longer than
    /// librdkafka's `message.timeout.ms`), reports included.
    pub undelivered: u64,
    /// Messages on the report topic that did not decode (logged and skipped).
    pub undecodable_reports: u64,
}

/// What a worker consumes.
pub struct Subscription {
    /// Test executions to run, each acknowledged once its report is published.
    pub tests: BoxStream<'static, Delivery<TestExecution>>,
    /// Signals to resolve.
    pub signals: BoxStream<'static, Delivery<SignalEvent>>,
    /// Whether this worker is the leader (runs the fake-request timers, publishes suite reports).
    pub leader: watch::Receiver<bool>,
    /// The group's reports, read back from the report topic: every worker feeds the test
    /// reports of the whole group into its case health, so the group judges as one. Starts with
    /// a bounded look-back before the subscription (so a restarted worker rebuilds its view),
    /// then [`ReportEvent::CaughtUp`], then what is published from then on.
    pub reports: BoxStream<'static, ReportEvent>,
}

/// What the report stream of a [`Subscription`] yields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReportEvent {
    /// A report some worker of the group (this one included) published.
    Report(Box<PublishedReport>),
    /// Every report of the look-back has been read: what follows was published after the
    /// subscription started. Sent once; a transport without a look-back sends it first.
    CaughtUp,
}

/// A report read back from the report topic.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishedReport {
    /// The report.
    pub report: TestReport,
    /// Whether this transport published it (the worker applied it when it did).
    pub own: bool,
    /// When it was published, if the transport knows (Kafka: the message's timestamp).
    pub published_at: Option<DateTime<Utc>>,
}

impl PublishedReport {
    /// A report read back, published by this transport (`own`) or another, at `published_at`.
    pub fn new(report: TestReport, own: bool, published_at: Option<DateTime<Utc>>) -> Self {
        PublishedReport {
            report,
            own,
            published_at,
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("leader", &*self.leader.borrow())
            .finish_non_exhaustive()
    }
}

/// One consumed value and what to do once it is fully handled.
pub struct Delivery<T> {
    /// The value.
    pub value: T,
    ack: Ack,
}

impl<T> Delivery<T> {
    /// A value that needs no acknowledgement.
    pub fn new(value: T) -> Self {
        Delivery {
            value,
            ack: Ack {
                ack: None,
                lease: None,
                attempt: None,
            },
        }
    }

    /// A value whose `ack` runs once it is handled (e.g. marks its offset committable).
    pub fn with_ack(value: T, ack: impl FnOnce() + Send + 'static) -> Self {
        let mut delivery = Self::new(value);
        delivery.ack.ack = Some(Box::new(ack));
        delivery
    }

    /// Holds the value under `lease` (its partition's ownership, see [`Lease`]); `attempt`
    /// tells, when asked (once the test ends: what earlier owners said may still be arriving),
    /// which run of the test this is, earlier ones on workers that died before reporting it.
    pub fn with_lease(
        mut self,
        lease: Lease,
        attempt: impl Fn() -> u32 + Send + Sync + 'static,
    ) -> Self {
        self.ack.lease = Some(lease);
        self.ack.attempt = Some(Box::new(attempt));
        self
    }

    /// Acknowledges the value: it is handled and need not be delivered again.
    pub fn ack(self) {
        self.ack.ack();
    }

    /// Splits into the value and an acknowledgement to run later.
    pub fn into_parts(self) -> (T, Ack) {
        (self.value, self.ack)
    }
}

impl<T: fmt::Debug> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("value", &self.value)
            .field("ack", &self.ack)
            .finish()
    }
}

/// The acknowledgement of a [`Delivery`], split from its value, with the lease it is held under.
pub struct Ack {
    ack: Option<Box<dyn FnOnce() + Send>>,
    lease: Option<Lease>,
    attempt: Option<Box<dyn Fn() -> u32 + Send + Sync>>,
}

impl Ack {
    /// Acknowledges.
    pub fn ack(self) {
        if let Some(ack) = self.ack {
            ack();
        }
    }

    /// The lease the value is held under (always owned when the transport has none).
    pub fn lease(&self) -> Lease {
        self.lease.clone().unwrap_or_else(Lease::owned)
    }

    /// Which run of the value this is (1 unless an earlier owner may have run it).
    pub fn attempt(&self) -> u32 {
        self.attempt.as_ref().map_or(1, |attempt| attempt().max(1))
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("pending", &self.ack.is_some())
            .field("lease", &self.lease)
            .finish()
    }
}
