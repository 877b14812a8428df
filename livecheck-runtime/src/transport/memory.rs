//! The in-process transport: channels instead of topics. For unit tests of cases
//! ([`crate::testing`]) and for running a worker and its services in one process.

use std::sync::Mutex;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};

use super::{
    Consume, Delivery, DropCounter, Introspect, Publish, PublishedReport, Queued, ReportEvent,
    Subscription, TransportCounters, TransportError, TransportFuture, TransportSnapshot, CLOSED,
};
use crate::lock::lock;
use crate::wire::model::{SignalEvent, TestExecution, TestReport};

/// An in-memory transport: one worker subscribes; reports can be watched with
/// [`MemoryTransport::reports`]. Reports published here come back to the subscriber as its own
/// (its report stream), like a report topic read by a group of one; a report of another worker
/// of the group can be fed in with [`MemoryTransport::publish_peer_report`].
#[derive(Debug)]
pub struct MemoryTransport {
    tests: mpsc::UnboundedSender<TestExecution>,
    signals: mpsc::UnboundedSender<SignalEvent>,
    feed: mpsc::UnboundedSender<ReportEvent>,
    receivers: Mutex<Option<Receivers>>,
    reports: broadcast::Sender<TestReport>,
    leader: watch::Sender<bool>,
    dropped: DropCounter,
}

#[derive(Debug)]
struct Receivers {
    tests: mpsc::UnboundedReceiver<TestExecution>,
    signals: mpsc::UnboundedReceiver<SignalEvent>,
    feed: mpsc::UnboundedReceiver<ReportEvent>,
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTransport {
    /// A new transport; its subscriber is the leader.
    pub fn new() -> Self {
        let (tests, tests_rx) = mpsc::unbounded_channel();
        let (signals, signals_rx) = mpsc::unbounded_channel();
        let (feed, feed_rx) = mpsc::unbounded_channel();
        // Nothing to replay: the feed starts caught up.
        let _ = feed.send(ReportEvent::CaughtUp);
        MemoryTransport {
            tests,
            signals,
            feed,
            receivers: Mutex::new(Some(Receivers {
                tests: tests_rx,
                signals: signals_rx,
                feed: feed_rx,
            })),
            reports: broadcast::channel(4096).0,
            leader: watch::channel(true).0,
            dropped: DropCounter::default(),
        }
    }

    /// Every report published from now on (a lagging receiver loses the oldest).
    pub fn reports(&self) -> broadcast::Receiver<TestReport> {
        self.reports.subscribe()
    }

    /// Makes the subscriber leader or not (a worker runs fake requests and publishes suite
    /// reports only when leader).
    pub fn set_leader(&self, leader: bool) {
        self.leader.send_replace(leader);
    }

    /// Feeds `report` to the subscriber's report stream as if another worker of its group had
    /// published it (it is not shown to [`reports`](Self::reports) watchers): for tests of the
    /// group's judgement.
    pub fn publish_peer_report(&self, report: TestReport) {
        self.publish_peer_report_at(report, chrono::Utc::now());
    }

    /// As [`publish_peer_report`](Self::publish_peer_report), published at `at`: a group's
    /// history, e.g. for the trend on the status page.
    pub fn publish_peer_report_at(&self, report: TestReport, at: chrono::DateTime<chrono::Utc>) {
        let report = PublishedReport::new(report, false, Some(at));
        let _ = self.feed.send(ReportEvent::Report(Box::new(report)));
    }
}

impl Publish for MemoryTransport {
    fn publish_test(&self, test: &TestExecution) -> Result<Queued, TransportError> {
        match self.tests.send(test.clone()) {
            Ok(()) => Ok(Queued::delivered()),
            Err(_) => {
                self.dropped.count(CLOSED, "tests", &TransportError::Closed);
                Err(TransportError::Closed)
            }
        }
    }

    fn publish_signal(
        &self,
        signal: &SignalEvent,
        _within: Option<&TestExecution>,
    ) -> Result<Queued, TransportError> {
        match self.signals.send(signal.clone()) {
            Ok(()) => Ok(Queued::delivered()),
            Err(_) => {
                self.dropped.count(CLOSED, "bus", &TransportError::Closed);
                Err(TransportError::Closed)
            }
        }
    }
}

impl Consume for MemoryTransport {
    fn subscribe(&self) -> TransportFuture<'_, Subscription> {
        let taken = lock(&self.receivers).take();
        let leader = self.leader.subscribe();
        Box::pin(async move {
            let Receivers {
                tests,
                signals,
                feed,
            } = taken.ok_or(TransportError::AlreadySubscribed)?;
            Ok(Subscription {
                tests: receiver_stream(tests).map(Delivery::new).boxed(),
                signals: receiver_stream(signals).map(Delivery::new).boxed(),
                leader,
                reports: receiver_stream(feed).boxed(),
            })
        })
    }

    fn publish_report<'a>(
        &'a self,
        report: &'a TestReport,
        _at: chrono::DateTime<chrono::Utc>,
    ) -> TransportFuture<'a, ()> {
        // Nobody watching is fine: reports are also seen by the worker's observers.
        let _ = self.reports.send(report.clone());
        let own = PublishedReport::new(report.clone(), true, Some(chrono::Utc::now()));
        let _ = self.feed.send(ReportEvent::Report(Box::new(own)));
        Box::pin(async { Ok(()) })
    }
}

impl Introspect for MemoryTransport {
    fn snapshot(&self) -> TransportSnapshot {
        TransportSnapshot {
            counters: TransportCounters {
                dropped: self.dropped.total(),
                ..TransportCounters::default()
            },
            ..TransportSnapshot::default()
        }
    }
}

fn receiver_stream<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
