//! The view of a case the status page and the API read: its newest tests, the trend per
//! minute, the timeouts per signal, since when it shows what it shows; and the [`CaseStatus`]
//! snapshot made from it, the verdict and the statistics.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::stats::{median, quantile, Stats};
use super::status::{rfc3339, CaseStatus, RecentTest, SignalHealth, TestDetail, TrendMinute};
use super::verdict::Verdict;
use crate::wire::model::{State, TestReport};

/// How many of a case's newest test reports are kept for the status page (`recent_tests`; its
/// doc, [`CaseStatus::recent_tests`], says 20).
pub(crate) const RECENT_TESTS: usize = 20;

/// A kept report is cut to this many bytes of JSON (its traceback and error text first), so
/// the [`RECENT_TESTS`] reports of a case stay small whatever the tests write.
pub(super) const RECENT_REPORT_BYTES: usize = 16 * 1024;

/// Error text in a `recent_tests` entry is cut to this many characters (the whole text is in
/// the test's own view).
pub(super) const RECENT_ERROR_CHARS: usize = 300;

/// Runtimes kept per minute for the trend's percentiles: beyond this many tests in one minute,
/// a uniform sample of them (reservoir sampling).
pub(super) const MINUTE_SAMPLES: usize = 256;

/// Minutes of trend kept.
const TREND_MINUTES: i64 = 60;

#[derive(Debug, Clone)]
struct Recent {
    report: TestReport,
    at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub(super) struct Minute {
    pub(super) tests: u64,
    failures: u64,
    pub(super) runtimes: Vec<f64>,
    /// Runtimes offered (the sample holds [`MINUTE_SAMPLES`] of them at most).
    offered: u64,
}

impl Minute {
    fn add(&mut self, runtime: f64) {
        self.offered += 1;
        if self.runtimes.len() < MINUTE_SAMPLES {
            self.runtimes.push(runtime);
        } else {
            let slot = rand::random_range(0..self.offered);
            if let Some(kept) = usize::try_from(slot)
                .ok()
                .and_then(|slot| self.runtimes.get_mut(slot))
            {
                *kept = runtime;
            }
        }
    }
}

#[derive(Debug, Default)]
struct SignalTimeouts {
    count: u64,
    last_at: Option<DateTime<Utc>>,
}

/// What is shown of one case besides its verdict and statistics.
#[derive(Debug)]
pub(super) struct View {
    /// The state shown ([`Verdict::state`]) when it last changed, and since when.
    shown: State,
    shown_since: DateTime<Utc>,
    /// Since when a suite FAIL or STALL is in effect.
    suite_failed_since: Option<DateTime<Utc>>,
    last_pass_at: Option<DateTime<Utc>>,
    last_failure_at: Option<DateTime<Utc>>,
    /// The newest [`RECENT_TESTS`] test reports, oldest first.
    recent: VecDeque<Recent>,
    /// Tests, failures and runtimes per wall-clock minute (Unix minutes), the last hour.
    pub(super) minutes: BTreeMap<i64, Minute>,
    /// TIMEOUTs per signal waited for in vain.
    timeouts: BTreeMap<String, SignalTimeouts>,
}

impl View {
    /// Nothing shown yet: INIT since `wall`.
    pub(super) fn new(wall: DateTime<Utc>) -> Self {
        View {
            shown: State::Init,
            shown_since: wall,
            suite_failed_since: None,
            last_pass_at: None,
            last_failure_at: None,
            recent: VecDeque::new(),
            minutes: BTreeMap::new(),
            timeouts: BTreeMap::new(),
        }
    }

    /// Notes a change of the state shown, or of the suite judgement, that happened at `at`.
    pub(super) fn settle(&mut self, state: State, suite_failed: bool, at: DateTime<Utc>) {
        if state != self.shown {
            self.shown = state;
            self.shown_since = at;
        }
        match (suite_failed, self.suite_failed_since) {
            (true, None) => self.suite_failed_since = Some(at),
            (false, Some(_)) => self.suite_failed_since = None,
            _ => {}
        }
    }

    /// Keeps `report` for the page: among the newest, in its minute, its timeout.
    pub(super) fn book(&mut self, report: &TestReport, at: DateTime<Utc>) {
        let mut kept = report.clone();
        kept.truncate_to(RECENT_REPORT_BYTES, |r| {
            serde_json::to_vec(r).map_or(0, |bytes| bytes.len())
        });
        if self.recent.len() >= RECENT_TESTS {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent { report: kept, at });
        let failed = report.state.is_failure();
        if failed {
            self.last_failure_at = Some(self.last_failure_at.map_or(at, |t| t.max(at)));
        } else if report.state == State::Pass {
            self.last_pass_at = Some(self.last_pass_at.map_or(at, |t| t.max(at)));
        }
        if let (State::Timeout, Some(signal)) = (report.state, &report.timed_out_signal) {
            let book = self.timeouts.entry(signal.clone()).or_default();
            book.count += 1;
            book.last_at = Some(book.last_at.map_or(at, |t| t.max(at)));
        }
        let minute = at.timestamp().div_euclid(60);
        let bucket = self.minutes.entry(minute).or_default();
        bucket.tests += 1;
        bucket.failures += u64::from(failed);
        if let Some(runtime) = report.runtime {
            bucket.add(runtime);
        }
        // Minutes out of the trend go; kept ones stay in place (a `split_off` per report built
        // a new map every time).
        let newest = self.minutes.keys().next_back().copied().unwrap_or(minute);
        while self
            .minutes
            .first_key_value()
            .is_some_and(|(&first, _)| first <= newest - TREND_MINUTES)
        {
            self.minutes.pop_first();
        }
    }

    /// The full view of one of the newest tests, by id (the newest report of it).
    pub(super) fn test_detail(&self, case: &str, id: &str) -> Option<TestDetail> {
        let recent = self
            .recent
            .iter()
            .rev()
            .find(|r| r.report.test.as_ref().is_some_and(|t| t.id == id))?;
        let report = &recent.report;
        let mut log = format!(
            "{} {} case={} test={} attempt={}",
            rfc3339(&recent.at),
            report.state,
            report.case_name,
            id,
            report.attempt
        );
        if let Some(runtime) = report.runtime {
            log.push_str(&format!(" runtime={runtime:.3}s"));
        }
        if let Some(signal) = &report.timed_out_signal {
            log.push_str(&format!(" timed_out_signal={signal}"));
        }
        if let Some(trace_id) = &report.trace_id {
            log.push_str(&format!(" trace_id={trace_id}"));
        }
        if let Some(error) = &report.error {
            log.push_str(&format!("\nerror: {error}"));
        }
        if let Some(traceback) = &report.traceback {
            log.push_str(&format!("\ntraceback:\n{traceback}"));
        }
        Some(TestDetail {
            case: case.to_owned(),
            id: id.to_owned(),
            outcome: report.state,
            reported_at: recent.at,
            runtime_seconds: report.runtime,
            log,
            report: report.clone(),
        })
    }

    /// A snapshot of case `name`, with its verdict and statistics, the wall clock reading
    /// `wall` (for the trend's last hour and the time in the current state).
    pub(super) fn status(
        &self,
        name: &str,
        verdict: &Verdict,
        stats: &Stats,
        wall: DateTime<Utc>,
    ) -> CaseStatus {
        let now = Instant::now();
        let silent = now - verdict.last_test_seen;
        let state = verdict.state();
        let stalled = state == State::Stall;
        CaseStatus {
            name: name.to_owned(),
            state,
            state_since_at: self.shown_since,
            state_for_seconds: (wall - self.shown_since)
                .to_std()
                .map_or(0.0, |d| d.as_secs_f64()),
            last_outcome: stats.last_outcome,
            last_pass_at: self.last_pass_at,
            last_failure_at: self.last_failure_at,
            consecutive_failures: verdict.consecutive_failures,
            total_failures: stats.total_failures,
            total_by_state: stats
                .total_by_state
                .iter()
                .map(|(s, n)| (s.as_str().to_owned(), *n))
                .collect(),
            suite_failed: verdict.suite_failed(),
            suite_failed_since_at: self.suite_failed_since,
            runtime_median_seconds: median(&stats.runtime_history),
            runtime_p99_seconds: quantile(&stats.runtime_history, 0.99),
            latency_median_seconds: median(&stats.latency_history),
            frequency_median_seconds: median(&stats.frequency_history),
            signal_latency_median_seconds: stats
                .signal_history
                .iter()
                .filter_map(|(s, h)| Some((s.clone(), median(h)?)))
                .collect(),
            signals: self.signals(stats),
            tests_last_hour: stats.tests_last_hour(now),
            last_error: verdict.last_error.clone(),
            seconds_since_last_test: silent.as_secs_f64(),
            stalled_for_seconds: stalled
                .then(|| silent.saturating_sub(verdict.options.warn_stalled_after))
                .map(|d: Duration| d.as_secs_f64()),
            recent_tests: self.recent_tests(),
            trend: self.trend(wall),
        }
    }

    /// Every signal seen: its latency (from the statistics), its timeouts, whether it is missing.
    fn signals(&self, stats: &Stats) -> BTreeMap<String, SignalHealth> {
        let mut signals: BTreeMap<String, SignalHealth> = BTreeMap::new();
        for (name, history) in &stats.signal_history {
            signals.insert(
                name.clone(),
                SignalHealth {
                    latency_median_seconds: median(history),
                    timeouts: 0,
                    last_timeout_at: None,
                    missing: false,
                },
            );
        }
        for (name, book) in &self.timeouts {
            let signal = signals.entry(name.clone()).or_insert(SignalHealth {
                latency_median_seconds: None,
                timeouts: 0,
                last_timeout_at: None,
                missing: false,
            });
            signal.timeouts = book.count;
            signal.last_timeout_at = book.last_at;
            signal.missing = match (book.last_at, self.last_pass_at) {
                (Some(timeout), Some(pass)) => timeout > pass,
                (Some(_), None) => true,
                (None, _) => false,
            };
        }
        signals
    }

    /// The minutes with tests of the hour up to `wall`, oldest first.
    fn trend(&self, wall: DateTime<Utc>) -> Vec<TrendMinute> {
        let wall_minute = wall.timestamp().div_euclid(60);
        self.minutes
            .range(wall_minute - TREND_MINUTES + 1..)
            .map(|(m, bucket)| {
                let runtimes = VecDeque::from(bucket.runtimes.clone());
                TrendMinute {
                    minute_at: DateTime::from_timestamp(m * 60, 0).unwrap_or_default(),
                    tests: bucket.tests,
                    failures: bucket.failures,
                    runtime_p50_seconds: quantile(&runtimes, 0.5),
                    runtime_p99_seconds: quantile(&runtimes, 0.99),
                }
            })
            .collect()
    }

    /// The newest tests, newest first, their error text cut.
    fn recent_tests(&self) -> Vec<RecentTest> {
        self.recent
            .iter()
            .rev()
            .map(|r| RecentTest {
                id: r
                    .report
                    .test
                    .as_ref()
                    .map(|t| t.id.clone())
                    .unwrap_or_default(),
                outcome: r.report.state,
                reported_at: r.at,
                issued_at: r.report.test.as_ref().map(|t| t.timestamp),
                runtime_seconds: r.report.runtime,
                error: r.report.error.as_deref().map(|e| {
                    if e.chars().count() > RECENT_ERROR_CHARS {
                        let cut: String = e.chars().take(RECENT_ERROR_CHARS).collect();
                        format!("{cut}…")
                    } else {
                        e.to_owned()
                    }
                }),
                timed_out_signal: r.report.timed_out_signal.clone(),
                attempt: r.report.attempt,
                trace_id: r.report.trace_id.clone(),
            })
            .collect()
    }
}
