//! The worker's own decisions: counters, a test's slot and acknowledgement, its age, how a
//! report is cut down, when memory is given back, which peers' reports are believed, and who
//! queues suite reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Semaphore};

use crate::service::case::{Case, CaseConfig};
use crate::transport::{Delivery, Lease, MemoryTransport, Ownership};
use crate::wire::model::{State, TestExecution, TestReport};

use super::group::dated_ahead;
use super::lifecycle::{handle_test, too_old};
use super::loops::MemoryPeak;
use super::publish::MIN_REPORT_LIMIT;
use super::publish::{first_cut, minimal_report, shorten, smaller_limit, FirstCut};
use super::shared::{Shared, SuiteMessage};
use super::stats::Counters;
use super::{Observer, Worker};
use crate::lock::lock;

#[livecheck::case(name = "worker.unit.passes")]
async fn unit_passes() -> crate::Result {
    Ok(())
}

#[livecheck::case(name = "worker.unit.fails")]
async fn unit_fails() -> crate::Result {
    crate::fail!("always")
}

/// What the observers saw: test starts and reports, by test id.
#[derive(Clone, Default)]
struct Seen {
    started: Arc<Mutex<Vec<String>>>,
    reports: Arc<Mutex<Vec<(String, State)>>>,
}

impl Observer for Seen {
    fn on_test_start(&self, test: &TestExecution) {
        self.started.lock().unwrap().push(test.id.clone());
    }
    fn on_report(&self, report: &TestReport) {
        let id = report
            .test
            .as_ref()
            .map_or("", |t| t.id.as_str())
            .to_owned();
        self.reports.lock().unwrap().push((id, report.state));
    }
}

fn shared_with(cases: impl IntoIterator<Item = CaseConfig>, seen: &Seen) -> Arc<Shared> {
    Worker::builder(MemoryTransport::new())
        .cases(cases)
        .observer(seen.clone())
        .build()
        .expect("worker")
        .shared
}

fn test_of(case: &str, id: &str, age: chrono::Duration) -> TestExecution {
    let timestamp = Utc::now() - age;
    TestExecution::new(id, case, timestamp, timestamp + chrono::Duration::hours(1))
}

fn report_of(test: TestExecution, state: State) -> TestReport {
    TestReport {
        case_name: test.case_name.clone(),
        state,
        test: Some(test),
        runtime: Some(0.1),
        signal_latency: Default::default(),
        error: None,
        traceback: None,
        attempt: 1,
        timed_out_signal: None,
        trace_id: None,
    }
}

/// A delivery of `test` under a lease of `ownership`, and whether it was acknowledged.
fn delivered(
    test: TestExecution,
    ownership: Ownership,
) -> (
    crate::transport::Ack,
    Arc<AtomicBool>,
    watch::Sender<Ownership>,
) {
    let acked = Arc::new(AtomicBool::new(false));
    let flag = acked.clone();
    let (owner, lease) = watch::channel(ownership);
    let (_, ack) = Delivery::with_ack(test, move || flag.store(true, Ordering::SeqCst))
        .with_lease(Lease(lease), || 1)
        .into_parts();
    (ack, acked, owner)
}

#[test]
fn counters_snapshot_shows_each_counter_in_its_own_field() {
    let counters = Counters::default();
    let all = [
        &counters.tests_received,
        &counters.signals_received,
        &counters.unknown_case_tests,
        &counters.unknown_case_signals,
        &counters.report_publish_errors,
        &counters.fake_request_errors,
        &counters.tests_moved,
        &counters.already_reported,
        &counters.duplicate_reports_dropped,
        &counters.peer_reports,
        &counters.peer_duplicates,
        &counters.future_reports,
        &counters.untrusted_tests,
        &counters.minimal_reports,
        &counters.reports_dropped,
    ];
    for (i, counter) in all.into_iter().enumerate() {
        counter.store(i as u64 + 1, Ordering::Relaxed);
    }
    counters.in_flight.store(100, Ordering::Relaxed);
    let stats = counters.snapshot();
    let shown = [
        stats.tests_received,
        stats.signals_received,
        stats.unknown_case_tests,
        stats.unknown_case_signals,
        stats.report_publish_errors,
        stats.fake_request_errors,
        stats.tests_moved,
        stats.already_reported,
        stats.duplicate_reports_dropped,
        stats.peer_reports,
        stats.peer_duplicates,
        stats.future_reports,
        stats.untrusted_tests,
        stats.minimal_reports,
        stats.reports_dropped,
    ];
    assert_eq!(shown, std::array::from_fn(|i| i as u64 + 1));
    assert_eq!(stats.in_flight, 100);
    // Filled in by the handle from the span export, not by the counters.
    assert_eq!((stats.spans_exported, stats.spans_dropped), (0, 0));
}

#[test]
fn a_test_is_too_old_only_past_max_test_age() {
    let ten_minutes = Some(Duration::from_secs(600));
    let hour_old = test_of("c", "old", chrono::Duration::hours(1));
    let fresh = test_of("c", "new", chrono::Duration::seconds(5));
    assert!(too_old(&hour_old, ten_minutes).is_some_and(|why| why.contains("max_test_age")));
    assert_eq!(too_old(&fresh, ten_minutes), None);
    // No age limit (the default): every test runs, however old.
    assert_eq!(too_old(&hour_old, None), None);
}

#[test]
fn shorten_keeps_short_text_and_tells_long_ones_apart() {
    let short = "a".repeat(128);
    assert_eq!(shorten(&short), short);
    let long = "a".repeat(129);
    let other = format!("{}b", "a".repeat(128));
    let (a, b) = (shorten(&long), shorten(&other));
    assert_ne!(a, b, "same prefix, different texts: different hashes");
    assert!(
        a.starts_with(&"a".repeat(64)) && a.contains("…sha256:"),
        "{a}"
    );
    // 64 bytes, the marker, 32 hex digits.
    assert_eq!(a.len(), 64 + "…sha256:".len() + 32);
    assert_eq!(shorten(&long), a, "stable");
}

#[test]
fn a_minimal_report_keeps_what_happened_and_drops_the_rest() {
    let mut test = test_of("c", &"x".repeat(600_000), chrono::Duration::zero());
    test.test_args = vec![serde_json::json!("a large argument")];
    let mut report = report_of(test.clone(), State::Fail);
    report.error = Some("e".repeat(100_000));
    report.attempt = 3;
    let minimal = minimal_report(&report);
    let kept = minimal.test.as_ref().unwrap();
    assert_eq!(minimal.state, State::Fail);
    assert_eq!(minimal.attempt, 3);
    assert_eq!(
        (kept.timestamp, kept.expires),
        (test.timestamp, test.expires)
    );
    assert!(kept.id.len() < 200 && kept.id.contains("…sha256:"));
    assert!(kept.test_args.is_empty());
    assert!(minimal.error.unwrap().contains("minimal report"));
    assert!(crate::wire::codec::encode_report(&minimal_report(&report)).len() < MIN_REPORT_LIMIT);
}

#[test]
fn a_report_first_goes_whole_truncated_or_minimal() {
    let limit = 500_000;
    let plain = report_of(test_of("c", "t", chrono::Duration::zero()), State::Pass);
    assert_eq!(first_cut(&plain, limit), FirstCut::Whole);
    let mut wordy = plain.clone();
    wordy.traceback = Some("t".repeat(limit / 2 + 1));
    assert_eq!(first_cut(&wordy, limit), FirstCut::Truncated);
    wordy.traceback = Some("t".repeat(limit / 2));
    assert_eq!(first_cut(&wordy, limit), FirstCut::Whole, "at half: whole");
    // An id no cut can shrink: minimal at once, even with short texts.
    let huge = report_of(
        test_of("c", &"x".repeat(MIN_REPORT_LIMIT), chrono::Duration::zero()),
        State::Pass,
    );
    assert_eq!(first_cut(&huge, limit), FirstCut::Minimal);
}

#[test]
fn a_refused_report_is_cut_to_half_its_size_down_to_the_floor() {
    assert_eq!(smaller_limit(500_000, 600_000), 300_000);
    assert_eq!(
        smaller_limit(100_000, 600_000),
        100_000,
        "never above the limit"
    );
    assert_eq!(smaller_limit(20_000, 10_000), MIN_REPORT_LIMIT);
}

#[test]
fn memory_is_given_back_once_a_quarter_of_a_big_peak_is_left() {
    let mut peak = MemoryPeak::default();
    // A small peak: never.
    assert!(!peak.release_due(9_999, true));
    assert!(!peak.release_due(0, true));
    // A burst of 20,000, then down to 6,000 (more than a quarter), then 5,000.
    assert!(!peak.release_due(20_000, true));
    assert!(!peak.release_due(6_000, true));
    assert!(peak.release_due(5_000, true));
    // The peak started over from 5,000: not again until a new big peak.
    assert!(!peak.release_due(1_000, true));
    // Switched off: never, whatever the burst.
    let mut off = MemoryPeak::default();
    assert!(!off.release_due(100_000, false));
    assert!(!off.release_due(0, false));
}

#[test]
fn a_peer_report_dated_beyond_the_skew_is_ahead() {
    let now: DateTime<Utc> = Utc::now();
    let skew = Duration::from_secs(120);
    let minute = chrono::Duration::minutes(1);
    assert!(!dated_ahead(now, skew, now, Some(now)));
    assert!(!dated_ahead(now, skew, now + minute, Some(now + minute)));
    // By its publication, or by its test's timestamp.
    assert!(dated_ahead(now, skew, now + minute * 3, Some(now)));
    assert!(dated_ahead(now, skew, now, Some(now + minute * 3)));
    // A suite report has no test: its publication alone counts.
    assert!(!dated_ahead(now, skew, now - minute, None));
    assert!(dated_ahead(now, skew, now + minute * 3, None));
    // A skew too large for the calendar trusts every date.
    assert!(!dated_ahead(
        now,
        Duration::MAX,
        now + minute * 3,
        Some(now + minute * 3)
    ));
}

#[tokio::test]
async fn a_test_that_ends_frees_its_slot_and_is_reported_and_acknowledged() {
    let seen = Seen::default();
    let shared = shared_with([CaseConfig::from(unit_fails.descriptor())], &seen);
    let case = shared.cases["worker.unit.fails"];
    let slots = Arc::new(Semaphore::new(1));
    let permit = slots.clone().try_acquire_owned().unwrap();
    let test = test_of(case.name(), "t1", chrono::Duration::zero());
    let (ack, acked, _owner) = delivered(test.clone(), Ownership::Owned);
    let run = handle_test(shared.clone(), case, test, ack, permit);
    // Counted as running from the moment it is taken.
    assert_eq!(shared.stats.in_flight.load(Ordering::Relaxed), 1);
    assert_eq!(*seen.started.lock().unwrap(), ["t1"]);
    assert_eq!(slots.available_permits(), 0);
    run.await;
    assert_eq!(slots.available_permits(), 1, "its slot is free");
    assert_eq!(shared.stats.in_flight.load(Ordering::Relaxed), 0);
    assert!(acked.load(Ordering::SeqCst));
    assert_eq!(
        *seen.reports.lock().unwrap(),
        [("t1".to_owned(), State::Fail)]
    );
    assert!(lock(&shared.reported).contains(case.name(), "t1"));
    let status = lock(&shared.health[case.name()]).status();
    assert_eq!(status.consecutive_failures, 1);
}

#[tokio::test]
async fn a_test_whose_partition_moved_is_neither_run_nor_counted() {
    let seen = Seen::default();
    let shared = shared_with([CaseConfig::from(unit_passes.descriptor())], &seen);
    let case = shared.cases["worker.unit.passes"];
    let slots = Arc::new(Semaphore::new(1));
    let permit = slots.clone().try_acquire_owned().unwrap();
    let test = test_of(case.name(), "gone", chrono::Duration::zero());
    let (ack, acked, _owner) = delivered(test.clone(), Ownership::Lost);
    let run = handle_test(shared.clone(), case, test, ack, permit);
    assert_eq!(shared.stats.in_flight.load(Ordering::Relaxed), 0);
    run.await;
    assert_eq!(slots.available_permits(), 1, "its slot is free");
    assert!(seen.started.lock().unwrap().is_empty());
    assert!(seen.reports.lock().unwrap().is_empty());
    assert!(
        !acked.load(Ordering::SeqCst),
        "its offset is no longer ours"
    );
}

#[tokio::test]
async fn a_test_another_worker_reported_meanwhile_is_dropped_and_acknowledged() {
    let seen = Seen::default();
    let shared = shared_with([CaseConfig::from(unit_passes.descriptor())], &seen);
    let case = shared.cases["worker.unit.passes"];
    let test = test_of(case.name(), "both", chrono::Duration::zero());
    let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
    let (ack, acked, _owner) = delivered(test.clone(), Ownership::Owned);
    let run = handle_test(shared.clone(), case, test.clone(), ack, permit);
    // The peer's report arrives while the test runs.
    assert!(lock(&shared.reported).insert(case.name(), &test.id, test.expires));
    run.await;
    assert_eq!(
        shared
            .stats
            .duplicate_reports_dropped
            .load(Ordering::Relaxed),
        1
    );
    assert!(seen.reports.lock().unwrap().is_empty(), "not published");
    assert!(acked.load(Ordering::SeqCst));
    assert_eq!(shared.stats.in_flight.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn only_the_leader_queues_suite_reports() {
    let mut config = CaseConfig::from(unit_fails.descriptor());
    config.options.max_consecutive_failures = 1;
    let shared = shared_with([config], &Seen::default());
    let mut queue = lock(&shared.suites_rx).take().unwrap();
    let (leader, is_leader) = watch::channel(false);
    *lock(&shared.leader) = Some(is_leader);
    let fail = |id: &str| {
        report_of(
            test_of(config.name(), id, chrono::Duration::zero()),
            State::Fail,
        )
    };
    for id in ["f1", "f2"] {
        shared.judge(config.name(), |h| h.on_report(&fail(id), Utc::now()));
    }
    assert!(queue.try_recv().is_err(), "a follower queues nothing");
    leader.send_replace(true);
    shared.judge(config.name(), |h| h.on_report(&fail("f3"), Utc::now()));
    match queue.try_recv() {
        Ok(SuiteMessage::Report(report)) => {
            assert!(report.is_suite());
            assert_eq!(report.state, State::Fail);
        }
        _ => panic!("the leader queued the suite FAIL"),
    }
    assert!(queue.try_recv().is_err(), "once");
}
