//! `livecheck-bench`: livecheck measured against the Kafka floor and against Faust's LiveCheck,
//! on one broker, in one run, printed as one table.
//!
//! ```sh
//! cargo run --release -p bench                 # everything, ~4.5 min on 2 cores (docs/benchmarks.md)
//! cargo run --release -p bench -- --quick      # scaled down, ~2 min: does it all run? (CI)
//! cargo run --release -p bench -- --help       # sizes, --brokers, --only, --no-faust
//! ```
//!
//! It starts tansu on a free loopback port (the integration tests' harness; or takes
//! `--brokers`), then measures:
//!
//! 1. the floor: a bare rdkafka produce → consume round trip with livecheck's client settings
//!    (`floor.rs`);
//! 2. signal latency: `Signal::send` in a service → `wait` returns in the case (`latency.rs`);
//! 3. throughput of one worker, three signals per test, default `test_concurrency`, with the
//!    worker's and the service's CPU per test, the Kafka messages per test and the broker's CPU
//!    (`throughput/`), and the CPU of a bare producer and consumer moving the same messages at
//!    the same rate (`floor_load.rs`);
//! 4. instructions per test of the same, counted by callgrind on a small paced run
//!    (`instructions.rs`);
//! 5. RSS of a worker process with 100,000 tests in flight, and after their signals expired
//!    (`memory.rs`);
//! 6. service-side cost of `maybe_trigger` at probability 0 and of attaching test headers
//!    (`micro.rs`), and of a sampled request — `maybe_trigger` at probability 1 and `send` —
//!    with the broker up, stopped, and stopped with the queue full (`request.rs`);
//! 7. Faust's LiveCheck on the same workloads and broker (`faust.rs`, `bench/faust/`).
//!
//! Each measurement is a stage with a verdict (ok, failed with its reason, or n/a where a tool
//! is missing), printed as it ends and again under the table; a failed stage does not stop the
//! others, and the benchmark exits non-zero if any failed.
//!
//! Not in the default run: `--only soak`, a worker's RSS under a steady load for 30 minutes
//! (`soak.rs`; `--soak-duration 2m` for a smoke run).

mod callgrind;
mod cases;
mod child;
mod faust;
mod floor;
mod floor_load;
mod instructions;
mod latency;
mod memory;
mod micro;
mod render;
mod request;
mod setup;
mod soak;
mod stats;
mod throughput;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use futures::FutureExt;
use livecheck_tests::broker::Broker;

use crate::stats::Samples;
use crate::throughput::Load;

/// livecheck against the Kafka floor and Faust's LiveCheck: prints a table.
#[derive(Debug, Parser)]
#[command(name = "livecheck-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The worker process of the memory measurement (started by the benchmark itself).
    #[command(hide = true)]
    MemoryWorker(memory::WorkerArgs),
    /// The worker process of the soak run (started by the benchmark itself).
    #[command(hide = true)]
    SoakWorker(soak::WorkerArgs),
    /// The worker process of the throughput run (started by the benchmark itself).
    #[command(hide = true)]
    ThroughputWorker(throughput::WorkerArgs),
    /// The service process of the throughput run (started by the benchmark itself).
    #[command(hide = true)]
    ThroughputService(throughput::ServiceArgs),
    /// The bare producer and consumer of the CPU floor (started by the benchmark itself).
    #[command(hide = true)]
    FloorLoad(floor_load::LoadArgs),
}

/// Sizes and switches.
#[derive(Debug, Clone, clap::Args)]
struct Options {
    /// A Kafka-protocol broker to use (host:port) instead of starting tansu.
    #[arg(long, env = "LIVECHECK_BENCH_BROKERS")]
    brokers: Option<String>,
    /// Round trips of the floor, and signals of the latency run (each in two halves,
    /// interleaved).
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Unrecorded round trips (and signals) before each half.
    #[arg(long, default_value_t = 30)]
    warmup: usize,
    /// Tests of the throughput run (and of the CPU floor's load).
    #[arg(long, default_value_t = 100_000)]
    tests: u64,
    /// Tests of the runs under callgrind (instructions per test).
    #[arg(long, default_value_t = 2000)]
    instructions_tests: u64,
    /// Their pace, tests per second (livecheck's and the floor's alike).
    #[arg(long, default_value_t = 200.0)]
    instructions_rate: f64,
    /// Tests held in flight by the memory worker.
    #[arg(long, default_value_t = 100_000)]
    memory_tests: u64,
    /// `test_expires` of the memory worker's case, in seconds.
    #[arg(long, default_value_t = 5)]
    memory_expires: u64,
    /// Calls per timed round of the service-side loops.
    #[arg(long, default_value_t = 1_000_000)]
    micro_iterations: u64,
    /// Sampled requests (`maybe_trigger` + `send`) timed in each broker state.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Soak run: tests triggered per second.
    #[arg(long, default_value_t = 100)]
    soak_rate: u32,
    /// Soak run: how long tests are triggered ("30m", "2m", seconds).
    #[arg(long, default_value = "30m", value_parser = livecheck::duration::parse_duration)]
    soak_duration: Duration,
    /// Soak run: how often the worker's RSS is read.
    #[arg(long, default_value = "30s", value_parser = livecheck::duration::parse_duration)]
    soak_sample: Duration,
    /// Soak run: the case's `test_expires`.
    #[arg(long, default_value = "3h", value_parser = livecheck::duration::parse_duration)]
    soak_expires: Duration,
    /// Tests of Faust's throughput run.
    #[arg(long, default_value_t = 3000)]
    faust_tests: u64,
    /// Signals of Faust's latency run.
    #[arg(long, default_value_t = 300)]
    faust_samples: usize,
    /// Skip Faust (no Python needed).
    #[arg(long)]
    no_faust: bool,
    /// Scale every size down (a check that everything runs, not figures to quote).
    #[arg(long)]
    quick: bool,
    /// Only these measurements (`soak` runs only when named here).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Part>,
    /// A librdkafka property for every client, on top of livecheck's settings (repeatable), as
    /// the `livecheck` binary's `-X`: to explore settings, not for the reference figures.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = setup::parse_property)]
    property: Vec<(String, String)>,
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Floor and signal latency.
    Latency,
    /// Tests per second, CPU per test, and the CPU floor.
    Throughput,
    /// Instructions per test (callgrind).
    Instructions,
    /// Worker RSS.
    Memory,
    /// Service-side cost.
    Service,
    /// Faust's LiveCheck.
    Faust,
    /// Worker RSS under a steady load, over time (not in the default run).
    Soak,
}

impl Options {
    fn wants(&self, part: Part) -> bool {
        if part == Part::Soak {
            return self.only.contains(&part);
        }
        (self.only.is_empty() || self.only.contains(&part))
            && !(part == Part::Faust && self.no_faust)
    }

    fn scaled(mut self) -> Self {
        if self.quick {
            self.samples = self.samples.min(200);
            self.warmup = self.warmup.min(10);
            self.tests = self.tests.min(3000);
            self.instructions_tests = self.instructions_tests.min(400);
            self.memory_tests = self.memory_tests.min(10_000);
            self.micro_iterations = self.micro_iterations.min(100_000);
            self.requests = self.requests.min(2000);
            self.faust_tests = self.faust_tests.min(500);
            self.faust_samples = self.faust_samples.min(60);
        }
        self
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("livecheck-bench: tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    setup::init_tracing();
    setup::set_properties(cli.options.property.clone());
    let result = match cli.command {
        Some(Command::MemoryWorker(args)) => runtime.block_on(memory::worker(args)),
        Some(Command::SoakWorker(args)) => runtime.block_on(soak::worker(args)),
        Some(Command::ThroughputWorker(args)) => runtime.block_on(throughput::worker(args)),
        Some(Command::ThroughputService(args)) => runtime.block_on(throughput::service(args)),
        Some(Command::FloorLoad(args)) => runtime.block_on(floor_load::load(args)),
        None => runtime.block_on(bench(cli.options.scaled())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("livecheck-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Everything measured; `None` where skipped or failed.
#[derive(Debug, Default)]
struct Results {
    floor: Option<Samples>,
    latency: Option<Samples>,
    latency_first: Option<Samples>,
    latency_later: Option<Samples>,
    throughput: Option<throughput::Throughput>,
    floor_load: Option<floor_load::FloorLoad>,
    /// `Err`: why instructions could not be counted here.
    instructions: Option<Result<instructions::Instructions, String>>,
    memory: Option<memory::Memory>,
    memory_fixed_glibc: Option<memory::Memory>,
    micro: Option<micro::Micro>,
    request: Option<request::RequestPath>,
    soak: Option<soak::Soak>,
    faust: Option<faust::FaustResult>,
    /// Each stage's verdict, in the order they ran.
    verdicts: Vec<Verdict>,
}

/// How a stage ended.
#[derive(Debug)]
enum Outcome {
    /// It ran and its figures are in the table.
    Ok,
    /// A tool it needs is missing here; its cells say why (not a failure).
    NotApplicable(String),
    /// Not run, because a stage it builds on failed.
    NotRun(String),
    /// It failed: its figures are missing or not of what they say.
    Failed(String),
}

impl From<String> for Outcome {
    fn from(reason: String) -> Self {
        Outcome::Failed(reason)
    }
}

/// One stage's verdict.
#[derive(Debug)]
struct Verdict {
    stage: &'static str,
    took: Duration,
    outcome: Outcome,
}

impl Results {
    /// Runs `stage` (at most `limit`; a panic is a failure like an error), records and prints
    /// its verdict; its value if it succeeded.
    async fn stage<T, E: Into<Outcome>>(
        &mut self,
        name: &'static str,
        limit: Duration,
        stage: impl Future<Output = Result<T, E>>,
    ) -> Option<T> {
        eprintln!("livecheck-bench: stage {name}");
        let started = Instant::now();
        let result = match tokio::time::timeout(limit, AssertUnwindSafe(stage).catch_unwind()).await
        {
            Err(_) => Err(Outcome::Failed(format!(
                "did not end within {} s",
                limit.as_secs()
            ))),
            Ok(Err(panic)) => Err(Outcome::Failed(format!(
                "panicked: {}",
                panic_message(&*panic)
            ))),
            Ok(Ok(result)) => result.map_err(Into::into),
        };
        let (value, outcome) = match result {
            Ok(value) => (Some(value), Outcome::Ok),
            Err(outcome) => (None, outcome),
        };
        self.record(name, started.elapsed(), outcome);
        value
    }

    /// Records and prints a verdict.
    fn record(&mut self, stage: &'static str, took: Duration, outcome: Outcome) {
        let verdict = Verdict {
            stage,
            took,
            outcome,
        };
        eprintln!("livecheck-bench: {}", verdict.describe());
        self.verdicts.push(verdict);
    }

    /// The stages that failed.
    fn failed(&self) -> Vec<&'static str> {
        self.verdicts
            .iter()
            .filter(|v| matches!(v.outcome, Outcome::Failed(_)))
            .map(|v| v.stage)
            .collect()
    }
}

impl Verdict {
    /// `stage: ok, 12 s`, `stage: **failed** after 600 s: why`, …
    fn describe(&self) -> String {
        let took = self.took.as_secs_f64();
        match &self.outcome {
            Outcome::Ok => format!("`{}`: ok, {took:.0} s", self.stage),
            Outcome::NotApplicable(why) => format!("`{}`: n/a ({why})", self.stage),
            Outcome::NotRun(why) => format!("`{}`: not run ({why})", self.stage),
            Outcome::Failed(why) => {
                format!("`{}`: **failed** after {took:.0} s: {why}", self.stage)
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The longest one stage may take (each has shorter limits inside): it must end, not hang CI.
const STAGE_LIMIT: Duration = Duration::from_secs(1800);

async fn bench(options: Options) -> Result<(), String> {
    let started = Instant::now();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let load_before = render::load_average();
    let (broker, brokers, broker_name) = match &options.brokers {
        Some(brokers) => (None, brokers.clone(), format!("external broker {brokers}")),
        None => {
            let broker = tokio::task::spawn_blocking(Broker::start)
                .await
                .map_err(|e| format!("start tansu: {e}"))?;
            let bootstrap = broker.bootstrap();
            let name = format!(
                "{} on {bootstrap}, memory storage, started by the benchmark",
                render::tansu_version()
            );
            (Some(broker), bootstrap, name)
        }
    };
    eprintln!("livecheck-bench: broker: {broker_name}");
    // Its CPU time is read around the throughput runs (only for a broker started here).
    let broker_pid = broker.as_ref().and_then(|_| stats::broker_pid(&brokers));
    let mut results = Results::default();
    let brokers = brokers.as_str();

    if options.wants(Part::Service) {
        let iterations = options.micro_iterations;
        results.micro = results
            .stage("service: maybe_trigger, headers", STAGE_LIMIT, async move {
                tokio::task::spawn_blocking(move || micro::run(iterations))
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
        eprintln!(
            "livecheck-bench: a sampled request, {} with the broker up, stopped, and stopped with a full queue",
            options.requests
        );
        results.request = results
            .stage(
                "service: a sampled request",
                STAGE_LIMIT,
                request::run(brokers, options.requests),
            )
            .await;
    }
    if options.wants(Part::Latency) {
        let (samples, warmup) = (options.samples, options.warmup);
        if let Some(latency) = results
            .stage(
                "latency",
                STAGE_LIMIT,
                latency_stage(brokers, samples, warmup),
            )
            .await
        {
            [
                results.floor,
                results.latency,
                results.latency_first,
                results.latency_later,
            ] = latency.map(Some);
        }
    }
    // Faust before livecheck's throughput and memory runs, so that the broker holds about as
    // little when each throughput run starts (tansu's fetches slow down as it fills).
    if options.wants(Part::Faust) {
        let log = render::target_dir().join("bench-faust.log");
        eprintln!(
            "livecheck-bench: Faust LiveCheck, {} tests (its log: {})",
            options.faust_tests,
            log.display()
        );
        let stage_started = Instant::now();
        let faust = faust::run(
            brokers,
            options.faust_tests,
            options.faust_samples,
            &log,
            broker_pid,
        );
        let faust = tokio::time::timeout(STAGE_LIMIT, faust)
            .await
            .unwrap_or_else(|_| Err(format!("did not end within {} s", STAGE_LIMIT.as_secs())));
        // A run inside Faust's bench that failed fails the stage; what did run is shown.
        let outcome = match &faust {
            Ok(f) => f.error.clone().map_or(Outcome::Ok, Outcome::Failed),
            Err(error) => Outcome::Failed(error.clone()),
        };
        results.record("faust", stage_started.elapsed(), outcome);
        results.faust = faust.ok();
    }

    if options.wants(Part::Throughput) {
        eprintln!("livecheck-bench: throughput, {} tests", options.tests);
        let load = Load {
            tests: options.tests,
            rate: None,
            callgrind: None,
            broker_pid,
        };
        results.throughput = results
            .stage("throughput", STAGE_LIMIT, throughput::run(brokers, load))
            .await;
        match &results.throughput {
            Some(t) => {
                let (tests, per_test, rate) = (t.tests, t.messages_per_test(), t.tests_per_sec());
                eprintln!(
                    "livecheck-bench: CPU floor, {per_test:.2} messages per test at {rate:.0} tests/s"
                );
                results.floor_load = results
                    .stage(
                        "CPU floor",
                        STAGE_LIMIT,
                        floor_load::run(brokers, tests, per_test, rate, None, broker_pid),
                    )
                    .await;
            }
            None => results.record(
                "CPU floor",
                Duration::ZERO,
                Outcome::NotRun("it runs at the throughput run's rate".into()),
            ),
        }
    }
    if options.wants(Part::Instructions) {
        let (tests, rate) = (options.instructions_tests, options.instructions_rate);
        eprintln!("livecheck-bench: instructions, {tests} tests at {rate} tests/s under callgrind");
        let counted = results
            .stage(
                "instructions",
                STAGE_LIMIT,
                instructions::run(brokers, tests, rate),
            )
            .await;
        results.instructions = match (counted, results.verdicts.last()) {
            (Some(counted), _) => Some(Ok(counted)),
            (
                None,
                Some(Verdict {
                    outcome: Outcome::NotApplicable(why),
                    ..
                }),
            ) => Some(Err(why.clone())),
            (None, _) => None,
        };
    }
    if options.wants(Part::Memory) {
        eprintln!(
            "livecheck-bench: memory, {} tests in flight",
            options.memory_tests
        );
        let expires = Duration::from_secs(options.memory_expires);
        let tests = options.memory_tests;
        results.memory = results
            .stage(
                "memory",
                STAGE_LIMIT,
                memory::run(brokers, tests, expires, None),
            )
            .await;
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            eprintln!("livecheck-bench: memory again, glibc's malloc thresholds fixed");
            let tunables = Some(memory::FIXED_GLIBC_THRESHOLDS);
            results.memory_fixed_glibc = results
                .stage(
                    "memory, glibc thresholds fixed",
                    STAGE_LIMIT,
                    memory::run(brokers, tests, expires, tunables),
                )
                .await;
        }
    }
    if options.wants(Part::Soak) {
        eprintln!(
            "livecheck-bench: soak, {} tests/s for {:?}, test_expires {:?}",
            options.soak_rate, options.soak_duration, options.soak_expires
        );
        let soak = soak::SoakOptions {
            rate: options.soak_rate,
            duration: options.soak_duration,
            sample: options.soak_sample,
            expires: options.soak_expires,
        };
        let limit = options.soak_duration + STAGE_LIMIT;
        results.soak = results.stage("soak", limit, soak::run(brokers, soak)).await;
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let machine = format!(
        "{}; load average {load_before} at the start, {} at the end",
        render::machine(),
        render::load_average()
    );
    println!(
        "{}",
        render::render(
            &results,
            options.quick,
            &[&date, &broker_name, &machine, &command],
            started.elapsed()
        )
    );
    drop(broker);
    let failed = results.failed();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} stages failed: {}",
            failed.len(),
            results.verdicts.len(),
            failed.join(", ")
        ))
    }
}

/// The floor and signal latency in two interleaved halves, so a drift of the broker over the
/// run hits both alike: the floor, every signal, the first of each test, the later ones.
async fn latency_stage(
    brokers: &str,
    samples: usize,
    warmup: usize,
) -> Result<[Samples; 4], String> {
    let half = samples.div_ceil(2);
    let (mut floor, mut all, mut first, mut later) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=2 {
        eprintln!("livecheck-bench: floor, half {round}");
        floor.push(floor::run(brokers, half, warmup).await?);
        eprintln!("livecheck-bench: signal latency, half {round}");
        let latency = latency::run(brokers, half, warmup).await?;
        all.push(latency.all);
        first.push(latency.first);
        later.push(latency.later);
    }
    Ok([floor, all, first, later].map(Samples::merge))
}
