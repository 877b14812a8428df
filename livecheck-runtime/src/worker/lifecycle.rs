//! One test's life on a worker: taken (or skipped, or found moved away), run, its report
//! published and the test acknowledged — unless its partition moves to another worker first.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::OwnedSemaphorePermit;

use crate::service::case::CaseConfig;
use crate::service::runner;
use crate::text::Escaped;
use crate::transport::{Ack, Lease, Ownership};
use crate::wire::model::{TestExecution, TestReport};

use super::publish::{publish, Published};
use super::shared::Shared;
use crate::lock::lock;

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
pub(super) fn handle_test(
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
        crate::service::context::CLIENT.scope(
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
/// [`WorkerSettings::max_test_age`](super::WorkerSettings::max_test_age)).
pub(super) fn too_old(test: &TestExecution, max_age: Option<Duration>) -> Option<&'static str> {
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
    let verdict_at = Utc::now();
    shared.judge(case, |health| health.on_report(&report, verdict_at));
    let mut published = publish(shared, &report, verdict_at, true).await != Published::Failed;
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
        published = publish(shared, &report, verdict_at, false).await != Published::Failed;
    }
    ack.ack();
}
