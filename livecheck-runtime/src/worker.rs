//! The worker: consumes test executions and signals, runs tests with bounded concurrency,
//! publishes reports, keeps each case's health, and runs the fake-request timers.
//!
//! The group judges as one: every worker reads the group's reports back from the transport
//! ([`Subscription::reports`]) and feeds each test's report, once, into its case health, so
//! every worker shows the group's view; the leader alone publishes suite reports (one ordered
//! queue per worker, so a case's reports leave in the order of its transitions), and every
//! worker adopts the suite reports it reads, so a new leader does not publish a transition
//! again. A test whose report the group has published is not run again.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::Utc;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::case::{registered_cases, CaseConfig};
use crate::client::Client;
use crate::error::StartError;
use crate::fake::FakeRequest;
use crate::health::{CaseHealth, CaseStatus, ReportedTests, TestDetail};
use crate::http::{ServiceHealth, UrlClient};
use crate::model::{SignalEvent, TestExecution, TestReport};
use crate::runner;
use crate::store::SignalStore;
use crate::text::Escaped;
use crate::transport::{
    Ack, Lease, Ownership, PublishedReport, ReportEvent, Subscription, Transport,
    TransportCounters, TransportError,
};

/// Settings of a worker, with Faust LiveCheck's defaults (`#[non_exhaustive]`: start from
/// [`WorkerSettings::default`] and set fields).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerSettings {
    /// Tests running at once (100).
    pub test_concurrency: usize,
    /// Publish reports to the transport (true); observers see them either way.
    pub send_reports: bool,
    /// On shutdown, how long running tests may take to finish (30 s).
    pub shutdown_grace: Duration,
    /// How often case health (stall, due suite reports) is checked (1 s).
    pub health_interval: Duration,
    /// Repeat a suite FAIL or STALL that lasts this long since its last report (off: one
    /// report per transition; Faust re-posts a failure every `state_transition_delay`).
    pub suite_reminder: Option<Duration>,
    /// Tests whose report the group published, remembered so that a test delivered again is
    /// not run again and a second report of a test is not counted twice (100,000; each is
    /// forgotten once its test has expired).
    pub reported_tests: usize,
    /// On start, how long to wait for the group's recent reports (the transport's look-back)
    /// before taking tests (30 s); after it, tests are taken anyway, with a warning.
    pub report_replay_wait: Duration,
    /// Largest report published, in bytes of JSON (500,000: under Kafka's default
    /// `message.max.bytes` of about 1 MB). Larger ones are truncated and say so; a broker that
    /// refuses even that gets smaller ones.
    pub max_report_bytes: usize,
    /// Tests older than this when they arrive are SKIP, not run (none: run every test that has
    /// not expired, as Faust does). A backlog — a new consumer group on old topics, a worker
    /// back from a long outage — says nothing about the system now; run, its tests would fail
    /// for hours of stale reasons. The `livecheck` command sets 10 min (`--max-test-age`).
    pub max_test_age: Option<Duration>,
    /// After a burst, once the worker holds a quarter of its peak of tests and signals (and the
    /// peak was 10,000 or more), ask the allocator to give its free memory back to the system
    /// (true). On glibc that is `malloc_trim(0)`, a process-wide call (it walks every arena of
    /// the process, for milliseconds after a big burst, on a blocking thread); elsewhere it does
    /// nothing. Set false where the process's allocator is not the worker's business.
    pub release_memory: bool,
    /// How far ahead of this worker's clock a peer's report may be dated (by its test's
    /// timestamp or its publication) and still count for case health (2 min). Reports dated
    /// further ahead are ignored and counted (`livecheck_skipped_messages_total{reason=
    /// "future"}`): 35 forged FAIL reports dated ten years ahead kept a case FAIL after every
    /// later pass (no pass was newer than them).
    pub max_clock_skew: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            test_concurrency: 100,
            send_reports: true,
            shutdown_grace: Duration::from_secs(30),
            health_interval: Duration::from_secs(1),
            suite_reminder: None,
            reported_tests: 100_000,
            report_replay_wait: Duration::from_secs(30),
            max_report_bytes: 500_000,
            max_test_age: None,
            release_memory: true,
            max_clock_skew: Duration::from_secs(120),
        }
    }
}

/// Sees what a worker does: every test start and every report, test or suite.
///
/// Called synchronously on the worker's tasks: keep it quick (count, push to a channel).
pub trait Observer: Send + Sync + 'static {
    /// A test is about to run.
    fn on_test_start(&self, _test: &TestExecution) {}
    /// A report was produced (a test's, or a suite report with `test: None`).
    fn on_report(&self, _report: &TestReport) {}
}

/// Counters of a worker: a snapshot ([`WorkerHandle::stats`]), as [`TransportCounters`] are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Tests received.
    pub tests_received: u64,
    /// Signals received.
    pub signals_received: u64,
    /// Tests for a case this worker does not run (logged and skipped).
    pub unknown_case_tests: u64,
    /// Signals for a case this worker does not run (logged and skipped).
    pub unknown_case_signals: u64,
    /// Reports that could not be published (their tests are not acknowledged).
    pub report_publish_errors: u64,
    /// Fake requests that failed.
    pub fake_request_errors: u64,
    /// Tests running now.
    pub in_flight: usize,
    /// Tests stopped unreported because their partition moved to another worker, which runs
    /// them.
    pub tests_moved: u64,
    /// Tests delivered whose report the group had published already: acknowledged, not run.
    pub already_reported: u64,
    /// Reports of this worker dropped because another worker reported the same test first
    /// (both ran it, e.g. across a rebalance).
    pub duplicate_reports_dropped: u64,
    /// Test reports of other workers of the group fed into this worker's case health.
    pub peer_reports: u64,
    /// Reports of a test already counted, read back from the group (not counted twice).
    pub peer_duplicates: u64,
    /// Spans of tests the collector took (the `otel` feature's export; 0 without it).
    pub spans_exported: u64,
    /// Spans of tests dropped: the export queue was full, or the collector did not take them
    /// (the `otel` feature's export; 0 without it).
    pub spans_dropped: u64,
    /// Peers' reports dated beyond [`WorkerSettings::max_clock_skew`] ahead: ignored.
    pub future_reports: u64,
    /// Test records whose signature is missing or wrong, where the deployment signs test
    /// context ([`crate::signing`]): not run.
    pub untrusted_tests: u64,
    /// Reports too large for the broker even cut down, replaced by a minimal report.
    pub minimal_reports: u64,
    /// Reports that could not be published even as a minimal report: dropped (their tests
    /// acknowledged, so they do not hold a slot or run again).
    pub reports_dropped: u64,
}

/// A worker's counters, as it updates them (snapshots: [`WorkerStats`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Tests received.
    pub(crate) tests_received: AtomicU64,
    /// Signals received.
    pub(crate) signals_received: AtomicU64,
    /// Tests for a case this worker does not run (logged and skipped).
    pub(crate) unknown_case_tests: AtomicU64,
    /// Signals for a case this worker does not run (logged and skipped).
    pub(crate) unknown_case_signals: AtomicU64,
    /// Reports that could not be published (their tests are not acknowledged).
    pub(crate) report_publish_errors: AtomicU64,
    /// Fake requests that failed.
    pub(crate) fake_request_errors: AtomicU64,
    /// Tests running now.
    pub(crate) in_flight: AtomicUsize,
    /// Tests stopped unreported because their partition moved to another worker, which runs
    /// them.
    pub(crate) tests_moved: AtomicU64,
    /// Tests delivered whose report the group had published already: acknowledged, not run.
    pub(crate) already_reported: AtomicU64,
    /// Reports of this worker dropped because another worker reported the same test first
    /// (both ran it, e.g. across a rebalance).
    pub(crate) duplicate_reports_dropped: AtomicU64,
    /// Test reports of other workers of the group fed into this worker's case health.
    pub(crate) peer_reports: AtomicU64,
    /// Reports of a test already counted, read back from the group (not counted twice).
    pub(crate) peer_duplicates: AtomicU64,
    /// Peers' reports dated too far ahead: ignored.
    pub(crate) future_reports: AtomicU64,
    /// Test records not signed where the deployment signs: not run.
    pub(crate) untrusted_tests: AtomicU64,
    /// Reports replaced by a minimal one.
    pub(crate) minimal_reports: AtomicU64,
    /// Reports dropped: not even a minimal one could be published.
    pub(crate) reports_dropped: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            tests_received: self.tests_received.load(Ordering::Relaxed),
            signals_received: self.signals_received.load(Ordering::Relaxed),
            unknown_case_tests: self.unknown_case_tests.load(Ordering::Relaxed),
            unknown_case_signals: self.unknown_case_signals.load(Ordering::Relaxed),
            report_publish_errors: self.report_publish_errors.load(Ordering::Relaxed),
            fake_request_errors: self.fake_request_errors.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            tests_moved: self.tests_moved.load(Ordering::Relaxed),
            already_reported: self.already_reported.load(Ordering::Relaxed),
            duplicate_reports_dropped: self.duplicate_reports_dropped.load(Ordering::Relaxed),
            peer_reports: self.peer_reports.load(Ordering::Relaxed),
            peer_duplicates: self.peer_duplicates.load(Ordering::Relaxed),
            spans_exported: 0,
            spans_dropped: 0,
            future_reports: self.future_reports.load(Ordering::Relaxed),
            untrusted_tests: self.untrusted_tests.load(Ordering::Relaxed),
            minimal_reports: self.minimal_reports.load(Ordering::Relaxed),
            reports_dropped: self.reports_dropped.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    cases: HashMap<&'static str, CaseConfig>,
    health: HashMap<&'static str, Mutex<CaseHealth>>,
    store: Arc<SignalStore>,
    stats: Counters,
    ready: AtomicBool,
    leader: Mutex<Option<watch::Receiver<bool>>>,
    transport: Arc<dyn Transport>,
    client: Client,
    observers: Vec<Arc<dyn Observer>>,
    settings: WorkerSettings,
    /// Each case's HTTP helpers, built once: a reqwest client per test cost ~3.4 KB and a
    /// client build (connection pool, resolver) on every test (docs/benchmarks.md).
    http: HashMap<&'static str, Arc<UrlClient>>,
    /// Tests whose report the group has published.
    reported: Mutex<ReportedTests>,
    /// Suite reports to publish, in order: one queue, drained by one task.
    suites: mpsc::UnboundedSender<SuiteMessage>,
    suites_rx: Mutex<Option<mpsc::UnboundedReceiver<SuiteMessage>>>,
    /// Whether the group's recent reports have been read (the transport's look-back).
    replayed: watch::Sender<bool>,
    /// The export of a span per test, if configured.
    #[cfg(feature = "otel")]
    otel: Option<crate::otel::Export>,
}

enum SuiteMessage {
    Report(Box<TestReport>),
    Flush(oneshot::Sender<()>),
}

impl Shared {
    fn is_leader(&self) -> bool {
        lock(&self.leader)
            .as_ref()
            .is_some_and(|leader| *leader.borrow())
    }

    /// Applies `change` to `case`'s health and queues the suite report it makes due (leader
    /// only). Under the case's lock: a case's suite reports are queued in the order of its
    /// transitions, and one task publishes the queue in order.
    fn judge(&self, case: &str, change: impl FnOnce(&mut CaseHealth)) {
        let Some(health) = self.health.get(case) else {
            return;
        };
        let leader = self.is_leader();
        let mut health = lock(health);
        change(&mut health);
        if let Some(report) = health.take_due(leader, self.settings.suite_reminder) {
            let _ = self.suites.send(SuiteMessage::Report(Box::new(report)));
        }
    }

    /// Waits until every suite report queued so far is published, at most `within`.
    async fn flush_suites(&self, within: Duration) {
        let (done, flushed) = oneshot::channel();
        if self.suites.send(SuiteMessage::Flush(done)).is_ok()
            && tokio::time::timeout(within, flushed).await.is_err()
        {
            tracing::warn!("suite reports still queued at shutdown");
        }
    }
}

/// A read-only view of a running worker, for status pages and tests.
#[derive(Clone)]
pub struct WorkerHandle(Arc<Shared>);

impl fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("cases", &self.0.cases.len())
            .finish_non_exhaustive()
    }
}

impl WorkerHandle {
    /// The health of every case, sorted by name.
    pub fn statuses(&self) -> Vec<CaseStatus> {
        let mut all: Vec<_> = self.0.health.values().map(|h| lock(h).status()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The health of one case.
    pub fn status(&self, case: &str) -> Option<CaseStatus> {
        self.0.health.get(case).map(|h| lock(h).status())
    }

    /// One of the newest tests of `case` (20 of them are kept), by id: its report and its log
    /// lines.
    pub fn test_detail(&self, case: &str, id: &str) -> Option<TestDetail> {
        self.0
            .health
            .get(case)
            .and_then(|h| lock(h).test_detail(id))
    }

    /// The cases this worker runs, sorted by name.
    pub fn cases(&self) -> Vec<CaseConfig> {
        let mut all: Vec<_> = self.0.cases.values().copied().collect();
        all.sort_by_key(|c| c.name());
        all
    }

    /// The worker's counters now.
    pub fn stats(&self) -> WorkerStats {
        #[allow(unused_mut)]
        let mut stats = self.0.stats.snapshot();
        #[cfg(feature = "otel")]
        if let Some(otel) = &self.0.otel {
            stats.spans_exported = otel.counters.exported.load(Ordering::Relaxed);
            stats.spans_dropped = otel.counters.dropped.load(Ordering::Relaxed);
        }
        stats
    }

    /// Whether the worker has subscribed and is consuming.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Relaxed)
    }

    /// Signals held in the store (resolved, or being waited for).
    pub fn stored_signals(&self) -> usize {
        self.0.store.len()
    }

    /// Whether the transport has given this worker something to consume (for Kafka: partitions
    /// of the tests topic). A worker is ready to serve once [`is_ready`](Self::is_ready) and
    /// this both hold.
    pub fn is_assigned(&self) -> bool {
        self.0.transport.is_assigned()
    }

    /// Whether this worker is the leader now (runs the fake-request timers, publishes suite
    /// reports).
    pub fn is_leader(&self) -> bool {
        self.0.is_leader()
    }

    /// Tests whose report the group published that this worker remembers (bounded by
    /// [`WorkerSettings::reported_tests`]).
    pub fn reported_tests(&self) -> usize {
        lock(&self.0.reported).len()
    }

    /// The consumer group as the transport sees it (Kafka): owners and lag of each partition of
    /// the tests topic, and the partitions nobody consumes.
    pub fn group(&self) -> Option<crate::transport::GroupView> {
        self.0.transport.group()
    }

    /// The brokers the transport was configured with (Kafka), if any.
    pub fn brokers(&self) -> Option<String> {
        self.0.transport.brokers()
    }

    /// The partitions of the tests topic this worker consumes now (Kafka), if the transport
    /// has partitions.
    pub fn assigned_partitions(&self) -> Option<Vec<i32>> {
        self.0.transport.assigned_partitions()
    }

    /// The transport's counters (undecodable messages skipped, consumer errors).
    pub fn transport_counters(&self) -> TransportCounters {
        self.0.transport.counters()
    }

    /// Records the transport skipped as untrusted input, `(topic, reason, count)` (see
    /// [`Transport::skipped`]).
    pub fn transport_skipped(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.0.transport.skipped()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reports dated ahead of the clock are logged at most once a minute (counted each).
static FUTURE_REPORT_LOG: crate::throttle::Throttle = crate::throttle::Throttle::new();

/// Tests of cases this worker does not run are logged at most once a minute (counted each).
static UNKNOWN_CASE_LOG: crate::throttle::Throttle = crate::throttle::Throttle::new();

/// At most 64 bytes of a record's text, for a log line.
fn cut(text: &str) -> &str {
    crate::signing::truncated(text)
}

/// Builds a [`Worker`].
pub struct WorkerBuilder {
    transport: Arc<dyn Transport>,
    cases: Option<Vec<CaseConfig>>,
    settings: WorkerSettings,
    observers: Vec<Arc<dyn Observer>>,
    #[cfg(feature = "otel")]
    otlp: Option<crate::otel::OtlpExport>,
}

impl fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("transport", &self.transport)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WorkerBuilder {
    /// Runs these cases (with their options, possibly changed) instead of every registered one.
    pub fn cases(mut self, cases: impl IntoIterator<Item = CaseConfig>) -> Self {
        self.cases = Some(cases.into_iter().collect());
        self
    }

    /// Worker settings.
    pub fn settings(mut self, settings: WorkerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Adds an observer.
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Exports a span per test run to an OpenTelemetry collector (OTLP/HTTP), in the trace of
    /// the request that triggered the test; see [`crate::otel`]. Without this call nothing is
    /// exported, whatever the environment says: `OtlpExport::from_env()` reads it.
    ///
    /// ```no_run
    /// # fn build() -> Result<livecheck::Worker, livecheck::StartError> {
    /// use livecheck::otel::OtlpExport;
    /// let mut builder = livecheck::Worker::builder(livecheck::MemoryTransport::new());
    /// if let Some(export) = OtlpExport::from_env() {
    ///     builder = builder.otlp(export);
    /// }
    /// builder.build()
    /// # }
    /// ```
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    pub fn otlp(mut self, export: crate::otel::OtlpExport) -> Self {
        self.otlp = Some(export);
        self
    }

    /// Checks the cases (unique names, at least one) and builds the worker.
    pub fn build(self) -> Result<Worker, StartError> {
        let cases = match self.cases {
            Some(cases) => {
                crate::case::check_unique(cases.iter().map(|c| c.descriptor))?;
                cases
            }
            None => registered_cases()?
                .into_iter()
                .map(CaseConfig::from)
                .collect(),
        };
        #[cfg(feature = "otel")]
        let otel = self
            .otlp
            .as_ref()
            .map(crate::otel::Export::new)
            .transpose()
            .map_err(StartError::Otel)?;
        if cases.is_empty() {
            return Err(StartError::NoCases(
                "no #[livecheck::case] is linked into this binary or selected".into(),
            ));
        }
        let health = cases
            .iter()
            .map(|c| (c.name(), Mutex::new(CaseHealth::new(c.name(), c.options))))
            .collect();
        let (suites, suites_rx) = mpsc::unbounded_channel();
        let shared = Arc::new_cyclic(|weak| Shared {
            http: cases
                .iter()
                .map(|c| {
                    (
                        c.name(),
                        Arc::new(UrlClient::with_health(
                            c.options,
                            Some(CaseLink::link(weak, *c)),
                        )),
                    )
                })
                .collect(),
            cases: cases.iter().map(|c| (c.name(), *c)).collect(),
            health,
            store: Arc::new(SignalStore::default()),
            stats: Counters::default(),
            ready: AtomicBool::new(false),
            leader: Mutex::new(None),
            client: Client::from_arc(self.transport.clone()),
            transport: self.transport,
            observers: self.observers,
            reported: Mutex::new(ReportedTests::new(self.settings.reported_tests)),
            suites,
            suites_rx: Mutex::new(Some(suites_rx)),
            replayed: watch::channel(false).0,
            settings: self.settings,
            #[cfg(feature = "otel")]
            otel,
        });
        Ok(Worker { shared })
    }
}

/// A livecheck worker.
///
/// # Process-wide effects
///
/// A worker touches two things that belong to the whole process, both documented and
/// bounded: on its first test it installs a panic hook (once per process) that puts the
/// location of a panic *inside a test* into that test's report instead of stderr, and runs the
/// previous hook for every other panic (so a panic outside a test prints as before); and after
/// a burst it may return the allocator's free memory to the system
/// ([`WorkerSettings::release_memory`], on by default).
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), livecheck::StartError> {
/// let worker = livecheck::Worker::builder(livecheck::MemoryTransport::new()).build()?;
/// worker.run(async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub struct Worker {
    shared: Arc<Shared>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("cases", &self.shared.cases.len())
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A builder running every registered case on `transport`.
    pub fn builder(transport: impl Transport) -> WorkerBuilder {
        Self::builder_arc(Arc::new(transport))
    }

    /// A builder on a shared transport.
    pub fn builder_arc(transport: Arc<dyn Transport>) -> WorkerBuilder {
        WorkerBuilder {
            transport,
            cases: None,
            settings: WorkerSettings::default(),
            observers: Vec::new(),
            #[cfg(feature = "otel")]
            otlp: None,
        }
    }

    /// A view of this worker that stays valid while it runs.
    pub fn handle(&self) -> WorkerHandle {
        WorkerHandle(self.shared.clone())
    }

    /// The client publishing through this worker's transport.
    pub fn client(&self) -> Client {
        self.shared.client.clone()
    }

    /// Runs until `shutdown` completes, then stops taking tests, lets running ones finish
    /// within the grace period, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let shared = self.shared;
        let Subscription {
            mut tests,
            signals,
            leader,
            reports,
        } = shared.transport.subscribe().await?;
        *lock(&shared.leader) = Some(leader.clone());
        #[cfg(feature = "otel")]
        if let Some(otel) = &shared.otel {
            otel.start();
        }
        shared.ready.store(true, Ordering::Relaxed);
        tracing::info!(
            cases = shared.cases.len(),
            test_concurrency = shared.settings.test_concurrency,
            "worker started"
        );
        if crate::signing::is_enabled() {
            tracing::info!(
                "test context is signed: unsigned tests, signals and reports are not trusted"
            );
        } else {
            tracing::warn!(
                "test context is unauthenticated: any HTTP client of a service can make its \
                 request a test with LiveCheck-Test-* headers, and anyone who can write to the \
                 topics can deliver signals and reports. Strip those headers at your edge, or \
                 set {} on services and workers (docs/kafka.md, \"Signed test context\")",
                crate::signing::KEY_ENV
            );
        }

        let mut background = JoinSet::new();
        background.spawn(signal_loop(shared.clone(), signals));
        background.spawn(report_loop(shared.clone(), reports));
        if let Some(queue) = lock(&shared.suites_rx).take() {
            background.spawn(suite_loop(shared.clone(), queue));
        }
        background.spawn(maintenance_loop(shared.clone()));
        // Stopped first at shutdown: no new test is started while the running ones finish.
        let mut fake_requests = JoinSet::new();
        for case in shared.cases.values() {
            if let (Some(every), Some(_)) = (case.options.frequency, case.descriptor.fake_request) {
                fake_requests.spawn(fake_request_loop(
                    shared.clone(),
                    *case,
                    every,
                    leader.clone(),
                ));
            }
        }

        wait_for_replay(&shared).await;

        let permits = Arc::new(Semaphore::new(shared.settings.test_concurrency.max(1)));
        let mut running = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            };
            let next = loop {
                tokio::select! {
                    biased;
                    () = &mut shutdown => break None,
                    next = tests.next() => break next,
                    // Reap finished tests while waiting, not only when the next one comes: the
                    // JoinSet holds a finished task's memory until it is joined.
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                }
            };
            let Some(delivery) = next else { break };
            while running.try_join_next().is_some() {}
            let (test, ack) = delivery.into_parts();
            shared.stats.tests_received.fetch_add(1, Ordering::Relaxed);
            // With a key, a test nobody with the key started is not run (crate::signing).
            if !crate::signing::admit(crate::signing::Source::TestRecord, &test) {
                shared.stats.untrusted_tests.fetch_add(1, Ordering::Relaxed);
                ack.ack();
                continue;
            }
            if lock(&shared.reported).contains(&test.case_name, &test.id) {
                shared
                    .stats
                    .already_reported
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(case = %Escaped(&test.case_name), test = %Escaped(&test.id),
                    "test already reported by the group: not run again");
                ack.ack();
                continue;
            }
            let Some(case) = shared.cases.get(test.case_name.as_str()).copied() else {
                let n = shared
                    .stats
                    .unknown_case_tests
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if UNKNOWN_CASE_LOG.ready() {
                    tracing::warn!(case = %Escaped(cut(&test.case_name)),
                        test = %Escaped(cut(&test.id)), skipped = n,
                        "test for a case this worker does not run: skipped (logged at most \
                         once a minute; livecheck_skipped_messages_total counts every one)");
                }
                ack.ack();
                continue;
            };
            running.spawn(handle_test(shared.clone(), case, test, ack, permit));
        }

        fake_requests.abort_all();
        while running.try_join_next().is_some() {}
        let grace = shared.settings.shutdown_grace;
        tracing::info!(
            running = running.len(),
            "stopping: fake requests stopped, no new test taken; waiting up to {} for the \
             running tests",
            crate::duration::humanize(grace)
        );
        let drained = tokio::time::timeout(grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = running.len(),
                "tests still running after {}: stopped unreported (not acknowledged, so the \
                 next worker of the group runs them again)",
                crate::duration::humanize(grace)
            );
            running.abort_all();
        }
        shared.flush_suites(Duration::from_secs(10)).await;
        #[cfg(feature = "otel")]
        if let Some(otel) = &shared.otel {
            otel.shutdown(Duration::from_secs(5)).await;
        }
        background.abort_all();
        shared.ready.store(false, Ordering::Relaxed);
        tracing::info!("closing the transport: last offset commit, reports flushed");
        shared.transport.close().await?;
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// Runs one test to its published report; `permit` (a slot of `test_concurrency`) is released
/// at the end.
///
/// The test stops, unreported, if its partition moves to another worker (see
/// [`Lease`]): the new owner runs it and reports it once.
///
/// Memory: a waiting test holds the returned future in its task, so it keeps only the
/// execution and a few handles; the publishing step is boxed, allocated only when the test
/// ends. As an `async fn` holding its arguments, the report and the suite report beside the
/// execution it was a ~2.9 KB task instead of ~0.4 KB (docs/benchmarks.md).
fn handle_test(
    shared: Arc<Shared>,
    case: CaseConfig,
    test: TestExecution,
    ack: Ack,
    permit: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static {
    let mut lease = ack.lease();
    let moved = lease.now() == Ownership::Lost;
    // Decided once: a test skipped before it starts is not announced as started.
    let skip =
        runner::skip_reason(&case, &test).or_else(|| too_old(&test, shared.settings.max_test_age));
    if !moved {
        shared.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        if let Some(health) = shared.health.get(case.name()) {
            lock(health).on_test_received();
        }
    }
    if !moved && skip.is_none() {
        for observer in &shared.observers {
            observer.on_test_start(&test);
        }
    }
    let http = shared.http.get(case.name()).cloned();
    let name = case.name();
    let id = test.id.clone().into_boxed_str();
    // `Client::scope` without its borrow of the client.
    let run = (!moved).then(|| {
        crate::context::CLIENT.scope(
            shared.client.transport().clone(),
            runner::execute(&case, test, skip, shared.store.clone(), http),
        )
    });
    async move {
        let Some(run) = run else {
            // Read before its partition moved away, run by nobody here.
            drop(permit);
            return;
        };
        let report = tokio::select! {
            report = run => Some(report),
            () = lease.lost() => None,
        };
        match report {
            Some(mut report) => {
                report.attempt = ack.attempt();
                #[cfg(feature = "otel")]
                if let Some(otel) = &shared.otel {
                    otel.test_ended(&report, std::time::SystemTime::now());
                }
                Box::pin(finish(&shared, name, report, ack, lease)).await;
            }
            None => {
                shared.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                moved_away(&shared, name, &id);
            }
        }
        drop(permit);
    }
}

/// Why a test is skipped for its age, if it is older than `max_age` (see
/// [`WorkerSettings::max_test_age`]).
fn too_old(test: &TestExecution, max_age: Option<Duration>) -> Option<&'static str> {
    let max_age = chrono::Duration::from_std(max_age?).ok()?;
    (chrono::Utc::now() - test.timestamp > max_age).then_some(
        "test older than the worker's max_test_age when it arrived: a backlog (e.g. a new \
         consumer group on old topics), skipped without running",
    )
}

/// A test whose partition another worker owns now: stopped, not reported (the new owner runs
/// it and reports it once), not acknowledged (its offset is no longer this worker's).
fn moved_away(shared: &Shared, case: &'static str, id: &str) {
    shared.stats.tests_moved.fetch_add(1, Ordering::Relaxed);
    // Its signals are the new owner's concern now.
    shared.store.release(case, id);
    tracing::info!(
        case,
        test = %Escaped(id),
        "partition moved to another worker: test stopped here, its new owner runs it"
    );
}

/// After a test: the case's health, the report published (the suite report it makes due is
/// queued), the test acknowledged — unless its partition moved to another worker meanwhile. If
/// another worker's report of the test arrived while it ran, the group has its outcome: this one
/// is dropped.
async fn finish(
    shared: &Shared,
    case: &'static str,
    report: TestReport,
    ack: Ack,
    mut lease: Lease,
) {
    shared.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    // During a rebalance, wait to know whether the partition stays here.
    if lease.now() != Ownership::Owned && !lease.settled().await {
        let id = report.test.as_ref().map_or("", |t| t.id.as_str());
        moved_away(shared, case, id);
        return;
    }
    if let Some(test) = &report.test {
        if !lock(&shared.reported).insert(case, &test.id, test.expires) {
            shared
                .stats
                .duplicate_reports_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(case, test = %Escaped(&test.id),
                "another worker reported this test first: this report is dropped");
            shared.store.release(case, &test.id);
            ack.ack();
            return;
        }
    }
    shared.judge(case, |health| health.on_report(&report, Utc::now()));
    let mut published = publish(shared, &report, true).await != Published::Failed;
    // Its report is out (or on its way): the test's signals are let go; a re-run finds them
    // on the bus.
    if let Some(test) = &report.test {
        shared.store.release(case, &test.id);
    }
    // A test's report must get out: retry (the producer already retried for its
    // message.timeout.ms) while the partition is this worker's, until shutdown aborts it.
    let mut backoff = Duration::from_secs(1);
    while !published {
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = lease.lost() => {
                let id = report.test.as_ref().map_or("", |t| t.id.as_str());
                // Not out: if the partition comes back, the test must run, not be skipped.
                lock(&shared.reported).remove(case, id);
                moved_away(shared, case, id);
                return;
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
        published = publish(shared, &report, false).await != Published::Failed;
    }
    ack.ack();
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Published {
    /// It is out (whole, cut down, or as a minimal report).
    Out,
    /// Too large for the broker even as a minimal report: dropped, with an ERROR. Its test is
    /// acknowledged all the same: retrying could only fail again, holding a slot for good.
    Dropped,
    /// The broker failed (down, unreachable): try again.
    Failed,
}

/// Publishes a report (if reports are sent) and, if `notify`, shows it to the observers (a
/// retry does not show it twice).
///
/// A report too large for the broker is cut down until it fits ([`TestReport::truncate_to`]):
/// to `max_report_bytes` when its texts alone come near that, and smaller each time the broker
/// still refuses it, down to [`MIN_REPORT_LIMIT`]; one that does not fit even then (its id or
/// case name is itself too large: untrusted input) is replaced by a minimal report — its test's
/// id shortened with a hash, its state kept ([`minimal_report`]); one refused even so is dropped
/// with an ERROR. Each step is one cut (linear in the report's size), never a loop that
/// re-serialises without end.
async fn publish(shared: &Shared, report: &TestReport, notify: bool) -> Published {
    let size = |r: &TestReport| crate::codec::encode_report(r).len();
    let mut limit = shared.settings.max_report_bytes;
    let texts = [&report.error, &report.traceback]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum::<usize>();
    let mut cut: Option<TestReport> = None;
    // What no cut can shrink (the test id, the names) is already too large to leave room:
    // the minimal report at once, not a cut per step down to it.
    let uncuttable = report.case_name.len()
        + report
            .test
            .as_ref()
            .map_or(0, |t| t.id.len() + t.case_name.len());
    let mut minimal = uncuttable > MIN_REPORT_LIMIT / 2;
    if minimal {
        cut = Some(minimal_report(report));
    } else if texts > limit / 2 {
        let mut smaller = report.clone();
        smaller.truncate_to(limit, size);
        cut = Some(smaller);
    }
    loop {
        let current = cut.as_ref().unwrap_or(report);
        let result = if shared.settings.send_reports {
            shared.transport.publish_report(current).await
        } else {
            Ok(())
        };
        let error = match result {
            Ok(()) => {
                if minimal {
                    shared.stats.minimal_reports.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(case = %Escaped(cut_text(&current.case_name)),
                        "report too large for the broker even cut down: a minimal report \
                         was published instead");
                } else if cut.is_some() {
                    tracing::warn!(case = %Escaped(cut_text(&current.case_name)), limit,
                        "oversized report truncated");
                }
                if notify {
                    for observer in &shared.observers {
                        observer.on_report(current);
                    }
                }
                // The case's `on_suite_fail` and `post_report` hooks, once it is out.
                let case = shared.cases.get(current.case_name.as_str());
                crate::hooks::report_published(case.and_then(|c| c.descriptor.hooks), current)
                    .await;
                return Published::Out;
            }
            Err(TransportError::TooLarge) if limit > MIN_REPORT_LIMIT && !minimal => {
                limit = limit.min(size(current) / 2).max(MIN_REPORT_LIMIT);
                let mut smaller = cut.take().unwrap_or_else(|| report.clone());
                smaller.truncate_to(limit, size);
                cut = Some(smaller);
                continue;
            }
            Err(TransportError::TooLarge) if !minimal => {
                minimal = true;
                cut = Some(minimal_report(report));
                continue;
            }
            Err(TransportError::TooLarge) => {
                // Not on the report topic, but the outcome is still logged and counted here.
                if notify {
                    for observer in &shared.observers {
                        observer.on_report(current);
                    }
                }
                shared.stats.reports_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(case = %Escaped(cut_text(&report.case_name)),
                    test = %Escaped(cut_text(report.test.as_ref().map_or("", |t| &t.id))),
                    "report refused by the broker even as a minimal report: dropped, its test \
                     acknowledged");
                return Published::Dropped;
            }
            Err(error) => error,
        };
        if notify {
            for observer in &shared.observers {
                observer.on_report(current);
            }
        }
        shared
            .stats
            .report_publish_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(case = %Escaped(cut_text(&current.case_name)), %error,
            "report not published");
        return Published::Failed;
    }
}

/// At most 64 bytes of a record's text, for a log line.
fn cut_text(text: &str) -> &str {
    crate::signing::truncated(text)
}

/// The smallest report that still says what happened: case, state, test (its id shortened
/// with a hash when long, its timestamps kept, no arguments), attempt and trace; the error
/// says that the report was replaced.
fn minimal_report(report: &TestReport) -> TestReport {
    TestReport {
        case_name: shorten(&report.case_name),
        state: report.state,
        test: report.test.as_ref().map(|test| TestExecution {
            id: shorten(&test.id),
            case_name: shorten(&test.case_name),
            timestamp: test.timestamp,
            test_args: Vec::new(),
            test_kwargs: serde_json::Map::new(),
            expires: test.expires,
            traceparent: test.traceparent,
            tracestate: None,
            signature: None,
        }),
        runtime: report.runtime,
        signal_latency: Default::default(),
        error: Some(
            "[report too large for the broker: replaced by a minimal report; long ids and \
             names are shortened with a SHA-256 hash]"
                .into(),
        ),
        traceback: None,
        attempt: report.attempt,
        timed_out_signal: None,
        trace_id: report.trace_id.clone(),
    }
}

/// `text` if at most 128 bytes, else its first 64 bytes, `…sha256:` and the first 32 hex
/// digits of its SHA-256: still told apart from others, and searchable.
fn shorten(text: &str) -> String {
    if text.len() <= 128 {
        return text.to_owned();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}…sha256:{hex}", crate::signing::truncated(text))
}

/// The smallest size a report is cut down to when the broker refuses larger ones.
const MIN_REPORT_LIMIT: usize = 8 * 1024;

async fn signal_loop(
    shared: Arc<Shared>,
    signals: futures::stream::BoxStream<'static, crate::transport::Delivery<SignalEvent>>,
) {
    let mut signals = signals;
    while let Some(delivery) = signals.next().await {
        let (event, ack) = delivery.into_parts();
        shared
            .stats
            .signals_received
            .fetch_add(1, Ordering::Relaxed);
        match shared.cases.get(event.case_name.as_str()) {
            Some(case) => shared.store.resolve(
                case.name(),
                &event.key,
                event.signal_name,
                event.value,
                case.options.test_expires,
            ),
            None => {
                shared
                    .stats
                    .unknown_case_signals
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(case = %Escaped(&event.case_name),
                    signal = %Escaped(&event.signal_name),
                    "signal for a case this worker does not run: skipped");
            }
        }
        ack.ack();
    }
}

/// Feeds the group's reports into case health: each test's report once (a test reported twice
/// counts once), a suite report of the leader adopted; this worker's own reports were applied
/// when it published them.
async fn report_loop(shared: Arc<Shared>, mut reports: BoxStream<'static, ReportEvent>) {
    while let Some(event) = reports.next().await {
        match event {
            ReportEvent::Report(report) => on_group_report(&shared, *report),
            ReportEvent::CaughtUp => {
                shared.replayed.send_replace(true);
            }
        }
    }
    // No more reports will come: nothing to wait for.
    shared.replayed.send_replace(true);
}

fn on_group_report(shared: &Shared, published: PublishedReport) {
    if published.own {
        return;
    }
    let report = published.report;
    let Some(case) = shared
        .cases
        .get_key_value(report.case_name.as_str())
        .map(|(name, _)| *name)
    else {
        return;
    };
    let now = Utc::now();
    let at = published.published_at.unwrap_or(now);
    // Believed only when it agrees with the clock: a report from the future would stay the
    // newest failure (or stall) for good, whatever passes after it.
    let skew =
        chrono::Duration::from_std(shared.settings.max_clock_skew).unwrap_or(chrono::Duration::MAX);
    let ahead = now.checked_add_signed(skew).unwrap_or(now);
    let issued = report.test.as_ref().map(|t| t.timestamp);
    if at > ahead || issued.is_some_and(|issued| issued > ahead) {
        let n = shared.stats.future_reports.fetch_add(1, Ordering::Relaxed) + 1;
        if FUTURE_REPORT_LOG.ready() {
            tracing::warn!(case, skipped = n, published = %at, issued = ?issued,
                "a report dated ahead of this worker's clock is ignored (logged at most once a \
                 minute; livecheck_skipped_messages_total{{reason=\"future\"}} counts every one)");
        }
        return;
    }
    match &report.test {
        None => shared.judge(case, |health| health.adopt(&report, at)),
        Some(test) => {
            if !lock(&shared.reported).insert(case, &test.id, test.expires) {
                shared.stats.peer_duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            shared.stats.peer_reports.fetch_add(1, Ordering::Relaxed);
            shared.judge(case, |health| health.on_peer_report(&report, at));
        }
    }
}

/// Waits (at most `report_replay_wait`) until the group's recent reports are read, so the
/// tests they report are known before tests are taken.
async fn wait_for_replay(shared: &Shared) {
    let mut replayed = shared.replayed.subscribe();
    let wait = shared.settings.report_replay_wait;
    if tokio::time::timeout(wait, replayed.wait_for(|done| *done))
        .await
        .is_err()
    {
        tracing::warn!(
            waited = ?wait,
            "the group's recent reports are not read yet: taking tests anyway"
        );
    }
}

/// Publishes the queued suite reports, one at a time, in order.
async fn suite_loop(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<SuiteMessage>) {
    while let Some(message) = queue.recv().await {
        match message {
            SuiteMessage::Report(report) => {
                let _ = publish(&shared, &report, true).await;
            }
            SuiteMessage::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Expires old signals and checks every case's health, every `health_interval`.
async fn maintenance_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.health_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut peak = 0;
    loop {
        tick.tick().await;
        shared.store.expire();
        // What a burst freed (100,000 tests and their signals: ~200 MB) stays in the
        // allocator's free lists, not given back to the system, unless asked: ask once the
        // worker holds a quarter of its peak (docs/benchmarks.md).
        let live = shared.stats.in_flight.load(Ordering::Relaxed) + shared.store.len();
        peak = peak.max(live);
        if shared.settings.release_memory && peak >= 10_000 && live <= peak / 4 {
            // It walks every arena (milliseconds after a big burst): not on a runtime thread.
            drop(tokio::task::spawn_blocking(release_free_memory));
            peak = live;
        }
        let mut names: Vec<_> = shared.health.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            shared.judge(name, CaseHealth::check);
        }
    }
}

/// Returns the allocator's free memory to the system where the allocator keeps it (glibc's
/// `malloc` does, in every arena, until `malloc_trim`).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: glibc's malloc_trim only releases pages of free chunks; any thread may
        // call it at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Calls the case's fake request every `every`, while this worker is the leader.
async fn fake_request_loop(
    shared: Arc<Shared>,
    case: CaseConfig,
    every: Duration,
    leader: watch::Receiver<bool>,
) {
    let Some(fake_request) = case.descriptor.fake_request else {
        return;
    };
    // Like Faust: the first request goes out one period after start.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !*leader.borrow() {
            continue;
        }
        let http = shared
            .http
            .get(case.name())
            .map(|http| UrlClient::clone(http))
            .unwrap_or_else(|| UrlClient::new(case.options));
        let request = FakeRequest::new(case, shared.client.clone(), http);
        let shared = shared.clone();
        tokio::spawn(async move {
            let client = shared.client.clone();
            if let Err(error) = client.scope(fake_request(request)).await {
                shared
                    .stats
                    .fake_request_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(case = case.name(), %error, "fake request failed");
            }
        });
    }
}

/// Lets a case's HTTP helpers report a service down or back to the case's health.
///
/// Weak: `Shared` keeps each case's helpers, which keep this link.
struct CaseLink {
    shared: Weak<Shared>,
    case: &'static str,
}

impl CaseLink {
    fn link(shared: &Weak<Shared>, case: CaseConfig) -> Arc<dyn ServiceHealth> {
        Arc::new(CaseLink {
            shared: shared.clone(),
            case: case.name(),
        })
    }

    /// Only the leader's view of the service counts: it runs the fake requests, and a
    /// follower's "service down" could not reach the group (its test's own report does).
    async fn apply(&self, change: impl FnOnce(&mut CaseHealth)) {
        let Some(shared) = self.shared.upgrade() else {
            return; // the worker is gone
        };
        if !shared.is_leader() {
            tracing::debug!(
                case = self.case,
                "service health seen by a follower: left to the leader"
            );
            return;
        }
        shared.judge(self.case, change);
    }
}

impl ServiceHealth for CaseLink {
    fn service_down(
        &self,
        message: String,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.apply(move |health| health.on_service_down(message)))
    }

    fn service_up(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.apply(CaseHealth::on_service_up))
    }
}
