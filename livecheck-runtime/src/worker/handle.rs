//! [`WorkerHandle`]: a read-only view of a running worker, for status pages and tests.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::service::case::CaseConfig;
use crate::transport::TransportSnapshot;
use crate::worker::health::{CaseStatus, TestDetail};

use super::shared::Shared;
use super::stats::WorkerStats;
use crate::lock::lock;

/// A read-only view of a running worker, for status pages and tests.
#[derive(Clone)]
pub struct WorkerHandle(pub(super) Arc<Shared>);

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
    #[cfg_attr(not(feature = "ops"), allow(dead_code))]
    pub(crate) fn test_detail(&self, case: &str, id: &str) -> Option<TestDetail> {
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
    #[cfg_attr(not(feature = "ops"), allow(dead_code))]
    pub(crate) fn is_assigned(&self) -> bool {
        self.0.consume.is_assigned()
    }

    /// Why the worker is not ready, or `None` when it is: consuming, with a partition
    /// assignment, and no partition of the group orphaned (in `transport`, a
    /// [`transport`](Self::transport) snapshot). `/readyz` answers with it and
    /// `livecheck_worker_ready` mirrors it, so the two never disagree.
    #[cfg(feature = "ops")]
    pub(crate) fn not_ready(&self, transport: &TransportSnapshot) -> Option<String> {
        if !self.is_ready() {
            return Some("not consuming".into());
        }
        if !self.is_assigned() {
            return Some("waiting for a partition assignment".into());
        }
        let orphaned = transport
            .group
            .as_ref()
            .map(|g| g.orphaned.as_slice())
            .unwrap_or_default();
        if !orphaned.is_empty() {
            return Some(format!(
                "orphaned partitions {orphaned:?}: their tests are run by no worker"
            ));
        }
        None
    }

    /// Whether this worker is the leader now (runs the fake-request timers, publishes suite
    /// reports).
    pub fn is_leader(&self) -> bool {
        self.0.is_leader()
    }

    /// Tests whose report the group published that this worker remembers (bounded by
    /// [`WorkerSettings::reported_tests`](super::WorkerSettings::reported_tests)).
    pub fn reported_tests(&self) -> usize {
        lock(&self.0.reported).len()
    }

    /// The transport now ([`Introspect::snapshot`](crate::transport::Introspect::snapshot)):
    /// its counters (undecodable messages skipped, consumer errors, messages dropped), the
    /// consumer group as it sees it (Kafka: owners and lag of each partition of the tests topic,
    /// and the partitions nobody consumes), the brokers it was configured with, the partitions
    /// this worker consumes, and the records it skipped as untrusted input.
    pub fn transport(&self) -> TransportSnapshot {
        self.0.introspect.snapshot()
    }
}
