//! The figures of a case's tests: counts by outcome, and the histories Faust keeps (runtimes,
//! signal latencies, the interval between tests) with their medians and quantiles.
//!
//! Durations are on tokio's clock ([`Instant`]), as the stall clock is: on tokio's paused clock
//! (a `TestKit`) tests 20 s apart are 20 s apart here too. The wall clock is for the times shown.

use std::collections::{BTreeMap, VecDeque};

use tokio::time::Instant;

use crate::wire::model::{State, TestReport};

/// The statistics of one case.
#[derive(Debug)]
pub(super) struct Stats {
    /// How many values each history keeps (the case's `max_history`).
    max_history: usize,
    pub(super) total_failures: u64,
    pub(super) total_by_state: BTreeMap<State, u64>,
    pub(super) last_outcome: Option<State>,
    /// When the newest report seen was published, on tokio's clock: for the interval between
    /// tests.
    last_report_at: Option<Instant>,
    pub(super) runtime_history: VecDeque<f64>,
    pub(super) latency_history: VecDeque<f64>,
    pub(super) frequency_history: VecDeque<f64>,
    pub(super) signal_history: BTreeMap<String, VecDeque<f64>>,
    /// Tests per minute since `started` (minute, count), the last hour.
    tests_per_minute: VecDeque<(u64, u64)>,
    started: Instant,
}

impl Stats {
    /// No test yet; the clock of `tests_per_minute` starts at `started`.
    pub(super) fn new(max_history: usize, started: Instant) -> Self {
        Stats {
            max_history,
            total_failures: 0,
            total_by_state: BTreeMap::new(),
            last_outcome: None,
            last_report_at: None,
            runtime_history: VecDeque::new(),
            latency_history: VecDeque::new(),
            frequency_history: VecDeque::new(),
            signal_history: BTreeMap::new(),
            tests_per_minute: VecDeque::new(),
            started,
        }
    }

    /// Counts a test report that arrived `now`, published at `published` (tokio's clock; `None`
    /// if that is too long ago to tell, which makes no interval).
    pub(super) fn record(&mut self, report: &TestReport, published: Option<Instant>, now: Instant) {
        *self.total_by_state.entry(report.state).or_default() += 1;
        self.last_outcome = Some(report.state);
        if let (Some(last), Some(published)) = (self.last_report_at, published) {
            // Reports of several partitions interleave: an earlier one read later is no interval.
            if let Some(interval) = published.checked_duration_since(last) {
                push(
                    &mut self.frequency_history,
                    interval.as_secs_f64(),
                    self.max_history,
                );
            }
        }
        if let Some(published) = published {
            self.last_report_at = Some(self.last_report_at.map_or(published, |l| l.max(published)));
        }
        let minute = (now - self.started).as_secs() / 60;
        match self.tests_per_minute.back_mut() {
            Some((m, count)) if *m == minute => *count += 1,
            _ => self.tests_per_minute.push_back((minute, 1)),
        }
        while self
            .tests_per_minute
            .front()
            .is_some_and(|(m, _)| *m + 60 <= minute)
        {
            self.tests_per_minute.pop_front();
        }
        for (signal, latency) in &report.signal_latency {
            push(&mut self.latency_history, *latency, self.max_history);
            let history = self.signal_history.entry(signal.clone()).or_default();
            push(history, *latency, self.max_history);
        }
        match report.state {
            state if state.is_failure() => self.total_failures += 1,
            State::Pass => {
                // Faust's on_test_pass: the runtime history holds passing tests only.
                if let Some(runtime) = report.runtime {
                    push(&mut self.runtime_history, runtime, self.max_history);
                }
            }
            _ => {}
        }
    }

    /// Tests reported in the hour up to `now`.
    pub(super) fn tests_last_hour(&self, now: Instant) -> u64 {
        let minute = (now - self.started).as_secs() / 60;
        self.tests_per_minute
            .iter()
            .filter(|(m, _)| m + 60 > minute)
            .map(|(_, n)| n)
            .sum()
    }
}

fn push(history: &mut VecDeque<f64>, value: f64, max: usize) {
    if max == 0 {
        return;
    }
    while history.len() >= max {
        history.pop_front();
    }
    history.push_back(value);
}

/// The median as Python's `statistics.median` computes it (Faust's `_sample`): the middle value,
/// or the mean of the two middle values of an even count; `None` if there are none.
pub(crate) fn median(values: &VecDeque<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

/// The `q` quantile (nearest rank) of the values, `None` if there are none.
pub(crate) fn quantile(values: &VecDeque<f64>, q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}
