//! Memory: the resident set of a worker process with 100,000 tests in flight (triggered, each
//! waiting for its signals), after they pass (their 300,000 signals held), and after
//! `test_expires` has passed (the signals expired).
//!
//! The worker runs as a child process (`livecheck-bench memory-worker`), so its RSS
//! (`VmRSS` of `/proc/self/status`) is its own; this process is the service that triggers the
//! tests and sends the signals. To hold every test in flight at once the child sets
//! `test_concurrency` to the number of tests (the default, 100, would leave the rest in Kafka);
//! to see the expiry within the run it sets the case's `test_expires` to a few seconds (the
//! tests themselves are triggered valid for an hour), and so its `max_runtime` too, which would
//! otherwise follow `test_expires` down to those seconds. A test that does not pass fails the
//! stage. The child reports on stdout, one line per
//! stage: `STAGE rss_kib stored_signals`. Part of `cargo run --release -p bench`.

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use livecheck::transport::kafka::KafkaTransport;
use livecheck::{Case, CaseConfig, WorkerSettings};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::cases::{held, FALSE_TIMEOUTS, HELD_1, HELD_2, HELD_3};
use crate::setup::{service_client, unique_config, ChildKafka, Reports, RunningWorker};
use crate::stats::rss_kib;

/// How long one stage may take.
const STAGE_TIMEOUT: Duration = Duration::from_secs(600);
/// The case's `max_runtime` in the worker: longer than the stages that hold its tests in flight
/// and its three waits (`MEMORY_WAIT_TIMEOUT` each).
const MAX_RUNTIME: Duration = Duration::from_secs(3600);
/// Requests the service makes at once.
const SERVICE_CONCURRENCY: usize = 1024;

/// The worker's resident set at each stage, in KiB.
#[derive(Debug)]
pub(crate) struct Memory {
    /// Tests in flight.
    pub(crate) tests: u64,
    /// Subscribed and assigned, no test yet.
    pub(crate) baseline_kib: u64,
    /// Every test running, waiting for its first signal.
    pub(crate) in_flight_kib: u64,
    /// Signals in the store then (one waiter per test).
    pub(crate) in_flight_stored: u64,
    /// Every test passed; their signals held until `test_expires` after they arrived.
    pub(crate) done_kib: u64,
    /// Signals in the store then.
    pub(crate) done_stored: u64,
    /// The signals expired.
    pub(crate) expired_kib: u64,
    /// Signals in the store then.
    pub(crate) expired_stored: u64,
    /// The worker's `test_expires`.
    pub(crate) expires: Duration,
}

/// The arguments of the child: where to consume, and how much.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    kafka: ChildKafka,
    /// Tests to hold in flight.
    #[arg(long)]
    tests: u64,
}

/// glibc tunables that fix malloc's trim and mmap thresholds (glibc raises them as large
/// blocks are freed, and then keeps that much free memory in each thread's arena).
pub(crate) const FIXED_GLIBC_THRESHOLDS: &str =
    "glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072";

/// Runs the worker child with `tests` tests and `expires` as `test_expires`; with
/// `glibc_tunables`, as its `GLIBC_TUNABLES`.
pub(crate) async fn run(
    brokers: &str,
    tests: u64,
    expires: Duration,
    glibc_tunables: Option<&str>,
) -> Result<Memory, String> {
    let config = unique_config(brokers, "memory");
    KafkaTransport::new(config.clone())
        .map_err(|e| e.to_string())?
        .ensure_topics()
        .await
        .map_err(|e| format!("topics: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    // To profile the worker: LIVECHECK_BENCH_WRAP="valgrind --tool=dhat" (a command prefix).
    let wrap = std::env::var("LIVECHECK_BENCH_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut child = match wrap.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(wrap).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    if let Some(tunables) = glibc_tunables {
        child.env("GLIBC_TUNABLES", tunables);
    }
    let mut child = child
        .arg("memory-worker")
        .args(ChildKafka::command_line(brokers, &config, expires))
        .args(["--tests", &tests.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start the worker process: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();

    let [baseline_kib, _] = stage(&mut lines, "READY").await?;
    let service = service_client(&config)?;
    let started = Instant::now();
    // A trigger only queues its test: flush every 10,000 so that the producer's queue (100,000
    // messages) never fills.
    for chunk in (0..tests).collect::<Vec<_>>().chunks(10_000) {
        service
            .scope(async {
                for &n in chunk {
                    held.trigger(format!("memory-{n}"), n)
                        .await
                        .map_err(|e| format!("trigger: {e}"))?;
                }
                Ok::<(), String>(())
            })
            .await?;
        service
            .flush(STAGE_TIMEOUT)
            .await
            .map_err(|e| format!("flush: {e}"))?;
    }
    eprintln!(
        "memory: {tests} tests triggered in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let [in_flight_kib, in_flight_stored] = stage(&mut lines, "INFLIGHT").await?;
    let started = Instant::now();
    service
        .scope(
            futures::stream::iter(0..tests)
                .map(|n| async move {
                    let key = format!("memory-{n}");
                    for signal in [&HELD_1, &HELD_2, &HELD_3] {
                        signal
                            .send_to(&key, &n)
                            .delivered()
                            .await
                            .map_err(|e| format!("send: {e}"))?;
                    }
                    Ok::<(), String>(())
                })
                .buffer_unordered(SERVICE_CONCURRENCY)
                .try_for_each(|_| async { Ok(()) }),
        )
        .await?;
    eprintln!(
        "memory: {} signals sent in {:.1} s",
        3 * tests,
        started.elapsed().as_secs_f64()
    );
    let dropped = service.counters().dropped;
    if dropped > 0 {
        return Err(format!("the service dropped {dropped} tests or signals"));
    }
    let [done_kib, done_stored] = stage(&mut lines, "DONE").await?;
    let [expired_kib, expired_stored] = stage(&mut lines, "EXPIRED").await?;
    let status = tokio::time::timeout(STAGE_TIMEOUT, child.wait())
        .await
        .map_err(|_| "the worker process did not exit".to_owned())?
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the worker process exited with {status}"));
    }
    Ok(Memory {
        tests,
        baseline_kib,
        in_flight_kib,
        in_flight_stored,
        done_kib,
        done_stored,
        expired_kib,
        expired_stored,
        expires,
    })
}

/// Reads the child's line `NAME rss stored`.
async fn stage(lines: &mut Lines<BufReader<ChildStdout>>, name: &str) -> Result<[u64; 2], String> {
    let line = tokio::time::timeout(STAGE_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| format!("the worker process did not reach {name} in time"))?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the worker process exited before {name}"))?;
    if let Some(reason) = line.strip_prefix("FAILED ") {
        return Err(format!("the worker process failed before {name}: {reason}"));
    }
    let mut words = line.split_whitespace();
    if words.next() != Some(name) {
        return Err(format!(
            "expected {name} from the worker process, got {line:?}"
        ));
    }
    let mut numbers = words.map(|w| w.parse::<u64>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(rss)), Some(Ok(stored))) => {
            eprintln!(
                "memory: {name}: worker RSS {:.1} MiB, {stored} signals stored",
                rss as f64 / 1024.0
            );
            Ok([rss, stored])
        }
        _ => Err(format!("bad line from the worker process: {line:?}")),
    }
}

/// The child: a worker holding every test in flight, reporting its RSS at each stage.
pub(crate) async fn worker(args: WorkerArgs) -> Result<(), String> {
    let (mut config, expires) = args.kafka.config();
    config.signal_replay = Duration::from_secs(3600);
    let mut case = CaseConfig::from(held.descriptor());
    case.options.test_expires = expires;
    // Its own `max_runtime`: by default it is `min(test_expires, 1 h)`, and with the short
    // `test_expires` above every test would be stopped (TIMEOUT) a few seconds after it
    // started, long before 100,000 tests are in flight and signalled.
    case.options.max_runtime = Some(MAX_RUNTIME);
    let reports = Reports::default();
    let worker = RunningWorker::start(
        &config,
        vec![case],
        {
            let mut settings = WorkerSettings::default();
            settings.test_concurrency = usize::try_from(args.tests).unwrap_or(usize::MAX);
            settings
        },
        reports.clone(),
    )
    .await?;
    let handle = worker.handle.clone();
    // To profile one stage (e.g. with LIVECHECK_BENCH_WRAP="valgrind --tool=dhat"), exit
    // right after it: LIVECHECK_BENCH_EXIT_AFTER=INFLIGHT.
    let exit_after = std::env::var("LIVECHECK_BENCH_EXIT_AFTER").unwrap_or_default();
    let report = |name: &str| {
        println!("{name} {} {}", rss_kib(), handle.stored_signals());
        if exit_after == name {
            std::process::exit(0);
        }
    };
    settle().await;
    report("READY");

    // `stats()` is a snapshot: read it again at each poll.
    let in_flight = || handle.stats().in_flight as u64;
    poll_until(|| in_flight() >= args.tests)
        .await
        .map_err(|()| {
            failed(format!(
                "{} of {} tests in flight {}",
                in_flight(),
                args.tests,
                too_late()
            ))
        })?;
    settle().await;
    report("INFLIGHT");

    poll_until(|| reports.total() >= args.tests)
        .await
        .map_err(|()| {
            failed(format!(
                "{} of {} tests reported {}",
                reports.total(),
                args.tests,
                too_late()
            ))
        })?;
    // Every test must pass: a test that timed out holds no signals, and the readings would not
    // be of what they say.
    if reports.passed() != args.tests || FALSE_TIMEOUTS.load(Ordering::Relaxed) != 0 {
        let reason = failed(format!(
            "{} of {} tests passed ({} TIMEOUT, {} other, {} false timeouts)",
            reports.passed(),
            args.tests,
            reports.timeouts(),
            reports.others(),
            FALSE_TIMEOUTS.load(Ordering::Relaxed)
        ));
        worker.stop().await;
        return Err(reason);
    }
    settle().await;
    report("DONE");
    let done = Instant::now();

    poll_until(|| handle.stored_signals() == 0)
        .await
        .map_err(|()| {
            failed(format!(
                "{} signals still stored {}",
                handle.stored_signals(),
                too_late()
            ))
        })?;
    eprintln!(
        "memory: signals expired {:.1} s after the last test passed",
        done.elapsed().as_secs_f64()
    );
    settle().await;
    report("EXPIRED");
    worker.stop().await;
    Ok(())
}

/// Lets allocations in flight (consumer buffers, reports being published) land before a reading.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// What a stage that timed out says.
fn too_late() -> String {
    format!("after {} s (the stage's timeout)", STAGE_TIMEOUT.as_secs())
}

/// Polls `done` until it holds; `Err` after [`STAGE_TIMEOUT`].
async fn poll_until(mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + STAGE_TIMEOUT;
    while !done() {
        if Instant::now() > deadline {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Tells the parent why the child gives up (a `FAILED` line, which it reads in place of the
/// next stage's), and returns the reason.
fn failed(reason: String) -> String {
    println!("FAILED {reason}");
    reason
}
