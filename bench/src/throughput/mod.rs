//! Throughput: tests per second one worker completes, each test waiting for three signals, with
//! `test_concurrency` at its default (100) — and what each test costs in CPU.
//!
//! The worker and the service are two child processes (`livecheck-bench throughput-worker` and
//! `throughput-service`, `children.rs`), so that each one's CPU time is its own, as in a
//! deployment. The service calls `three_signals.maybe_trigger` (probability 1.0) and sends the
//! test's three signals in its scope, for `tests` tests, as fast as its producer takes them (at
//! most `SERVICE_CONCURRENCY` requests at once) or at a given rate; that is the workload of
//! Faust's bench. The figure is tests reported per second from the start to the last report;
//! signals per second are three times that. Beside it: each process's CPU per test (its own CPU
//! clock from `START` to its `END`), the broker's, and the Kafka messages the run wrote (counted
//! on the topics before and after). Under callgrind (the instructions stage) the same run counts
//! instructions instead. Part of `cargo run --release -p bench`.

mod children;

use std::path::Path;
use std::time::{Duration, SystemTime};

use livecheck::transport::kafka::KafkaTransport;

pub(crate) use self::children::{service, worker, ServiceArgs, WorkerArgs};
use crate::callgrind;
use crate::child::{unix_ns, ChildProcess, Fields};
use crate::setup::{count_messages, unique_config, ChildKafka, COUNT_IDLE};
use crate::stats::CpuMeter;

/// How long the worker has for all its tests once the service started.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a child has to connect and get its partitions (more under valgrind).
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Kafka messages written during a run, by topic.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Messages {
    /// The tests topic: one record per test.
    pub(crate) tests: u64,
    /// The bus: signals, and the worker's progress markers.
    pub(crate) bus: u64,
    /// The reports topic: test reports and suite reports.
    pub(crate) reports: u64,
}

impl Messages {
    /// All three topics.
    pub(crate) fn total(&self) -> u64 {
        self.tests + self.bus + self.reports
    }
}

/// What one run gave.
#[derive(Debug)]
pub(crate) struct Throughput {
    /// Tests triggered.
    pub(crate) tests: u64,
    /// From the start to the last report.
    pub(crate) elapsed: Duration,
    /// From the start to the delivery of the service's last signal.
    pub(crate) service_elapsed: Duration,
    /// PASS reports.
    pub(crate) passed: u64,
    /// TIMEOUT reports.
    pub(crate) timeouts: u64,
    /// TIMEOUTs before the wait's timeout elapsed.
    pub(crate) false_timeouts: u64,
    /// Other reports (FAIL, ERROR, SKIP).
    pub(crate) others: u64,
    /// Tests per second over the first and the last third of the reports: the broker slows
    /// down as it stores more.
    pub(crate) thirds: Option<(f64, f64)>,
    /// CPU time of the worker process from the start to its last report.
    pub(crate) worker_cpu: Duration,
    /// CPU time of the service process from the start to its last delivery.
    pub(crate) service_cpu: Duration,
    /// CPU seconds of the broker over the run, when the benchmark started it.
    pub(crate) broker_cpu: Option<f64>,
    /// Kafka messages written over the run (from the start to both processes' exit).
    pub(crate) messages: Messages,
    /// Instructions of the worker and of the service (under callgrind only).
    pub(crate) instructions: Option<(u64, u64)>,
}

impl Throughput {
    /// Tests completed per second.
    pub(crate) fn tests_per_sec(&self) -> f64 {
        self.reported() as f64 / self.elapsed.as_secs_f64()
    }

    /// Test reports.
    pub(crate) fn reported(&self) -> u64 {
        self.passed + self.timeouts + self.others
    }

    /// Worker and service CPU per test, in µs.
    pub(crate) fn cpu_us_per_test(&self) -> (f64, f64) {
        let per_test = |cpu: Duration| cpu.as_secs_f64() * 1e6 / self.tests.max(1) as f64;
        (per_test(self.worker_cpu), per_test(self.service_cpu))
    }

    /// Kafka messages written per test.
    pub(crate) fn messages_per_test(&self) -> f64 {
        self.messages.total() as f64 / self.tests.max(1) as f64
    }
}

/// How a run is driven.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load<'a> {
    /// Tests.
    pub(crate) tests: u64,
    /// The service's pace in tests per second; `None`: as fast as it goes.
    pub(crate) rate: Option<f64>,
    /// Run both processes under callgrind, its dumps in this directory.
    pub(crate) callgrind: Option<&'a Path>,
    /// The broker's process, to read its CPU time.
    pub(crate) broker_pid: Option<u32>,
}

/// Runs `load.tests` tests through one worker.
pub(crate) async fn run(brokers: &str, load: Load<'_>) -> Result<Throughput, String> {
    let config = unique_config(brokers, "throughput");
    KafkaTransport::new(config.clone())
        .map_err(|e| e.to_string())?
        .ensure_topics()
        .await
        .map_err(|e| format!("topics: {e}"))?;
    let topics = [
        config.topics.tests.clone(),
        config.topics.bus.clone(),
        config.topics.reports.clone(),
    ];
    // The case's own `test_expires` (1 h).
    let kafka = ChildKafka::command_line(brokers, &config, Duration::from_secs(3600));
    let tests = load.tests.to_string();
    let wrap = |name: &str| {
        load.callgrind
            .map_or_else(Vec::new, |d| callgrind::wrap(d, name))
    };

    let mut args = vec![
        "throughput-worker".to_owned(),
        "--tests".into(),
        tests.clone(),
    ];
    args.extend(kafka.iter().cloned());
    let mut worker = ChildProcess::spawn("worker", &wrap("worker"), &args)?;
    worker.expect("READY", READY_TIMEOUT).await?;
    let mut args = vec!["throughput-service".to_owned(), "--tests".into(), tests];
    args.extend(kafka.iter().cloned());
    if let Some(rate) = load.rate {
        args.extend(["--rate".to_owned(), rate.to_string()]);
    }
    let mut service = ChildProcess::spawn("service", &wrap("service"), &args)?;
    service.expect("READY", READY_TIMEOUT).await?;
    let pids = (
        worker.pid().ok_or("the worker process is gone")?,
        service.pid().ok_or("the service process is gone")?,
    );
    let before = count_messages(brokers, &topics, COUNT_IDLE).await?;
    if load.callgrind.is_some() {
        callgrind::zero(pids.0).await?;
        callgrind::zero(pids.1).await?;
    }

    let broker_cpu = CpuMeter::start(load.broker_pid);
    let started = SystemTime::now();
    worker.send("START").await?;
    service.send("START").await?;
    let within = RUN_TIMEOUT
        + load.rate.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(load.tests as f64 / rate)
        });
    let sent = service.expect("END", within).await?;
    let done = worker.expect("END", within).await?;
    let broker_cpu = broker_cpu.seconds();
    let instructions = match load.callgrind {
        Some(dir) => Some((
            callgrind::dump(dir, "worker", pids.0).await?,
            callgrind::dump(dir, "service", pids.1).await?,
        )),
        None => None,
    };
    service.finish(Duration::from_secs(120)).await?;
    worker.finish(Duration::from_secs(120)).await?;
    let after = count_messages(brokers, &topics, COUNT_IDLE).await?;
    let written = |i: usize| after[i].saturating_sub(before[i]);

    let started_ns = unix_ns(started);
    let since_start = |ns: u64| Duration::from_nanos(ns.saturating_sub(started_ns));
    let result = Throughput {
        tests: load.tests,
        elapsed: since_start(done.u64("last_ns")?),
        service_elapsed: since_start(sent.u64("sent_ns")?),
        passed: done.u64("passed")?,
        timeouts: done.u64("timeouts")?,
        false_timeouts: done.u64("false_timeouts")?,
        others: done.u64("others")?,
        thirds: thirds(started_ns, &done)?,
        worker_cpu: done.cpu()?,
        service_cpu: sent.cpu()?,
        broker_cpu,
        messages: Messages {
            tests: written(0),
            bus: written(1),
            reports: written(2),
        },
        instructions,
    };
    if result.others > 0 {
        // The workload cannot fail: a FAIL or an ERROR is a bug, not a figure.
        return Err(format!(
            "{} of {} tests neither passed nor timed out",
            result.others, result.tests
        ));
    }
    Ok(result)
}

/// Tests per second over the first third of the reports (from the start) and over the last.
fn thirds(started_ns: u64, done: &Fields) -> Result<Option<(f64, f64)>, String> {
    let third = done.u64("third")?;
    if third == 0 {
        return Ok(None);
    }
    let first = done.u64("first_third_ns")?.saturating_sub(started_ns);
    let last = done
        .u64("last_ns")?
        .saturating_sub(done.u64("last_third_from_ns")?);
    Ok(Some((
        third as f64 / (first as f64 / 1e9).max(1e-9),
        third as f64 / (last as f64 / 1e9).max(1e-9),
    )))
}
