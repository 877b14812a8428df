//! Percentiles of latency samples, and the memory and CPU readings of a process.
//!
//! Used by every measurement of `livecheck-bench` (`cargo run --release -p bench`).

use std::time::Duration;

/// Latency samples, summarized as percentiles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    /// Sorts `samples`.
    pub(crate) fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Samples { sorted: samples }
    }

    /// All the samples of `parts` together.
    pub(crate) fn merge(parts: Vec<Samples>) -> Self {
        Samples::new(parts.into_iter().flat_map(|p| p.sorted).collect())
    }

    /// Number of samples.
    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `p`-th percentile (nearest rank), or zero without samples.
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// p50, p90, p99 in milliseconds.
    pub(crate) fn p50_p90_p99_ms(&self) -> [f64; 3] {
        [50.0, 90.0, 99.0].map(|p| ms(self.percentile(p)))
    }
}

/// A duration in milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU time (user + system, all threads) a process has used, in seconds: `/proc/PID/stat`
/// (`"self"` for this process), or `None` where it cannot be read.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    // utime and stime are the 14th and 15th fields; the 3rd is the first after the name.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // In clock ticks of USER_HZ, which is 100 on Linux.
    Some((utime + stime) / 100.0)
}

/// CPU used by a process over a stretch of wall time, in cores (1.0 = one core all along).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMeter {
    pid: Option<u32>,
    cpu: Option<f64>,
    at: std::time::Instant,
}

impl CpuMeter {
    /// Starts measuring process `pid` (nothing with `None`).
    pub(crate) fn start(pid: Option<u32>) -> Self {
        let cpu = match pid {
            Some(pid) => cpu_seconds(&pid.to_string()),
            None => None,
        };
        CpuMeter {
            pid,
            cpu,
            at: std::time::Instant::now(),
        }
    }

    /// Cores used since the start.
    pub(crate) fn cores(&self) -> Option<f64> {
        Some(self.seconds()? / self.at.elapsed().as_secs_f64())
    }

    /// CPU seconds used since the start (in clock ticks: 10 ms steps).
    pub(crate) fn seconds(&self) -> Option<f64> {
        let now = cpu_seconds(&self.pid?.to_string())?;
        Some(now - self.cpu?)
    }
}

/// The CPU time this process has used, all its threads (also those that ended), to the
/// nanosecond: `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`. `None` where it cannot be read.
pub(crate) fn process_cpu() -> Option<Duration> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    {
        /// `struct timespec` on 64-bit Linux: `time_t` and `long` are both 64 bits.
        #[repr(C)]
        struct Timespec {
            tv_sec: i64,
            tv_nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: std::os::raw::c_int, tp: *mut Timespec) -> std::os::raw::c_int;
        }
        /// `CLOCK_PROCESS_CPUTIME_ID` of `<time.h>` on Linux.
        const CLOCK_PROCESS_CPUTIME_ID: std::os::raw::c_int = 2;
        let mut now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable `struct timespec`; the call writes only it.
        let status = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut now) };
        if status != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(now.tv_sec).ok()?,
            u32::try_from(now.tv_nsec).ok()?,
        ))
    }
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    {
        None
    }
}

/// The process listening as the broker `bootstrap` (`host:port`) started by the benchmark: the
/// `tansu` process whose command line names that address.
pub(crate) fn broker_pid(bootstrap: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.contains("tansu") && cmdline.contains(&format!("tcp://{bootstrap}")))
                .then_some(pid)
        })
}

/// This process's resident set size in KiB (`VmRSS` of `/proc/self/status`), or 0 where that
/// file does not exist.
pub(crate) fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples = Samples::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(samples.percentile(50.0), Duration::from_millis(50));
        assert_eq!(samples.percentile(99.0), Duration::from_millis(99));
        assert_eq!(samples.percentile(100.0), Duration::from_millis(100));
        assert_eq!(Samples::default().percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn process_cpu_counts_work_done() {
        let Some(before) = process_cpu() else { return };
        // Spin until the clock moved by 5 ms of CPU (a broken clock never does).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut spins = 0u64;
        loop {
            for _ in 0..10_000 {
                spins = std::hint::black_box(spins + 1);
            }
            let now = process_cpu().expect("read once, readable again");
            if now - before >= Duration::from_millis(5) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the CPU clock stands still"
            );
        }
    }

    #[test]
    fn reads_own_rss() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(rss_kib() > 0);
        }
    }
}
