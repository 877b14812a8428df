//! [`WorkerSettings`]: what a worker is told at start, with Faust LiveCheck's defaults.

use std::time::Duration;

/// Settings of a worker, with Faust LiveCheck's defaults (`#[non_exhaustive]`: start from
/// [`WorkerSettings::default`] and set fields).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerSettings {
    /// Tests running at once (100).
    pub test_concurrency: usize,
    /// Publish reports to the transport (true); observers see them either way.
    pub send_reports: bool,
    /// On shutdown, how long running tests may take to finish (30 s).
    pub shutdown_grace: Duration,
    /// How often case health (stall, due suite reports) is checked (1 s).
    pub health_interval: Duration,
    /// Repeat a suite FAIL or STALL that lasts this long since its last report (off: one
    /// report per transition; Faust re-posts a failure every `state_transition_delay`).
    pub suite_reminder: Option<Duration>,
    /// Tests whose report the group published, remembered so that a test delivered again is
    /// not run again and a second report of a test is not counted twice (100,000; each is
    /// forgotten once its test has expired).
    pub reported_tests: usize,
    /// On start, how long to wait for the group's recent reports (the transport's look-back)
    /// before taking tests (30 s); after it, tests are taken anyway, with a warning.
    pub report_replay_wait: Duration,
    /// Largest report published, in bytes of JSON (500,000: under Kafka's default
    /// `message.max.bytes` of about 1 MB). Larger ones are truncated and say so; a broker that
    /// refuses even that gets smaller ones.
    pub max_report_bytes: usize,
    /// Tests older than this when they arrive are SKIP, not run (none: run every test that has
    /// not expired, as Faust does). A backlog — a new consumer group on old topics, a worker
    /// back from a long outage — says nothing about the system now; run, its tests would fail
    /// for hours of stale reasons. The `livecheck` command sets 10 min (`--max-test-age`).
    pub max_test_age: Option<Duration>,
    /// After a burst, once the worker holds a quarter of its peak of tests and signals (and the
    /// peak was 10,000 or more), ask the allocator to give its free memory back to the system
    /// (true). On glibc that is `malloc_trim(0)`, a process-wide call (it walks every arena of
    /// the process, for milliseconds after a big burst, on a blocking thread); elsewhere it does
    /// nothing. Set false where the process's allocator is not the worker's business.
    pub release_memory: bool,
    /// How far ahead of this worker's clock a peer's report may be dated (by its test's
    /// timestamp or its publication) and still count for case health (2 min). Reports dated
    /// further ahead are ignored and counted (`livecheck_skipped_messages_total{reason=
    /// "future"}`): 35 forged FAIL reports dated ten years ahead kept a case FAIL after every
    /// later pass (no pass was newer than them).
    pub max_clock_skew: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            test_concurrency: 100,
            send_reports: true,
            shutdown_grace: Duration::from_secs(30),
            health_interval: Duration::from_secs(1),
            suite_reminder: None,
            reported_tests: 100_000,
            report_replay_wait: Duration::from_secs(30),
            max_report_bytes: 500_000,
            max_test_age: None,
            release_memory: true,
            max_clock_skew: Duration::from_secs(120),
        }
    }
}
