//! `livecheck-bench`: livecheck measured against the Kafka floor and against Faust's LiveCheck,
//! on one broker, in one run, printed as one table.
//!
//! ```sh
//! cargo run --release -p bench                 # everything, ~2.5 min on 2 cores (docs/benchmarks.md)
//! cargo run --release -p bench -- --quick      # scaled down, ~40 s: does it all run?
//! cargo run --release -p bench -- --help       # sizes, --brokers, --only, --no-faust
//! ```
//!
//! It starts tansu on a free loopback port (the integration tests' harness; or takes
//! `--brokers`), then measures:
//!
//! 1. the floor: a bare rdkafka produce → consume round trip with livecheck's client settings
//!    (`floor.rs`);
//! 2. signal latency: `Signal::send` in a service → `wait` returns in the case (`latency.rs`);
//! 3. throughput of one worker, three signals per test, default `test_concurrency`
//!    (`throughput.rs`);
//! 4. RSS of a worker process with 100,000 tests in flight, and after their signals expired
//!    (`memory.rs`);
//! 5. service-side cost of `maybe_trigger` at probability 0 and of attaching test headers
//!    (`micro.rs`), and of a sampled request — `maybe_trigger` at probability 1 and `send` —
//!    with the broker up, stopped, and stopped with the queue full (`request.rs`);
//! 6. Faust's LiveCheck on the same workloads and broker (`faust.rs`, `bench/faust/`).
//!
//! Not in the default run: `--only soak`, a worker's RSS under a steady load for 30 minutes
//! (`soak.rs`; `--soak-duration 2m` for a smoke run).

mod cases;
mod faust;
mod floor;
mod latency;
mod memory;
mod micro;
mod request;
mod setup;
mod soak;
mod stats;
mod throughput;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use livecheck_tests::broker::{find_tansu, Broker};

use crate::stats::Samples;

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
    /// Tests of the throughput run.
    #[arg(long, default_value_t = 100_000)]
    tests: u64,
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
    /// Tests per second.
    Throughput,
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

/// Everything measured; `None` where skipped.
#[derive(Debug, Default)]
struct Results {
    floor: Option<Samples>,
    latency: Option<Samples>,
    latency_first: Option<Samples>,
    latency_later: Option<Samples>,
    throughput: Option<throughput::Throughput>,
    memory: Option<memory::Memory>,
    memory_fixed_glibc: Option<memory::Memory>,
    micro: Option<micro::Micro>,
    request: Option<request::RequestPath>,
    soak: Option<soak::Soak>,
    faust: Option<Result<faust::FaustResult, String>>,
}

async fn bench(options: Options) -> Result<(), String> {
    let started = Instant::now();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let load_before = load_average();
    let (broker, brokers, broker_name) = match &options.brokers {
        Some(brokers) => (None, brokers.clone(), format!("external broker {brokers}")),
        None => {
            let broker = tokio::task::spawn_blocking(Broker::start)
                .await
                .map_err(|e| format!("start tansu: {e}"))?;
            let bootstrap = broker.bootstrap();
            let name = format!(
                "{} on {bootstrap}, memory storage, started by the benchmark",
                tansu_version()
            );
            (Some(broker), bootstrap, name)
        }
    };
    eprintln!("livecheck-bench: broker: {broker_name}");
    // Its CPU time is read around the throughput runs (only for a broker started here).
    let broker_pid = broker.as_ref().and_then(|_| stats::broker_pid(&brokers));
    let mut results = Results::default();

    if options.wants(Part::Service) {
        eprintln!("livecheck-bench: service-side cost");
        let iterations = options.micro_iterations;
        results.micro = Some(
            tokio::task::spawn_blocking(move || micro::run(iterations))
                .await
                .map_err(|e| e.to_string())?,
        );
        eprintln!(
            "livecheck-bench: a sampled request, {} with the broker up, stopped, and stopped with a full queue",
            options.requests
        );
        results.request = Some(request::run(&brokers, options.requests).await?);
    }
    if options.wants(Part::Latency) {
        // Two interleaved halves, so a drift of the broker over the run hits both alike.
        let half = options.samples.div_ceil(2);
        let (mut floor, mut all, mut first, mut later) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 1..=2 {
            eprintln!("livecheck-bench: floor, half {round}");
            floor.push(floor::run(&brokers, half, options.warmup).await?);
            eprintln!("livecheck-bench: signal latency, half {round}");
            let latency = latency::run(&brokers, half, options.warmup).await?;
            all.push(latency.all);
            first.push(latency.first);
            later.push(latency.later);
        }
        results.floor = Some(Samples::merge(floor));
        results.latency = Some(Samples::merge(all));
        results.latency_first = Some(Samples::merge(first));
        results.latency_later = Some(Samples::merge(later));
    }
    // Faust before livecheck's throughput and memory runs, so that the broker holds about as
    // little when each throughput run starts (tansu's fetches slow down as it fills).
    if options.wants(Part::Faust) {
        let log = faust_log();
        eprintln!(
            "livecheck-bench: Faust LiveCheck, {} tests (its log: {})",
            options.faust_tests,
            log.display()
        );
        results.faust = Some(
            faust::run(
                &brokers,
                options.faust_tests,
                options.faust_samples,
                &log,
                broker_pid,
            )
            .await,
        );
    }

    if options.wants(Part::Throughput) {
        eprintln!("livecheck-bench: throughput, {} tests", options.tests);
        results.throughput = Some(throughput::run(&brokers, options.tests, broker_pid).await?);
    }
    if options.wants(Part::Memory) {
        eprintln!(
            "livecheck-bench: memory, {} tests in flight",
            options.memory_tests
        );
        let expires = Duration::from_secs(options.memory_expires);
        results.memory = Some(memory::run(&brokers, options.memory_tests, expires, None).await?);
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            eprintln!("livecheck-bench: memory again, glibc's malloc thresholds fixed");
            let tunables = Some(memory::FIXED_GLIBC_THRESHOLDS);
            results.memory_fixed_glibc =
                Some(memory::run(&brokers, options.memory_tests, expires, tunables).await?);
        }
    }
    if options.wants(Part::Soak) {
        eprintln!(
            "livecheck-bench: soak, {} tests/s for {:?}, test_expires {:?}",
            options.soak_rate, options.soak_duration, options.soak_expires
        );
        results.soak = Some(
            soak::run(
                &brokers,
                soak::SoakOptions {
                    rate: options.soak_rate,
                    duration: options.soak_duration,
                    sample: options.soak_sample,
                    expires: options.soak_expires,
                },
            )
            .await?,
        );
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let machine = format!(
        "{}; load average {load_before} at the start, {} at the end",
        machine(),
        load_average()
    );
    println!(
        "{}",
        render(
            &results,
            &options,
            &[&date, &broker_name, &machine, &command],
            started.elapsed()
        )
    );
    Ok(())
}

fn faust_log() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let _ = std::fs::create_dir_all(&target);
    std::fs::canonicalize(&target)
        .unwrap_or(target)
        .join("bench-faust.log")
}

fn tansu_version() -> String {
    std::process::Command::new(find_tansu())
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "tansu".to_owned())
}

/// `/proc/cpuinfo`'s model name and the number of CPUs, and the kernel.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("Linux {}", k.trim()))
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| format!(", {:.0} GB RAM", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpus} × {cpu}{memory}, {kernel}")
}

/// The 1-minute load average (`/proc/loadavg`): other processes share the machine.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "**missed**"
    }
}

/// The table, in Markdown.
fn render(r: &Results, options: &Options, about: &[&str; 4], took: Duration) -> String {
    let [date, broker, machine, command] = about;
    let mut out = String::new();
    let _ = writeln!(out, "## livecheck-bench, {date}\n");
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(out, "- broker: {broker}");
    let _ = writeln!(out, "- machine: {machine}");
    let _ = writeln!(out, "- whole run: {:.0} s\n", took.as_secs_f64());
    let faust_ok = r.faust.as_ref().and_then(|f| f.as_ref().ok());
    let faust_name = faust_ok.map_or_else(
        || "Faust LiveCheck".to_owned(),
        |f| format!("Faust {} (aiokafka {})", f.faust_streaming, f.aiokafka),
    );
    let table = r.floor.is_some()
        || r.throughput.is_some()
        || r.memory.is_some()
        || r.micro.is_some()
        || r.request.is_some()
        || r.faust.is_some();
    if table {
        let _ = writeln!(
            out,
            "| measure | livecheck | floor: bare rdkafka | {faust_name} | target | |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
    }
    let dash = "—";

    if let (Some(floor), Some(latency)) = (&r.floor, &r.latency) {
        let f = floor.p50_p90_p99_ms();
        let l = latency.p50_p90_p99_ms();
        let faust_latency = faust_ok.and_then(|f| f.latency.as_ref());
        let faust = faust_latency.map(|f| [f.p50_ms, f.p90_ms, f.p99_ms]);
        for (i, name) in ["p50", "p90", "p99"].into_iter().enumerate() {
            let ratio = l[i] / f[i];
            let (target, verdict) = match name {
                "p90" => (dash.to_owned(), ""),
                _ => ("≤ 1.2 × floor".to_owned(), yes_no(ratio <= 1.2)),
            };
            let _ = writeln!(
                out,
                "| signal latency {name} (send → wait returns) | {:.2} ms ({ratio:.2} × floor) | {:.2} ms | {} | {target} | {verdict} |",
                l[i],
                f[i],
                faust.map_or(dash.to_owned(), |f| format!("{:.2} ms", f[i])),
            );
        }
    }
    if let Some(t) = &r.throughput {
        let faust = faust_ok.and_then(|f| f.throughput.as_ref());
        let ours = t.tests_per_sec();
        let (faust_cell, target_cell, verdict) = match faust {
            Some(f) => {
                let factor = ours / f.tests_per_sec;
                (
                    format!("{:.0}", f.tests_per_sec),
                    format!("≥ 20 × Faust (here {factor:.0} ×)"),
                    yes_no(factor >= 20.0 && t.false_timeouts == 0),
                )
            }
            None => (dash.to_owned(), "≥ 20 × Faust".to_owned(), ""),
        };
        let _ = writeln!(
            out,
            "| tests/s, one worker, 3 signals per test | {ours:.0} | {dash} | {faust_cell} | {target_cell} | {verdict} |"
        );
        let _ = writeln!(
            out,
            "| signals/s (3 per test) | {:.0} | {dash} | {} | | |",
            3.0 * ours,
            faust.map_or(dash.to_owned(), |f| format!("{:.0}", 3.0 * f.tests_per_sec))
        );
        let _ = writeln!(
            out,
            "| false timeouts (TIMEOUT before the wait's 30 s) | {} of {} | {dash} | {} | 0 | {} |",
            t.false_timeouts,
            t.tests,
            faust.map_or(dash.to_owned(), |f| format!(
                "{} of {}",
                f.false_timeouts, f.tests
            )),
            yes_no(t.false_timeouts == 0)
        );
        let cores = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"));
        let _ = writeln!(
            out,
            "| CPU during the run, in cores: the process (worker and service), the broker | {}, {} | {dash} | {} | | |",
            cores(t.own_cores),
            cores(t.broker_cores),
            faust_ok.map_or(dash.to_owned(), |f| format!(
                "{}, {}",
                cores(f.own_cores),
                cores(f.broker_cores)
            )),
        );
        let _ = writeln!(
            out,
            "| outcomes | {} PASS, {} TIMEOUT, {} other | {dash} | {} | | |",
            t.passed,
            t.timeouts,
            t.others,
            faust.map_or(dash.to_owned(), |f| format!(
                "{} PASS, {} TIMEOUT, {} other, {} unreported",
                f.passed,
                f.timeouts,
                f.others,
                f.tests - f.reported
            )),
        );
    }
    if let Some(m) = &r.memory {
        let grown = m.in_flight_kib.saturating_sub(m.baseline_kib);
        let peak = m
            .in_flight_kib
            .max(m.done_kib)
            .saturating_sub(m.baseline_kib);
        let left = m.expired_kib.saturating_sub(m.baseline_kib);
        let _ = writeln!(
            out,
            "| worker RSS, {} tests in flight | {:.0} MB (baseline {:.0} MB; {:.1} KB per test) | {dash} | {dash} | < 200 MB | {} |",
            m.tests,
            mb(m.in_flight_kib),
            mb(m.baseline_kib),
            grown as f64 * 1.024 / m.tests as f64,
            yes_no(mb(m.in_flight_kib) < 200.0)
        );
        let _ = writeln!(
            out,
            "| worker RSS, all passed ({} signals held) | {:.0} MB | {dash} | {dash} | | |",
            m.done_stored,
            mb(m.done_kib)
        );
        let _ = writeln!(
            out,
            "| worker RSS, signals expired (`test_expires` {} s; {} left) | {:.0} MB ({:.0} MB above baseline, {:.0} % of the peak's growth) | {dash} | {dash} | near baseline | {} |",
            m.expires.as_secs(),
            m.expired_stored,
            mb(m.expired_kib),
            mb(left),
            100.0 * left as f64 / peak.max(1) as f64,
            // "Near": no signal left, and at most a quarter of the peak's growth still held.
            yes_no(m.expired_stored == 0 && left * 4 <= peak)
        );
    }
    if let Some(m) = &r.memory_fixed_glibc {
        let _ = writeln!(
            out,
            "| the same, glibc's malloc thresholds fixed (in flight {:.0} MB, all passed {:.0} MB) | {:.0} MB ({:.0} MB above baseline) | {dash} | {dash} | | |",
            mb(m.in_flight_kib),
            mb(m.done_kib),
            mb(m.expired_kib),
            mb(m.expired_kib.saturating_sub(m.baseline_kib)),
        );
    }
    if let Some(micro) = &r.micro {
        let _ = writeln!(
            out,
            "| `maybe_trigger` at probability 0 | {:.1} ns/call | {dash} | {dash} | < 100 ns | {} |",
            micro.maybe_trigger_ns,
            yes_no(micro.maybe_trigger_ns < 100.0)
        );
        let _ = writeln!(
            out,
            "| `attach_test_headers` in `with_test` (new header list included) | {:.0} ns/call (the empty list alone: {:.0} ns) | {dash} | {dash} | < 1 µs | {} |",
            micro.attach_headers_ns,
            micro.empty_headers_ns,
            yes_no(micro.attach_headers_ns < 1000.0)
        );
    }
    if let Some(q) = &r.request {
        for (state, samples) in [
            ("broker up", &q.up),
            ("broker stopped (queued)", &q.down),
            ("broker stopped, queue full (dropped)", &q.full),
        ] {
            let us = |p: f64| samples.percentile(p).as_secs_f64() * 1e6;
            let _ = writeln!(
                out,
                "| a sampled request: `maybe_trigger` (p = 1) + `send`, {state} | p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs | {dash} | {dash} | p99 < 50 µs | {} |",
                us(50.0),
                us(99.0),
                us(99.9),
                yes_no(us(99.0) < 50.0)
            );
        }
    }
    let _ = writeln!(out);
    if let Some(q) = &r.request {
        let _ = writeln!(
            out,
            "- a sampled request: {} requests timed one by one in each state; the full queue ({} messages) dropped {} of their {} messages; {} dropped in the other two states.",
            q.requests,
            request::SMALL_QUEUE,
            q.full_dropped,
            2 * q.requests,
            q.other_dropped
        );
    }
    if let (Some(floor), Some(latency)) = (&r.floor, &r.latency) {
        let _ = writeln!(
            out,
            "- latency: {} round trips and {} signals, one at a time, in two interleaved halves; nearest-rank percentiles.",
            floor.len(),
            latency.len()
        );
    }
    if let (Some(first), Some(later)) = (&r.latency_first, &r.latency_later) {
        let [f50, _, f99] = first.p50_p90_p99_ms();
        let [l50, _, l99] = later.p50_p90_p99_ms();
        let _ = writeln!(
            out,
            "- latency by signal: first of a test p50 {f50:.2} ms, p99 {f99:.2} ms ({} signals); second and third p50 {l50:.2} ms, p99 {l99:.2} ms ({}).",
            first.len(),
            later.len()
        );
    }
    if let Some(t) = &r.throughput {
        let _ = writeln!(
            out,
            "- throughput: {} tests in {:.1} s (the service had sent them all after {:.1} s){}.",
            t.tests,
            t.elapsed.as_secs_f64(),
            t.service_elapsed.as_secs_f64(),
            t.thirds.map_or_else(String::new, |(first, last)| format!(
                "; {first:.0} tests/s over the first third of the reports, {last:.0} over the last"
            ))
        );
    }
    if let Some(m) = &r.memory {
        let _ = writeln!(
            out,
            "- memory: a worker process with `test_concurrency` = {}, {} signals stored (waited for) in flight; VmRSS. The second run sets `GLIBC_TUNABLES={}`.",
            m.tests,
            m.in_flight_stored,
            memory::FIXED_GLIBC_THRESHOLDS
        );
    }
    match &r.faust {
        Some(Ok(f)) => {
            if let Some(t) = &f.throughput {
                let _ = writeln!(
                    out,
                    "- Faust: {} tests in {:.1} s; latency from {} signals; fetch_max_wait_ms 5 (Faust's 1500 lowered), linger 0.",
                    t.tests,
                    t.elapsed_s,
                    f.latency.as_ref().map_or(0, |l| l.samples)
                );
            }
            if let Some(error) = &f.error {
                let _ = writeln!(out, "- Faust failed: {error}");
            }
        }
        Some(Err(error)) => {
            let _ = writeln!(out, "- Faust did not run: {error}");
        }
        None => {}
    }
    if options.quick {
        let _ = writeln!(out, "- `--quick`: sizes scaled down; not figures to quote.");
    }
    if let Some(soak) = &r.soak {
        let _ = writeln!(out, "\n{}", soak.render());
    }
    out
}
