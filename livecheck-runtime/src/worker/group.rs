//! The group's reports, read back from the transport: each test's report fed once into case
//! health, a leader's suite report adopted, reports dated ahead of the clock ignored.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::transport::{PublishedReport, ReportEvent};

use super::shared::Shared;
use crate::lock::lock;

/// Reports dated ahead of the clock are logged at most once a minute (counted each).
static FUTURE_REPORT_LOG: crate::throttle::Throttle = crate::throttle::Throttle::new();

/// Feeds the group's reports into case health: each test's report once (a test reported twice
/// counts once), a suite report of the leader adopted; this worker's own reports were applied
/// when it published them.
pub(super) async fn report_loop(shared: Arc<Shared>, mut reports: BoxStream<'static, ReportEvent>) {
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
    let issued = report.test.as_ref().map(|t| t.timestamp);
    if dated_ahead(now, shared.settings.max_clock_skew, at, issued) {
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

/// Whether a report published at `at`, of a test issued at `issued`, is dated further ahead of
/// `now` than `max_skew` ([`WorkerSettings::max_clock_skew`](super::WorkerSettings::max_clock_skew)).
pub(super) fn dated_ahead(
    now: DateTime<Utc>,
    max_skew: Duration,
    at: DateTime<Utc>,
    issued: Option<DateTime<Utc>>,
) -> bool {
    let skew = chrono::Duration::from_std(max_skew).unwrap_or(chrono::Duration::MAX);
    // A skew beyond the calendar's end lets every date through (it used to mean no skew).
    let ahead = now
        .checked_add_signed(skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    at > ahead || issued.is_some_and(|issued| issued > ahead)
}

/// Waits (at most `report_replay_wait`) until the group's recent reports are read, so the
/// tests they report are known before tests are taken.
pub(super) async fn wait_for_replay(shared: &Shared) {
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
