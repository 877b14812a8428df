//! The suite verdict: the state machine that judges a case from its tests (failures in a row, a
//! service down, a stall), and says which suite report is due (see the module docs of
//! [`health`](super) for what is judged, against Faust).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::service::case::CaseOptions;
use crate::wire::duration::humanize;
use crate::wire::model::{State, TestReport};

/// What a case is judged to be as a whole: the state of its last suite report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    /// Healthy (no suite report yet, or the last one was a recovery).
    Ok,
    /// Failing: too many failures in a row, or its service is down.
    Fail,
    /// No test for `warn_stalled_after`.
    Stall,
}

impl Suite {
    fn state(self) -> State {
        match self {
            Suite::Ok => State::Pass,
            Suite::Fail => State::Fail,
            Suite::Stall => State::Stall,
        }
    }

    fn of(state: State) -> Option<Suite> {
        match state {
            State::Pass => Some(Suite::Ok),
            State::Fail | State::Error | State::Timeout => Some(Suite::Fail),
            State::Stall => Some(Suite::Stall),
            _ => None,
        }
    }
}

/// The judgement of one case, and what of it was published.
#[derive(Debug)]
pub(super) struct Verdict {
    name: &'static str,
    pub(super) options: CaseOptions,
    /// The last test outcome that counts (a failure, or a pass issued after the last failure).
    status: State,
    pub(super) consecutive_failures: u32,
    /// Conditions of a suite failure; each ends only on evidence.
    service_down: Option<String>,
    stalled: bool,
    /// Whether a test was reported since the case stalled (it is then shown by its outcome).
    tested_since_stall: bool,
    /// A suite FAIL read from the leader whose cause this worker has not seen itself.
    peer_failed: Option<String>,
    /// When the last failure was known (wall clock): a test issued after it must pass to recover.
    last_failure: Option<DateTime<Utc>>,
    /// The last suite state published (by this worker, or read back from the group's leader).
    published: Suite,
    published_at: Option<Instant>,
    pub(super) last_test_seen: Instant,
    any_test_seen: bool,
    pub(super) last_error: Option<String>,
}

impl Verdict {
    /// A case with no test yet, its stall clock started at `now`.
    pub(super) fn new(name: &'static str, options: CaseOptions, now: Instant) -> Self {
        Verdict {
            name,
            options,
            status: State::Init,
            consecutive_failures: 0,
            service_down: None,
            stalled: false,
            tested_since_stall: false,
            peer_failed: None,
            last_failure: None,
            published: Suite::Ok,
            published_at: None,
            last_test_seen: now,
            any_test_seen: false,
            last_error: None,
        }
    }

    /// The state shown for the case (see [`CaseStatus::state`](super::CaseStatus::state)).
    pub(super) fn state(&self) -> State {
        if self.judged() == Suite::Stall && !self.tested_since_stall {
            State::Stall
        } else {
            self.status
        }
    }

    /// Whether a suite FAIL or STALL is in effect (judged; the leader publishes it).
    pub(super) fn suite_failed(&self) -> bool {
        self.judged() != Suite::Ok
    }

    /// The suite state the reports seen so far make: a failure outranks a stall.
    fn judged(&self) -> Suite {
        if self.consecutive_failures >= self.options.max_consecutive_failures
            || self.service_down.is_some()
            || self.peer_failed.is_some()
        {
            Suite::Fail
        } else if self.stalled {
            Suite::Stall
        } else {
            Suite::Ok
        }
    }

    /// A test of the case arrived at this worker: the case has traffic (the stall clock).
    pub(super) fn on_test_received(&mut self, now: Instant) {
        self.last_test_seen = now;
        self.any_test_seen = true;
    }

    /// Judges a test report of the group, published at `at`, that arrived `now`.
    pub(super) fn on_report(&mut self, report: &TestReport, at: DateTime<Utc>, now: Instant) {
        self.on_test_received(now);
        self.tested_since_stall = true;
        match report.state {
            state if state.is_failure() => {
                self.status = state;
                self.consecutive_failures += 1;
                self.last_error = report.error.clone();
                self.failed_at(at);
            }
            State::Pass => {
                let issued = report.test.as_ref().map(|t| t.timestamp);
                let newer = match (self.last_failure, issued) {
                    (None, _) => true,
                    (Some(failed), Some(issued)) => issued > failed,
                    (Some(_), None) => false,
                };
                if newer {
                    self.consecutive_failures = 0;
                    self.status = State::Pass;
                    self.stalled = false;
                    self.peer_failed = None;
                    if self.service_down.take().is_some() {
                        tracing::info!(case = self.name, "a test passed: the service is back");
                    }
                }
            }
            _ => {}
        }
    }

    fn failed_at(&mut self, at: DateTime<Utc>) {
        self.last_failure = Some(self.last_failure.map_or(at, |last| last.max(at)));
    }

    /// The periodic check: a case with no test for `warn_stalled_after` stalls.
    pub(super) fn check(&mut self) {
        let silent = Instant::now() - self.last_test_seen;
        if !self.stalled && silent >= self.options.warn_stalled_after {
            self.stalled = true;
            self.tested_since_stall = false;
            self.failed_at(Utc::now());
        }
    }

    /// A request of the case's HTTP helpers failed every retry: the service counts as down.
    pub(super) fn on_service_down(&mut self, message: String) {
        self.failed_at(Utc::now());
        self.status = State::Fail;
        self.last_error = Some(message.clone());
        self.service_down = Some(message);
    }

    /// A request of the case's HTTP helpers succeeded: a service that was down is back.
    pub(super) fn on_service_up(&mut self) {
        if self.service_down.take().is_some() {
            self.peer_failed = None;
            if self.consecutive_failures < self.options.max_consecutive_failures {
                self.status = State::Pass;
            }
            tracing::info!(case = self.name, "the service answers again");
        }
    }

    /// A suite report of the group's leader, read back from the report topic, published at
    /// `at`: this worker adopts the judgement.
    pub(super) fn adopt(&mut self, report: &TestReport, at: DateTime<Utc>) {
        let Some(suite) = Suite::of(report.state) else {
            return;
        };
        self.published = suite;
        self.published_at = Some(Instant::now());
        match suite {
            Suite::Ok => {
                self.consecutive_failures = 0;
                self.service_down = None;
                self.peer_failed = None;
                self.stalled = false;
            }
            Suite::Fail => {
                self.failed_at(at);
                if self.judged() != Suite::Fail {
                    self.peer_failed = Some(
                        report
                            .error
                            .clone()
                            .unwrap_or_else(|| "suite FAIL reported by the leader".into()),
                    );
                }
            }
            Suite::Stall => {
                self.failed_at(at);
                if !self.stalled {
                    self.stalled = true;
                    self.tested_since_stall = false;
                }
            }
        }
    }

    /// The suite report due now, if any, marked as published (see
    /// [`CaseHealth::take_due`](super::CaseHealth::take_due)).
    pub(super) fn take_due(
        &mut self,
        leader: bool,
        reminder: Option<Duration>,
    ) -> Option<TestReport> {
        if !leader {
            return None;
        }
        let now = Instant::now();
        let judged = self.judged();
        let since = self.published_at.map(|at| now - at);
        if judged != self.published {
            let settled = self.published == Suite::Ok
                || since.is_none_or(|s| s >= self.options.state_transition_delay);
            if !settled {
                return None;
            }
        } else {
            let remind = judged != Suite::Ok
                && reminder
                    .zip(since)
                    .is_some_and(|(every, since)| since >= every);
            if !remind {
                return None;
            }
        }
        self.published = judged;
        self.published_at = Some(now);
        let error = self.why(judged, now);
        match &error {
            Some(why) => tracing::error!(
                case = self.name,
                "suite {}: {}",
                judged.state(),
                crate::text::Escaped(why)
            ),
            None => tracing::info!(case = self.name, "suite recovered"),
        }
        Some(TestReport {
            case_name: self.name.to_owned(),
            state: judged.state(),
            test: None,
            runtime: None,
            signal_latency: BTreeMap::new(),
            error,
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
        })
    }

    fn why(&self, suite: Suite, now: Instant) -> Option<String> {
        match suite {
            Suite::Ok => None,
            Suite::Stall => {
                let silent = now - self.last_test_seen;
                Some(if self.any_test_seen {
                    format!("stalled: no test received for {}", humanize(silent))
                } else {
                    format!(
                        "stalled: no test received since start {} ago",
                        humanize(silent)
                    )
                })
            }
            Suite::Fail if self.consecutive_failures >= self.options.max_consecutive_failures => {
                Some(format!(
                    "{} consecutive failures (max {}); last: {}",
                    self.consecutive_failures,
                    self.options.max_consecutive_failures,
                    self.last_error.as_deref().unwrap_or("no error text")
                ))
            }
            Suite::Fail => self
                .service_down
                .clone()
                .or_else(|| self.peer_failed.clone()),
        }
    }
}
