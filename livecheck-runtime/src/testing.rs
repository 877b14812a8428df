//! Unit-test your cases in `cargo test`, with no broker: a worker on the in-memory transport.
//!
//! ```no_run
//! # mod demo {
//! use livecheck::testing::TestKit;
//!
//! #[livecheck::case(probability = 1.0)]
//! async fn order_flows(side: String) -> livecheck::Result {
//!     let seen = ORDER_SEEN.wait().timeout("30s").await?;
//!     livecheck::ensure!(seen == side, "side changed to {seen}");
//!     Ok(())
//! }
//!
//! livecheck::signal! {
//!     /// The order service saw the order.
//!     pub ORDER_SEEN: String for order_flows;
//! }
//!
//! #[tokio::test(start_paused = true)]
//! async fn passes_when_the_side_is_kept() {
//!     let mut kit = TestKit::builder().case(order_flows).start();
//!     kit.run(order_flows.trigger("t1", "sell".into())).await.unwrap();
//!     kit.send(&ORDER_SEEN, "t1", &"sell".to_string()).await.unwrap();
//!     assert_eq!(kit.report_for("t1").await.state, livecheck::State::Pass);
//! }
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::service::case::{Case, CaseConfig, CaseOptions};
use crate::service::client::Client;
use crate::service::signal::Signal;
use crate::transport::MemoryTransport;
use crate::wire::error::SendError;
use crate::wire::model::TestReport;
use crate::worker::health::CaseStatus;
use crate::worker::{Observer, SpawnedWorker, Worker, WorkerBuilder, WorkerHandle, WorkerSettings};

/// How long (in tokio time, usually paused) `report_for` and friends wait before panicking.
const REPORT_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A worker on an in-memory transport, with helpers to trigger, signal and read reports.
pub struct TestKit {
    client: Client,
    transport: Arc<MemoryTransport>,
    handle: WorkerHandle,
    reports: mpsc::UnboundedReceiver<TestReport>,
    unclaimed: VecDeque<TestReport>,
    worker: Option<SpawnedWorker>,
}

impl fmt::Debug for TestKit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKit")
            .field("unclaimed", &self.unclaimed.len())
            .finish_non_exhaustive()
    }
}

/// Builds a [`TestKit`].
pub struct TestKitBuilder {
    cases: Vec<CaseConfig>,
    builder: WorkerBuilder,
    transport: Arc<MemoryTransport>,
}

impl fmt::Debug for TestKitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKitBuilder")
            .field("cases", &self.cases)
            .finish_non_exhaustive()
    }
}

struct Forward(mpsc::UnboundedSender<TestReport>);

impl Observer for Forward {
    fn on_report(&self, report: &TestReport) {
        let _ = self.0.send(report.clone());
    }
}

impl TestKitBuilder {
    /// Runs this case (call once per case; with none, every registered case runs).
    pub fn case<C: Case>(mut self, case: C) -> Self {
        self.cases.push(CaseConfig::from(case.descriptor()));
        self
    }

    /// Runs this case with changed options (e.g. a smaller `max_consecutive_failures`).
    pub fn case_with<C: Case>(mut self, case: C, change: impl FnOnce(&mut CaseOptions)) -> Self {
        let mut config = CaseConfig::from(case.descriptor());
        change(&mut config.options);
        self.cases.push(config);
        self
    }

    /// Worker settings.
    pub fn settings(mut self, settings: WorkerSettings) -> Self {
        self.builder = self.builder.settings(settings);
        self
    }

    /// Adds an observer of the kit's worker (the kit has its own, which collects reports).
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.builder = self.builder.observer(observer);
        self
    }

    /// Exports a span per test to an OpenTelemetry collector
    /// ([`WorkerBuilder::otlp`](crate::worker::WorkerBuilder::otlp)). Under a paused clock the
    /// spans' times are the wall clock's, their length the test's runtime in tokio time.
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    pub fn otlp(mut self, export: crate::worker::otel::OtlpExport) -> Self {
        self.builder = self.builder.otlp(export);
        self
    }

    /// Whether the worker is leader (runs fake requests); it is by default.
    pub fn leader(self, leader: bool) -> Self {
        self.transport.set_leader(leader);
        self
    }

    /// Starts the worker in a task of its own.
    ///
    /// # Panics
    /// If the cases are invalid (duplicate names, none registered).
    pub fn start(self) -> TestKit {
        let (tx, reports) = mpsc::unbounded_channel();
        let mut builder = self.builder.observer(Forward(tx));
        if !self.cases.is_empty() {
            builder = builder.cases(self.cases);
        }
        let worker = builder.build().expect("invalid cases for the test kit");
        let handle = worker.handle();
        let client = worker.client();
        TestKit {
            client,
            transport: self.transport,
            handle,
            reports,
            unclaimed: VecDeque::new(),
            worker: Some(worker.spawn()),
        }
    }
}

impl TestKit {
    /// A builder for a kit on a fresh in-memory transport.
    pub fn builder() -> TestKitBuilder {
        let transport = Arc::new(MemoryTransport::new());
        TestKitBuilder {
            cases: Vec::new(),
            builder: Worker::builder_arc(transport.clone()),
            transport,
        }
    }

    /// Runs `fut` with this kit's client in effect, as a service using livecheck would: use it
    /// around `trigger`, `maybe_trigger` and code under test that sends signals.
    pub async fn run<F: Future>(&self, fut: F) -> F::Output {
        self.client.scope(fut).await
    }

    /// Sends `signal` for test `key`, as a service would.
    pub async fn send<T: Serialize + DeserializeOwned>(
        &self,
        signal: &Signal<T>,
        key: &str,
        value: &T,
    ) -> Result<(), SendError> {
        self.run(signal.send_to(key, value)).await
    }

    /// The next report of any kind.
    ///
    /// # Panics
    /// If none comes within a day of (usually paused) tokio time.
    pub async fn next_report(&mut self) -> TestReport {
        if let Some(report) = self.unclaimed.pop_front() {
            return report;
        }
        self.recv().await
    }

    /// The report of test `id`; other reports stay available to later calls.
    ///
    /// # Panics
    /// If none comes within a day of (usually paused) tokio time.
    pub async fn report_for(&mut self, id: &str) -> TestReport {
        self.claim(|r| r.test.as_ref().is_some_and(|t| t.id == id))
            .await
    }

    /// The next suite report (FAIL, STALL, or a recovery PASS) of `case`.
    ///
    /// # Panics
    /// If none comes within a day of (usually paused) tokio time.
    pub async fn suite_report(&mut self, case: &str) -> TestReport {
        self.claim(|r| r.is_suite() && r.case_name == case).await
    }

    /// Reports received and not yet claimed, without waiting.
    pub fn drain(&mut self) -> Vec<TestReport> {
        while let Ok(report) = self.reports.try_recv() {
            self.unclaimed.push_back(report);
        }
        self.unclaimed.drain(..).collect()
    }

    async fn claim(&mut self, want: impl Fn(&TestReport) -> bool) -> TestReport {
        if let Some(at) = self.unclaimed.iter().position(&want) {
            return self.unclaimed.remove(at).expect("position is valid");
        }
        loop {
            let report = self.recv().await;
            if want(&report) {
                return report;
            }
            self.unclaimed.push_back(report);
        }
    }

    async fn recv(&mut self) -> TestReport {
        match tokio::time::timeout(REPORT_WAIT, self.reports.recv()).await {
            Ok(Some(report)) => report,
            Ok(None) => panic!("the test kit's worker stopped"),
            Err(_) => panic!("no report within {REPORT_WAIT:?}"),
        }
    }

    /// The health of `case`.
    pub fn status(&self, case: &str) -> Option<CaseStatus> {
        self.handle.status(case)
    }

    /// The worker's handle.
    pub fn handle(&self) -> &WorkerHandle {
        &self.handle
    }

    /// The client publishing to the kit's worker.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The in-memory transport.
    pub fn transport(&self) -> &MemoryTransport {
        &self.transport
    }

    /// Stops the worker, letting running tests finish.
    pub async fn shutdown(mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.stop().await;
        }
    }
}

impl Drop for TestKit {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
    }
}
