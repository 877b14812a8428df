//! The two processes of the throughput run (the protocol: `child.rs`).
//!
//! - `livecheck-bench throughput-worker`: a worker with default settings running
//!   `bench.throughput`; `READY` once a warm-up test of its own passed (its consumers run: past
//!   the handover hold after its assignment, 6 s on tansu), `END` once every test reported, with
//!   the outcomes, the false timeouts, and when the reports came (wall clock, for the tests/s
//!   figures).
//! - `livecheck-bench throughput-service`: the service, `maybe_trigger` and three signals per
//!   request, each request waiting for its signals' delivery; `END` once all are delivered.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use livecheck::transport::kafka::KafkaConfig;
use livecheck::{Case, CaseConfig, WorkerSettings};

use crate::cases::{three_signals, FALSE_TIMEOUTS, STEP_1, STEP_2, STEP_3};
use crate::child::{say, unix_ns, Parent};
use crate::setup::{service_client, ChildKafka, Reports, RunningWorker};

/// Requests the service handles at once.
const SERVICE_CONCURRENCY: usize = 256;
/// How long the worker waits for its tests' reports.
const REPORTS_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long the warm-up test may take (the handover hold included; more under valgrind).
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(240);

/// Arguments of the worker child.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    kafka: ChildKafka,
    /// Test reports to wait for.
    #[arg(long)]
    tests: u64,
}

/// Arguments of the service child.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServiceArgs {
    #[command(flatten)]
    kafka: ChildKafka,
    /// Requests (each triggers a test).
    #[arg(long)]
    tests: u64,
    /// Requests per second; as fast as the producer takes them without.
    #[arg(long)]
    rate: Option<f64>,
}

/// The worker child.
pub(crate) async fn worker(args: WorkerArgs) -> Result<(), String> {
    let (mut config, expires) = args.kafka.config();
    config.signal_replay = Duration::from_secs(3600);
    let mut case = CaseConfig::from(three_signals.descriptor());
    case.options.test_expires = expires;
    let reports = Reports::with_timeline(usize::try_from(args.tests).unwrap_or(0));
    let worker = RunningWorker::start(
        &config,
        vec![case],
        WorkerSettings::default(),
        reports.clone(),
    )
    .await?;
    warm_up(&config, &reports).await?;
    // The wall clock of an `Instant` of this process.
    let (wall, mono) = (SystemTime::now(), Instant::now());
    let ns = |at: Instant| unix_ns(wall) + u64::try_from((at - mono).as_nanos()).unwrap_or(0);

    let (parent, cpu_start) = Parent::ready().await?;
    // Counted from here: the warm-up is not part of the run.
    let before = Counts::now(&reports);
    let complete = reports
        .wait_for(before.total() + args.tests, REPORTS_TIMEOUT)
        .await;
    let cpu = crate::child::cpu_now()? - cpu_start;
    let counts = Counts::now(&reports).minus(&before);
    if !complete {
        say(&format!(
            "FAILED only {} of {} tests reported within {REPORTS_TIMEOUT:?}",
            counts.total(),
            args.tests
        ));
    } else {
        let timeline = reports.timeline();
        let timeline = timeline.get(before.reports..).unwrap_or_default();
        let third = timeline.len() / 3;
        let at = |i: usize| timeline.get(i).map_or(0, |&t| ns(t));
        say(&format!(
            "END cpu_ns={} passed={} timeouts={} others={} false_timeouts={} last_ns={} \
             third={third} first_third_ns={} last_third_from_ns={}",
            cpu.as_nanos(),
            counts.passed,
            counts.timeouts,
            counts.others,
            counts.false_timeouts,
            reports.last().map_or(0, ns),
            at(third.saturating_sub(1)),
            at(timeline.len().saturating_sub(1 + third)),
        ));
    }
    parent.closed().await;
    worker.stop().await;
    Ok(())
}

/// Runs one test through the worker, as the service does, and waits for its report: once it
/// came, the worker's consumers run (the handover hold after its assignment is over) and its
/// clients are connected.
async fn warm_up(config: &KafkaConfig, reports: &Reports) -> Result<(), String> {
    let client = service_client(config)?;
    client.scope(request("warm-up", 0)).await?;
    if !reports.wait_for(1, WARM_UP_TIMEOUT).await {
        return Err(format!(
            "the warm-up test did not report within {WARM_UP_TIMEOUT:?}"
        ));
    }
    client
        .flush(Duration::from_secs(30))
        .await
        .map_err(|e| format!("flush: {e}"))
}

/// The worker's report counts at one moment.
#[derive(Debug, Clone, Copy)]
struct Counts {
    passed: u64,
    timeouts: u64,
    others: u64,
    false_timeouts: u64,
    /// Reports in the timeline.
    reports: usize,
}

impl Counts {
    fn now(reports: &Reports) -> Self {
        Counts {
            passed: reports.passed(),
            timeouts: reports.timeouts(),
            others: reports.others(),
            false_timeouts: FALSE_TIMEOUTS.load(Ordering::Relaxed),
            reports: reports.timeline().len(),
        }
    }

    fn minus(&self, before: &Counts) -> Counts {
        Counts {
            passed: self.passed - before.passed,
            timeouts: self.timeouts - before.timeouts,
            others: self.others - before.others,
            false_timeouts: self.false_timeouts - before.false_timeouts,
            reports: self.reports - before.reports,
        }
    }

    fn total(&self) -> u64 {
        self.passed + self.timeouts + self.others
    }
}

/// The service child.
pub(crate) async fn service(args: ServiceArgs) -> Result<(), String> {
    let (config, _) = args.kafka.config();
    let service = service_client(&config)?;
    let (parent, cpu_start) = Parent::ready().await?;
    let started = tokio::time::Instant::now();
    let rate = args.rate.filter(|r| *r > 0.0);
    let errors = service
        .scope(
            futures::stream::iter(0..args.tests)
                .then(|n| async move {
                    if let Some(rate) = rate {
                        let due = started + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(due).await;
                    }
                    n
                })
                .map(|n| request("throughput", n))
                .buffer_unordered(SERVICE_CONCURRENCY)
                .filter_map(|result| async move { result.err() })
                .collect::<Vec<String>>(),
        )
        .await;
    let cpu = crate::child::cpu_now()? - cpu_start;
    let sent = SystemTime::now();
    let dropped = service.counters().dropped;
    if let Some(error) = errors.first() {
        say(&format!(
            "FAILED {} of {} requests failed: {error}",
            errors.len(),
            args.tests
        ));
    } else if dropped > 0 {
        say(&format!(
            "FAILED the service dropped {dropped} tests or signals"
        ));
    } else {
        say(&format!(
            "END cpu_ns={} sent_ns={}",
            cpu.as_nanos(),
            unix_ns(sent)
        ));
    }
    parent.closed().await;
    service
        .flush(Duration::from_secs(30))
        .await
        .map_err(|e| format!("flush: {e}"))
}

/// What the service does for request `n`: maybe trigger a test (always, at probability 1.0),
/// `{prefix}-{n}`, and send its three signals in its scope.
async fn request(prefix: &str, n: u64) -> Result<(), String> {
    let test = three_signals
        .maybe_trigger(format!("{prefix}-{n}"), n)
        .await
        .map_err(|e| format!("trigger: {e}"))?;
    let Some(test) = test else { return Ok(()) };
    livecheck::with_test(test, async {
        // Each request waits for its signals' delivery, so the service's pace follows the
        // broker's (a service that does not wait would outrun the producer's queue here).
        for signal in [&STEP_1, &STEP_2, &STEP_3] {
            signal
                .send(&n)
                .delivered()
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        Ok(())
    })
    .await
}
