//! Instructions executed by a child process over a stretch of its run, counted by valgrind's
//! callgrind: the CPU figure that a busy, shared machine does not blur.
//!
//! `perf stat -e instructions` would cost nothing, but needs a hardware counter, which virtual
//! machines often lack ([`perf_counter`] says why not here). Under callgrind a process runs some
//! 50 times slower, so the counted runs are small and paced. The child runs under
//! `valgrind --tool=callgrind`; the parent zeroes its counters (`callgrind_control -z`) right
//! before `START` and dumps them (`callgrind_control -d`) right after `END`; the dump's
//! `summary:` line is the instructions of every thread of the process in between. Part of
//! `cargo run --release -p bench`.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// Whether callgrind can be used here; why not.
pub(crate) async fn available() -> Result<(), String> {
    for tool in ["valgrind", "callgrind_control"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !found {
            return Err(format!("no `{tool}` on PATH (install valgrind)"));
        }
    }
    Ok(())
}

/// Why `perf stat -e instructions` gives no count here (checked on `true`).
pub(crate) async fn perf_counter() -> String {
    match Command::new("perf")
        .args(["stat", "-x,", "-e", "instructions", "--", "true"])
        .output()
        .await
    {
        Err(error) => format!("perf: {error}"),
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stderr);
            if text.contains("<not supported>") {
                "perf has no instructions counter here (no PMU in this VM)".to_owned()
            } else if text.contains("<not counted>") || !output.status.success() {
                let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                    .unwrap_or_default();
                format!(
                    "perf stat refused (perf_event_paranoid {})",
                    paranoid.trim()
                )
            } else {
                "perf counts instructions here, but callgrind's count is used".to_owned()
            }
        }
    }
}

/// The command prefix that runs a child named `name` under callgrind, its dumps in `dir`.
pub(crate) fn wrap(dir: &Path, name: &str) -> Vec<String> {
    vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        "--quiet".to_owned(),
        format!("--callgrind-out-file={}", out_file(dir, name).display()),
    ]
}

fn out_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("callgrind.{name}.%p"))
}

/// Zeroes the counters of process `pid` (running under callgrind).
pub(crate) async fn zero(pid: u32) -> Result<(), String> {
    control(pid, "-z").await
}

/// Dumps the counters of process `pid` (a child named `name` started with [`wrap`]`(dir, …)`),
/// and returns the instructions it executed since they were zeroed.
pub(crate) async fn dump(dir: &Path, name: &str, pid: u32) -> Result<u64, String> {
    control(pid, "-d").await?;
    // The first dump of the process: `{out file with %p replaced}.1`.
    let file = dir.join(format!("callgrind.{name}.{pid}.1"));
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no summary line in {}", file.display()))
}

async fn control(pid: u32, flag: &str) -> Result<(), String> {
    let output = Command::new("callgrind_control")
        .args([flag, &pid.to_string()])
        .output()
        .await
        .map_err(|e| format!("callgrind_control: {e}"))?;
    let said = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && said.contains("OK") {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {flag} {pid}: {} {}",
            said.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
