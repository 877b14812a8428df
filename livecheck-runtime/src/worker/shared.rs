//! [`Shared`]: the state every task of a worker (and each [`WorkerHandle`](super::WorkerHandle))
//! holds, and the one judgement they all make: a change of a case's health and the suite report
//! it makes due.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::lock::lock;
use crate::service::case::CaseConfig;
use crate::service::client::Client;
use crate::service::http::UrlClient;
use crate::service::store::SignalStore;
use crate::transport::{Consume, Introspect};
use crate::wire::model::TestReport;
use crate::worker::health::{CaseHealth, ReportedTests};

use super::stats::Counters;
use super::{Observer, WorkerSettings};

pub(super) struct Shared {
    pub(super) cases: HashMap<&'static str, CaseConfig>,
    pub(super) health: HashMap<&'static str, Mutex<CaseHealth>>,
    pub(super) store: Arc<SignalStore>,
    pub(super) stats: Counters,
    pub(super) ready: AtomicBool,
    pub(super) leader: Mutex<Option<watch::Receiver<bool>>>,
    /// What the worker consumes, and publishes its reports through.
    pub(super) consume: Arc<dyn Consume>,
    /// What the status page and `/metrics` read of the transport.
    pub(super) introspect: Arc<dyn Introspect>,
    /// What the worker's cases (and the services they call in-process) publish through.
    pub(super) client: Client,
    pub(super) observers: Vec<Arc<dyn Observer>>,
    pub(super) settings: WorkerSettings,
    /// Each case's HTTP helpers, built once: a reqwest client per test cost ~3.4 KB and a
    /// client build (connection pool, resolver) on every test (docs/benchmarks.md).
    pub(super) http: HashMap<&'static str, Arc<UrlClient>>,
    /// Tests whose report the group has published.
    pub(super) reported: Mutex<ReportedTests>,
    /// Suite reports to publish, in order: one queue, drained by one task.
    pub(super) suites: mpsc::UnboundedSender<SuiteMessage>,
    pub(super) suites_rx: Mutex<Option<mpsc::UnboundedReceiver<SuiteMessage>>>,
    /// Whether the group's recent reports have been read (the transport's look-back).
    pub(super) replayed: watch::Sender<bool>,
    /// The export of a span per test, if configured.
    #[cfg(feature = "otel")]
    pub(super) otel: Option<crate::worker::otel::Export>,
}

pub(super) enum SuiteMessage {
    Report(Box<TestReport>),
    Flush(oneshot::Sender<()>),
}

impl Shared {
    pub(super) fn is_leader(&self) -> bool {
        lock(&self.leader)
            .as_ref()
            .is_some_and(|leader| *leader.borrow())
    }

    /// Applies `change` to `case`'s health and queues the suite report it makes due (leader
    /// only). Under the case's lock: a case's suite reports are queued in the order of its
    /// transitions, and one task publishes the queue in order.
    pub(super) fn judge(&self, case: &str, change: impl FnOnce(&mut CaseHealth)) {
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
    pub(super) async fn flush_suites(&self, within: Duration) {
        let (done, flushed) = oneshot::channel();
        if self.suites.send(SuiteMessage::Flush(done)).is_ok()
            && tokio::time::timeout(within, flushed).await.is_err()
        {
            tracing::warn!("suite reports still queued at shutdown");
        }
    }
}
