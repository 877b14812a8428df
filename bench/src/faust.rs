//! The Faust baseline: runs `bench/faust/run.sh` (a venv with faust-streaming 0.15.3, then
//! `bench_faust.py`) on the same broker, and reads the `FAUST_RESULT {json}` line it prints.
//!
//! Faust's own output (it logs a traceback for every TIMEOUT) goes to a log file, whose path is
//! printed. Part of `cargo run --release -p bench`; `--no-faust` skips it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::stats::CpuMeter;

/// What `bench_faust.py` measured.
#[derive(Debug, Deserialize)]
pub(crate) struct FaustResult {
    /// faust-streaming's version.
    pub(crate) faust_streaming: String,
    /// aiokafka's version.
    pub(crate) aiokafka: String,
    /// The signal latency run.
    pub(crate) latency: Option<FaustLatency>,
    /// The throughput run.
    pub(crate) throughput: Option<FaustThroughput>,
    /// Why a run failed.
    pub(crate) error: Option<String>,
    /// Cores Faust's process used during its throughput run (measured here, not by Faust).
    #[serde(skip)]
    pub(crate) own_cores: Option<f64>,
    /// Cores the broker used meanwhile.
    #[serde(skip)]
    pub(crate) broker_cores: Option<f64>,
    /// CPU seconds of Faust's process during its throughput run (10 ms clock ticks).
    #[serde(skip)]
    pub(crate) own_cpu: Option<f64>,
    /// CPU seconds of the broker meanwhile.
    #[serde(skip)]
    pub(crate) broker_cpu: Option<f64>,
}

impl FaustResult {
    /// CPU per test of Faust's process and of the broker in its throughput run, in µs.
    pub(crate) fn cpu_us_per_test(&self) -> Option<(Option<f64>, Option<f64>)> {
        let tests = self.throughput.as_ref()?.tests.max(1) as f64;
        let per_test = |cpu: Option<f64>| cpu.map(|s| s * 1e6 / tests);
        Some((per_test(self.own_cpu), per_test(self.broker_cpu)))
    }
}

/// Faust's signal latency, in milliseconds.
#[derive(Debug, Deserialize)]
pub(crate) struct FaustLatency {
    /// Signals recorded.
    pub(crate) samples: u64,
    /// Median.
    pub(crate) p50_ms: f64,
    /// 90th percentile.
    pub(crate) p90_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
}

/// Faust's throughput run.
#[derive(Debug, Deserialize)]
pub(crate) struct FaustThroughput {
    /// Tests triggered.
    pub(crate) tests: u64,
    /// Tests reported before the deadline.
    pub(crate) reported: u64,
    /// From the first request to the last report, in seconds.
    pub(crate) elapsed_s: f64,
    /// Tests reported per second.
    pub(crate) tests_per_sec: f64,
    /// PASS.
    pub(crate) passed: u64,
    /// TIMEOUT.
    pub(crate) timeouts: u64,
    /// TIMEOUT before the wait's timeout elapsed.
    pub(crate) false_timeouts: u64,
    /// FAIL or ERROR.
    pub(crate) others: u64,
}

/// The script, next to this crate's manifest.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("faust/run.sh")
}

/// Runs Faust's bench: `tests` tests for throughput, `samples` signals for latency; its output
/// goes to `log`.
pub(crate) async fn run(
    brokers: &str,
    tests: u64,
    samples: usize,
    log: &Path,
    broker_pid: Option<u32>,
) -> Result<FaustResult, String> {
    let script = script();
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new("bash")
        .arg(&script)
        .args(["--brokers", brokers])
        .args(["--tests", &tests.to_string()])
        .args(["--samples", &samples.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut result = None;
    // `run.sh` execs Python: the child's pid is Faust's process.
    let (mut meters, mut cores, mut cpu) = (None, (None, None), (None, None));
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        if line.contains("FAUST_MARK throughput-start") {
            meters = Some((CpuMeter::start(child.id()), CpuMeter::start(broker_pid)));
            continue;
        }
        if line.contains("FAUST_MARK throughput-end") {
            if let Some((own, broker)) = &meters {
                cores = (own.cores(), broker.cores());
                cpu = (own.seconds(), broker.seconds());
            }
            continue;
        }
        // Faust's worker may put terminal escapes before it on the same line.
        match line
            .find("FAUST_RESULT ")
            .map(|at| &line[at + "FAUST_RESULT ".len()..])
        {
            Some(json) => {
                result = Some(
                    serde_json::from_str::<FaustResult>(json)
                        .map_err(|e| format!("bad FAUST_RESULT ({e}): {json}"))?,
                )
            }
            None => eprintln!("faust: {line}"),
        }
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    match result {
        Some(mut result) => {
            (result.own_cores, result.broker_cores) = cores;
            (result.own_cpu, result.broker_cpu) = cpu;
            Ok(result)
        }
        None => Err(format!(
            "{} exited with {status} without a result; see {}",
            script.display(),
            log.display()
        )),
    }
}
