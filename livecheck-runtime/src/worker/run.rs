//! [`Worker::run`]: subscribe, start the background loops, take tests while slots are free, and
//! at shutdown stop taking tests, let running ones finish within the grace period, and close.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::text::Escaped;
use crate::transport::Subscription;
use crate::wire::error::StartError;

use super::group::{report_loop, wait_for_replay};
use super::lifecycle::handle_test;
use super::loops::{fake_request_loop, maintenance_loop, signal_loop, suite_loop};
use super::Worker;
use crate::lock::lock;

/// Tests of cases this worker does not run are logged at most once a minute (counted each).
static UNKNOWN_CASE_LOG: crate::throttle::Throttle = crate::throttle::Throttle::new();

/// At most 64 bytes of a record's text, for a log line.
fn cut(text: &str) -> &str {
    crate::wire::signing::truncated(text)
}

impl Worker {
    /// Runs until `shutdown` completes, then stops taking tests, lets running ones finish
    /// within the grace period, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let shared = self.shared;
        let Subscription {
            mut tests,
            signals,
            leader,
            reports,
        } = shared.consume.subscribe().await?;
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
        if crate::wire::signing::is_enabled() {
            tracing::info!(
                "test context is signed: unsigned tests, signals and reports are not trusted"
            );
        } else {
            tracing::warn!(
                "test context is unauthenticated: any HTTP client of a service can make its \
                 request a test with LiveCheck-Test-* headers, and anyone who can write to the \
                 topics can deliver signals and reports. Strip those headers at your edge, or \
                 set {} on services and workers (docs/kafka.md, \"Signed test context\")",
                crate::wire::signing::KEY_ENV
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
            if !crate::wire::signing::admit(crate::wire::signing::Source::TestRecord, &test) {
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
            crate::wire::duration::humanize(grace)
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
                crate::wire::duration::humanize(grace)
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
        shared.consume.close().await?;
        tracing::info!("worker stopped");
        Ok(())
    }
}
