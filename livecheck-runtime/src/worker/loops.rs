//! The worker's background loops besides the group's reports ([`super::group`]): signals into
//! the store, the suite-report queue, the periodic maintenance (expiry, health, memory), and the
//! fake-request timers of the leader.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::service::case::CaseConfig;
use crate::service::case::FakeRequest;
use crate::service::http::UrlClient;
use crate::text::Escaped;
use crate::wire::model::SignalEvent;
use crate::worker::health::CaseHealth;

use super::publish::publish;
use super::shared::{Shared, SuiteMessage};

pub(super) async fn signal_loop(
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

/// Publishes the queued suite reports, one at a time, in order.
pub(super) async fn suite_loop(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<SuiteMessage>,
) {
    while let Some(message) = queue.recv().await {
        match message {
            SuiteMessage::Report(report) => {
                let _ = publish(&shared, &report, chrono::Utc::now(), true).await;
            }
            SuiteMessage::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Expires old signals and checks every case's health, every `health_interval`.
pub(super) async fn maintenance_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.health_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut peak = MemoryPeak::default();
    loop {
        tick.tick().await;
        shared.store.expire();
        // What a burst freed (100,000 tests and their signals: ~200 MB) stays in the
        // allocator's free lists, not given back to the system, unless asked: ask once the
        // worker holds a quarter of its peak (docs/benchmarks.md).
        let live = shared.stats.in_flight.load(Ordering::Relaxed) + shared.store.len();
        if peak.release_due(live, shared.settings.release_memory) {
            // It walks every arena (milliseconds after a big burst): not on a runtime thread.
            drop(tokio::task::spawn_blocking(release_free_memory));
        }
        let mut names: Vec<_> = shared.health.keys().copied().collect();
        names.sort_unstable();
        for name in names {
            shared.judge(name, CaseHealth::check);
        }
    }
}

/// The most tests and signals the worker held since memory was last given back.
#[derive(Debug, Default)]
pub(super) struct MemoryPeak {
    peak: usize,
}

impl MemoryPeak {
    /// Whether, holding `live` tests and signals now, the allocator's free memory is to be
    /// given back (if `enabled`): once the worker holds a quarter of a peak of 10,000 or more.
    /// The peak then starts over from `live`.
    pub(super) fn release_due(&mut self, live: usize, enabled: bool) -> bool {
        self.peak = self.peak.max(live);
        let due = enabled && self.peak >= 10_000 && live <= self.peak / 4;
        if due {
            self.peak = live;
        }
        due
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
pub(super) async fn fake_request_loop(
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
