//! Memory over time (a long-running worker must not grow): a worker process fed a steady
//! stream of tests — 100 a second for 30 minutes by default, each with three signals — with
//! `test_expires` 3 h, its RSS sampled every 30 s. The target: at most 60 MB, and flat after the first minutes (memory
//! follows the tests in flight, not rate × `test_expires`).
//!
//! Not part of the default run: `cargo run --release -p bench -- --only soak` (30 min), or
//! `--only soak --soak-duration 2m` for a smoke run. The worker is a child process
//! (`livecheck-bench soak-worker`), so its RSS is its own; this process is the service. The child
//! prints one line per sample: `SAMPLE seconds rss_kib stored_signals reports passed`, and a last
//! one when its stdin closes.

use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use livecheck::transport::kafka::KafkaTransport;
use livecheck::{Case, CaseConfig, WorkerSettings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::cases::{three_signals, FALSE_TIMEOUTS, STEP_1, STEP_2, STEP_3};
use crate::setup::{service_client, unique_config, ChildKafka, Reports, RunningWorker};
use crate::stats::rss_kib;

/// What the soak run is given.
#[derive(Debug, Clone)]
pub(crate) struct SoakOptions {
    /// Tests triggered per second.
    pub(crate) rate: u32,
    /// How long tests are triggered.
    pub(crate) duration: Duration,
    /// How often the worker's RSS is read.
    pub(crate) sample: Duration,
    /// The case's `test_expires`.
    pub(crate) expires: Duration,
}

/// One reading of the worker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// Seconds since the worker was ready.
    pub(crate) seconds: f64,
    /// Its resident set, KiB.
    pub(crate) rss_kib: u64,
    /// Signals in its store.
    pub(crate) stored: u64,
    /// Test reports so far.
    pub(crate) reports: u64,
    /// PASS reports so far.
    pub(crate) passed: u64,
}

/// The series, and what the service did.
#[derive(Debug)]
pub(crate) struct Soak {
    /// What was asked.
    pub(crate) options: SoakOptions,
    /// Tests triggered.
    pub(crate) triggered: u64,
    /// Readings, the last after the service stopped and the last tests finished.
    pub(crate) samples: Vec<Sample>,
    /// Tests and signals the service dropped (must be 0).
    pub(crate) dropped: u64,
}

/// Largest RSS the target allows.
pub(crate) const TARGET_MB: f64 = 60.0;

impl Soak {
    /// The end of the warm-up: the first 5 minutes, or the first third of a shorter run.
    pub(crate) fn warmup(&self) -> Duration {
        Duration::from_secs(300).min(self.options.duration / 3)
    }

    /// The largest RSS seen, MB.
    pub(crate) fn max_mb(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| mb(s.rss_kib))
            .fold(0.0, f64::max)
    }

    /// Least-squares slope of the RSS after the warm-up and while tests were triggered (not the
    /// readings after the load stopped, which would flatten it), in MB per hour, and the growth
    /// it predicts over that window (MB); `None` with fewer than 2 readings there.
    pub(crate) fn slope(&self) -> Option<(f64, f64)> {
        let warm = self.warmup().as_secs_f64();
        let end = self.options.duration.as_secs_f64() + 1.0;
        let after: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|s| s.seconds >= warm && s.seconds <= end)
            .map(|s| (s.seconds / 3600.0, mb(s.rss_kib)))
            .collect();
        if after.len() < 2 {
            return None;
        }
        let n = after.len() as f64;
        let (mx, my) = (
            after.iter().map(|p| p.0).sum::<f64>() / n,
            after.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let var: f64 = after.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if var == 0.0 {
            return None;
        }
        let slope = after.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / var;
        let span = after[after.len() - 1].0 - after[0].0;
        Some((slope, slope * span))
    }

    /// Flat: the growth the slope predicts after the warm-up is under 5 MB.
    pub(crate) fn is_flat(&self) -> bool {
        self.slope().is_some_and(|(_, growth)| growth < 5.0)
    }

    /// The series and the verdict, in Markdown.
    pub(crate) fn render(&self) -> String {
        let o = &self.options;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### Worker memory under a steady load: {} tests/s for {}, `test_expires` {}\n",
            o.rate,
            minutes(o.duration),
            minutes(o.expires)
        );
        let _ = writeln!(
            out,
            "| time | worker RSS | signals stored | tests reported (PASS) |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for s in &self.samples {
            let _ = writeln!(
                out,
                "| {} | {:.1} MB | {} | {} ({}) |",
                minutes(Duration::from_secs_f64(s.seconds)),
                mb(s.rss_kib),
                s.stored,
                s.reports,
                s.passed
            );
        }
        let _ = writeln!(out);
        let last = self.samples.last();
        let _ = writeln!(
            out,
            "- {} tests triggered, {} reported, {} PASS; {} dropped by the service; {} false timeouts.",
            self.triggered,
            last.map_or(0, |s| s.reports),
            last.map_or(0, |s| s.passed),
            self.dropped,
            FALSE_TIMEOUTS.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "- largest RSS {:.1} MB (target ≤ {TARGET_MB:.0} MB: {}).",
            self.max_mb(),
            verdict(self.max_mb() <= TARGET_MB)
        );
        match self.slope() {
            Some((slope, growth)) => {
                let _ = writeln!(
                    out,
                    "- from {} to the end of the load: {slope:+.1} MB per hour, {growth:+.1} MB over that time (flat = under 5 MB: {}).",
                    minutes(self.warmup()),
                    verdict(self.is_flat())
                );
            }
            None => {
                let _ = writeln!(out, "- too few readings after the warm-up for a slope.");
            }
        }
        out
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "**missed**"
    }
}

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// `12m30s`-style.
fn minutes(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) if m % 60 == 0 => format!("{}h", m / 60),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s:02}s"),
    }
}

/// Arguments of the child.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    kafka: ChildKafka,
    /// Seconds between readings.
    #[arg(long)]
    sample_secs: f64,
}

/// Runs the soak: the worker child, and this process triggering tests at the rate.
pub(crate) async fn run(brokers: &str, options: SoakOptions) -> Result<Soak, String> {
    let config = unique_config(brokers, "soak");
    KafkaTransport::new(config.clone())
        .map_err(|e| e.to_string())?
        .ensure_topics()
        .await
        .map_err(|e| format!("topics: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut child = Command::new(exe)
        .arg("soak-worker")
        .args(ChildKafka::command_line(brokers, &config, options.expires))
        .args(["--sample-secs", &options.sample.as_secs_f64().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("start the worker process: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let next = |line: Option<String>| -> Result<Option<Sample>, String> {
        let Some(line) = line else { return Ok(None) };
        parse_sample(&line).map(Some)
    };
    // The first line: the worker is assigned and idle.
    let first = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .map_err(|_| "the worker process was not ready within 120 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let mut samples: Vec<Sample> = next(first)?.into_iter().collect();
    if samples.is_empty() {
        return Err("the worker process exited before it was ready".into());
    }
    report(&samples[0]);

    let service = service_client(&config)?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.rate.max(1)));
    let total = (options.duration.as_secs_f64() * f64::from(options.rate)).round() as u64;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        tokio::select! {
            _ = tick.tick() => {
                service.scope(request(n)).await?;
                n += 1;
            }
            line = lines.next_line() => {
                let line = line.map_err(|e| e.to_string())?;
                let sample = next(line)?.ok_or("the worker process exited")?;
                report(&sample);
                samples.push(sample);
            }
        }
    }
    eprintln!(
        "soak: {n} tests triggered in {:.0} s; waiting for the last ones",
        started.elapsed().as_secs_f64()
    );
    service
        .flush(Duration::from_secs(60))
        .await
        .map_err(|e| format!("flush: {e}"))?;
    // Let the last tests finish (their waits last 30 s at most), then ask for a last reading.
    let drain = tokio::time::sleep(Duration::from_secs(35));
    tokio::pin!(drain);
    loop {
        tokio::select! {
            () = &mut drain => break,
            line = lines.next_line() => {
                let line = line.map_err(|e| e.to_string())?;
                let sample = next(line)?.ok_or("the worker process exited")?;
                report(&sample);
                samples.push(sample);
            }
        }
    }
    drop(stdin);
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .map_err(|_| "the worker process did not stop".to_owned())?
        .map_err(|e| e.to_string())?
    {
        let sample = parse_sample(&line)?;
        report(&sample);
        samples.push(sample);
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the worker process exited with {status}"));
    }
    let reported = samples.last().map_or(0, |s| s.reports);
    if reported != n {
        return Err(format!("{reported} of the {n} tests triggered reported"));
    }
    Ok(Soak {
        options,
        triggered: n,
        samples,
        dropped: service.counters().dropped,
    })
}

/// Request `n` of the service: a test, and its three signals, none waited for.
async fn request(n: u64) -> Result<(), String> {
    let test = three_signals
        .maybe_trigger(format!("soak-{n}"), n)
        .await
        .map_err(|e| format!("trigger: {e}"))?
        .ok_or("probability 1 always samples")?;
    livecheck::with_test(test, async {
        for signal in [&STEP_1, &STEP_2, &STEP_3] {
            signal.send(&n).await.map_err(|e| format!("send: {e}"))?;
        }
        Ok(())
    })
    .await
}

fn report(sample: &Sample) {
    eprintln!(
        "soak: {:>7} worker RSS {:6.1} MB, {:6} signals stored, {:8} tests reported",
        minutes(Duration::from_secs_f64(sample.seconds)),
        mb(sample.rss_kib),
        sample.stored,
        sample.reports
    );
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let bad = || format!("bad line from the worker process: {line:?}");
    let mut words = line.split_whitespace();
    if words.next() != Some("SAMPLE") {
        return Err(bad());
    }
    let mut number = || {
        words
            .next()
            .and_then(|w| w.parse::<f64>().ok())
            .ok_or_else(bad)
    };
    Ok(Sample {
        seconds: number()?,
        rss_kib: number()? as u64,
        stored: number()? as u64,
        reports: number()? as u64,
        passed: number()? as u64,
    })
}

/// The child: a worker with default settings and the case's `test_expires` as asked, reading
/// its RSS every `sample_secs` until its stdin closes.
pub(crate) async fn worker(args: WorkerArgs) -> Result<(), String> {
    let (mut config, expires) = args.kafka.config();
    // As the `livecheck` binary does: the bus is replayed as far back as the longest expiry.
    config.signal_replay = expires;
    let mut case = CaseConfig::from(three_signals.descriptor());
    case.options.test_expires = expires;
    let reports = Reports::default();
    let worker = RunningWorker::start(
        &config,
        vec![case],
        WorkerSettings::default(),
        reports.clone(),
    )
    .await?;
    let handle = worker.handle.clone();
    let started = Instant::now();
    let sample = || {
        println!(
            "SAMPLE {:.1} {} {} {} {}",
            started.elapsed().as_secs_f64(),
            rss_kib(),
            handle.stored_signals(),
            reports.total(),
            reports.passed()
        );
    };
    sample();
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    let closed = stdin.read_to_end(&mut sink);
    tokio::pin!(closed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(args.sample_secs.max(0.1)));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut closed => break,
            _ = tick.tick() => sample(),
        }
    }
    sample();
    worker.stop().await;
    Ok(())
}
