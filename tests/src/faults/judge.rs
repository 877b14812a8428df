//! Judging what the readers saw: each test triggered, reported or lost, each report a true
//! verdict or a false failure, each duplicate explained by a fault or not.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use livecheck::State;

use super::readers::{Observed, SeenReport};

/// Slack on Kafka timestamps (ms) when deciding whether a test was in flight at a fault.
const SLACK_MS: i64 = 250;
/// A TIMEOUT is true when its signal reached the bus less than this (ms) before the verdict.
const LATE_MARGIN_MS: i64 = 1000;

/// What a scenario measured, and what it says of the guarantees ([`Outcome::violations`]).
#[derive(Debug, Default)]
pub struct Outcome {
    /// The scenario, as the tables name it.
    pub title: String,
    /// How long the scenario ran.
    pub took: Duration,
    /// Tests triggered by the cutoff.
    pub triggered: usize,
    /// Of those, tests with a report.
    pub reported: usize,
    /// Tests triggered by the cutoff and never reported.
    pub lost: Vec<Lost>,
    /// Non-PASS reports that are not true verdicts, described.
    pub false_failures: Vec<String>,
    /// TIMEOUTs whose awaited signal really came late (or never).
    pub true_timeouts: usize,
    /// Tests reported more than once.
    pub twice: usize,
    /// Of those, tests not in flight at a fault, described.
    pub twice_unexplained: Vec<String>,
    /// Reports of a re-run (attempt above 1).
    pub attempt_above_one: usize,
    /// Suite reports seen: "STATE case (error)".
    pub suite_reports: Vec<String>,
    /// Partitions of the tests topic no live worker owned at the end.
    pub orphaned_at_end: Vec<i32>,
    /// How many "orphaned partitions" alarms the workers logged.
    pub detection_lines: usize,
    /// The partitions those alarms named.
    pub detected: BTreeSet<i32>,
    /// The first alarm naming each partition (ms since the epoch).
    pub detected_at: std::collections::BTreeMap<i32, i64>,
    /// Per orphaned partition with tests lost: from when the alarm was due (the first test lost
    /// on it, or the end of the fault it was in flight at), ms since the epoch.
    pub alarm_due_from: std::collections::BTreeMap<i32, i64>,
    /// The largest `livecheck_orphaned_partitions` a live worker exported at the end.
    pub detection_metric: Option<f64>,
    /// The faults injected, described.
    pub faults: Vec<String>,
    /// Anything else worth printing.
    pub notes: Vec<String>,
}

/// A test triggered and never reported.
#[derive(Debug)]
pub struct Lost {
    /// Its id.
    pub id: String,
    /// Its partition of the tests topic.
    pub partition: i32,
    /// Whether no live worker owned that partition at the end.
    pub orphaned: bool,
}

/// How soon after a partition is left to no live worker (its first test lost) the alarm must
/// name it (the watch needs 30 s of no progress, and looks every 10 s).
const ALARM_WITHIN_MS: i64 = 60_000;

impl Outcome {
    /// Each guarantee broken, described (none: the scenario kept them all).
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let title = &self.title;
        if !self.false_failures.is_empty() {
            v.push(format!(
                "{title}: {} false failures, e.g. {}",
                self.false_failures.len(),
                examples(&self.false_failures)
            ));
        }
        let owned: Vec<_> = self.lost.iter().filter(|l| !l.orphaned).collect();
        if !owned.is_empty() {
            v.push(format!(
                "{title}: {} tests lost on partitions a live worker owns, e.g. {}",
                owned.len(),
                owned
                    .iter()
                    .take(3)
                    .map(|l| format!("{} (partition {})", l.id, l.partition))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let undetected: BTreeSet<i32> = self
            .lost
            .iter()
            .filter(|l| l.orphaned && !self.detected.contains(&l.partition))
            .map(|l| l.partition)
            .collect();
        if !undetected.is_empty() {
            v.push(format!(
                "{title}: tests lost on partitions no live worker owns ({undetected:?}), and no \
                 worker said \"orphaned partitions\" about them (it did about {:?})",
                self.detected
            ));
        }
        let late: Vec<String> = self
            .alarm_due_from
            .iter()
            .filter_map(|(partition, due)| {
                let at = self.detected_at.get(partition)?;
                (at - due > ALARM_WITHIN_MS).then(|| {
                    format!(
                        "partition {partition} named {:.0} s late",
                        (at - due) as f64 / 1000.0
                    )
                })
            })
            .collect();
        if !late.is_empty() {
            v.push(format!(
                "{title}: the alarm named partitions left to no live worker more than {} s after \
                 their first test was lost: {}",
                ALARM_WITHIN_MS / 1000,
                late.join(", ")
            ));
        }
        if !self.twice_unexplained.is_empty() {
            v.push(format!(
                "{title}: {} tests reported more than once that were not in flight at a fault, \
                 e.g. {}",
                self.twice_unexplained.len(),
                examples(&self.twice_unexplained)
            ));
        }
        v
    }

    /// Each partition the alarm named, with how long after its alarm was due (`-` where no
    /// test was lost on it).
    fn alarm_delays(&self) -> Vec<String> {
        self.detected_at
            .iter()
            .map(|(partition, at)| match self.alarm_due_from.get(partition) {
                Some(due) => format!("{partition} after {:.0} s", (at - due) as f64 / 1000.0),
                None => format!("{partition}"),
            })
            .collect()
    }

    /// Every count and note, for the test's output.
    pub fn details(&self) -> String {
        let mut out = format!(
            "--- {} ({:.0} s): triggered {}, reported {}, lost {}, false failures {}, true \
             timeouts {}, reported twice {} ({} not in flight at a fault), attempt > 1: {}\n",
            self.title,
            self.took.as_secs_f64(),
            self.triggered,
            self.reported,
            self.lost.len(),
            self.false_failures.len(),
            self.true_timeouts,
            self.twice,
            self.twice_unexplained.len(),
            self.attempt_above_one
        );
        out.push_str(&format!("    faults: {}\n", self.faults.join(", ")));
        out.push_str(&format!(
            "    partitions no live worker owned at the end: {:?}; \"orphaned partitions\" \
             alarms: {} (about {:?}); livecheck_orphaned_partitions: {}\n",
            self.orphaned_at_end,
            self.detection_lines,
            self.alarm_delays(),
            self.detection_metric
                .map_or("not exported".to_owned(), |m| m.to_string())
        ));
        if !self.lost.is_empty() {
            let mut by_partition: HashMap<i32, usize> = HashMap::new();
            for l in &self.lost {
                *by_partition.entry(l.partition).or_default() += 1;
            }
            let mut by_partition: Vec<_> = by_partition.into_iter().collect();
            by_partition.sort_unstable();
            out.push_str(&format!("    lost by partition: {by_partition:?}\n"));
        }
        for (label, list) in [
            ("false failures", &self.false_failures),
            (
                "reported twice, not in flight at a fault",
                &self.twice_unexplained,
            ),
            ("suite reports", &self.suite_reports),
        ] {
            if !list.is_empty() {
                out.push_str(&format!("    {label}: {}\n", examples(list)));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("    {note}\n"));
        }
        out
    }
}

fn examples(list: &[String]) -> String {
    let mut shown: Vec<&str> = list.iter().take(3).map(String::as_str).collect();
    if list.len() > 3 {
        shown.push("...");
    }
    shown.join("; ")
}

/// A moment or a span (ms) when a fault hit: a kill, or the broker's outage.
#[derive(Debug, Clone, Copy)]
pub struct FaultWindow {
    /// When it began (ms since the epoch).
    pub from: i64,
    /// When it ended (ms since the epoch; `from` for a kill).
    pub to: i64,
}

/// The signal a TIMEOUT's error names: "signal NAME did not arrive within ...".
pub(super) fn awaited_signal(error: &str) -> Option<&str> {
    error
        .split("signal ")
        .nth(1)?
        .split(" did not arrive")
        .next()
}

/// Counts what the readers saw of the tests triggered by `cutoff`; `origin` (ms) is the start of
/// the scenario, for the times shown.
///
/// A non-PASS report is a false failure, except a TIMEOUT whose awaited signal reached the bus
/// less than `LATE_MARGIN_MS` (1 s) before the verdict, or after it, or never: the services really
/// were that slow (e.g. while the broker was down), and the verdict is true.
pub fn judge(
    observed: &Observed,
    cutoff: i64,
    windows: &[FaultWindow],
    orphaned: &BTreeSet<i32>,
    origin: i64,
) -> Outcome {
    let mut outcome = Outcome::default();
    let in_flight = |triggered: i64, first_report: Option<i64>| {
        windows.iter().any(|w| {
            triggered <= w.to + SLACK_MS && first_report.is_none_or(|r| r >= w.from - SLACK_MS)
        })
    };
    let known_signals: std::collections::HashSet<&str> = observed
        .signals
        .keys()
        .map(|(_, name)| name.as_str())
        .collect();
    let late = |id: &str, report: &SeenReport| {
        let Some(name) = report.error.as_deref().and_then(awaited_signal) else {
            return false;
        };
        // A name never seen on the bus proves nothing either way: not counted as true.
        known_signals.contains(name)
            && observed
                .signals
                .get(&(id.to_owned(), name.to_owned()))
                .is_none_or(|&at| at + LATE_MARGIN_MS > report.at)
    };
    let rel = |ms: i64| format!("+{:.1}s", (ms - origin) as f64 / 1000.0);
    let mut ids: Vec<_> = observed
        .tests
        .iter()
        .filter(|(_, (_, at, _))| *at <= cutoff)
        .collect();
    ids.sort_by_key(|(id, (_, at, _))| (*at, id.as_str()));
    for (id, &(partition, triggered, copies)) in ids {
        outcome.triggered += 1;
        let Some(reports) = observed.reports.get(id) else {
            let orphaned = orphaned.contains(&partition);
            if orphaned {
                // Due from the test's arrival; a test in flight at a fault, from the fault's end.
                let due = windows
                    .iter()
                    .filter(|w| triggered <= w.to + SLACK_MS && triggered + 10_000 >= w.from)
                    .map(|w| w.to)
                    .max()
                    .unwrap_or(triggered)
                    .max(triggered);
                outcome
                    .alarm_due_from
                    .entry(partition)
                    .and_modify(|d| *d = (*d).min(due))
                    .or_insert(due);
            }
            outcome.lost.push(Lost {
                id: id.clone(),
                partition,
                orphaned,
            });
            continue;
        };
        outcome.reported += 1;
        let first = reports.iter().map(|r| r.at).min();
        for report in reports {
            if report.attempt.is_some_and(|a| a > 1) {
                outcome.attempt_above_one += 1;
            }
            if report.state == State::Pass {
                continue;
            }
            if report.state == State::Timeout && late(id, report) {
                outcome.true_timeouts += 1;
                continue;
            }
            let signal_at = report
                .error
                .as_deref()
                .and_then(awaited_signal)
                .and_then(|name| observed.signals.get(&(id.clone(), name.to_owned())))
                .map_or(String::new(), |&at| {
                    format!(", the signal was on the bus at {}", rel(at))
                });
            outcome.false_failures.push(format!(
                "{} {id} (partition {partition}, triggered at {}, reported at {}{signal_at}): {}",
                report.state.as_str(),
                rel(triggered),
                rel(report.at),
                report.error.as_deref().unwrap_or("")
            ));
        }
        if reports.len() > 1 {
            outcome.twice += 1;
            if reports.len() > copies && !in_flight(triggered, first) {
                let seen: Vec<_> = reports
                    .iter()
                    .map(|r| format!("{} at {}", r.state.as_str(), rel(r.at)))
                    .collect();
                outcome.twice_unexplained.push(format!(
                    "{id} (partition {partition}, triggered at {}; {})",
                    rel(triggered),
                    seen.join(", ")
                ));
            }
        }
    }
    outcome.suite_reports = observed.suite.clone();
    outcome.notes.push(format!(
        "read back: {} messages of the tests topic, {} of the report topic, {} of the bus; {} \
         consumer errors{}",
        observed.read[0],
        observed.read[1],
        observed.read[2],
        observed.errors.len(),
        observed
            .errors
            .first()
            .map_or(String::new(), |e| format!(", first: {e}"))
    ));
    outcome.orphaned_at_end = orphaned.iter().copied().collect();
    outcome
}
