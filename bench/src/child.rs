//! The line protocol between `livecheck-bench` and the child processes whose CPU it measures
//! (the throughput run's worker and service, the floor's load).
//!
//! A child prints `READY` once it is set up (connected, assigned), waits for `START` on its
//! stdin, does its part, and prints `END key=value …` — always with `cpu_ns`, the CPU time the
//! whole process used from `START` to `END` (`CLOCK_PROCESS_CPUTIME_ID`: every thread, to the
//! nanosecond) — or `FAILED reason`. It exits when its stdin closes. Each child is its own
//! process so that its CPU time is its own. Part of `cargo run --release -p bench`.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines, Stdin};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::stats::process_cpu;

/// The `key=value` words of a line.
#[derive(Debug, Default)]
pub(crate) struct Fields(HashMap<String, String>);

impl Fields {
    fn parse<'a>(words: impl Iterator<Item = &'a str>) -> Self {
        Fields(
            words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// The number under `key`.
    pub(crate) fn u64(&self, key: &str) -> Result<u64, String> {
        self.0
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no number {key}= in {:?}", self.0))
    }

    /// The CPU time the child reported.
    pub(crate) fn cpu(&self) -> Result<Duration, String> {
        self.u64("cpu_ns").map(Duration::from_nanos)
    }
}

/// A child process of the benchmark, seen from the parent.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl ChildProcess {
    /// Starts `livecheck-bench {args}` (under the command prefix `wrap`, if any), named `name`
    /// in errors. Its stderr is this process's.
    pub(crate) fn spawn(name: &str, wrap: &[String], args: &[String]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
        let mut command = match wrap.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start the {name} process: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("the {name} process has no stdout"))?;
        Ok(ChildProcess {
            name: name.to_owned(),
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Its process id (while it runs).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits up to `within` for its next line, which must be `word …` (or `FAILED …`, an
    /// error), and returns the line's `key=value` words.
    pub(crate) async fn expect(&mut self, word: &str, within: Duration) -> Result<Fields, String> {
        let name = &self.name;
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .map_err(|_| format!("the {name} process did not say {word} within {within:?}"))?
            .map_err(|e| format!("reading the {name} process: {e}"))?
            .ok_or_else(|| format!("the {name} process exited before {word}"))?;
        let mut words = line.split_whitespace();
        match words.next() {
            Some(first) if first == word => Ok(Fields::parse(words)),
            Some("FAILED") => Err(format!(
                "the {name} process failed: {}",
                line.trim_start_matches("FAILED").trim()
            )),
            _ => Err(format!(
                "expected {word} from the {name} process, got {line:?}"
            )),
        }
    }

    /// Sends it the line `line`.
    pub(crate) async fn send(&mut self, line: &str) -> Result<(), String> {
        let name = &self.name;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("the {name} process's stdin is closed"))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("writing to the {name} process: {e}"))?;
        stdin
            .flush()
            .await
            .map_err(|e| format!("writing to the {name} process: {e}"))
    }

    /// Closes its stdin and waits up to `within` for it to exit, successfully.
    pub(crate) async fn finish(mut self, within: Duration) -> Result<(), String> {
        drop(self.stdin.take());
        let name = &self.name;
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .map_err(|_| format!("the {name} process did not exit within {within:?}"))?
            .map_err(|e| format!("waiting for the {name} process: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the {name} process exited with {status}"))
        }
    }
}

/// The parent, seen from a child: its stdin.
#[derive(Debug)]
pub(crate) struct Parent {
    lines: Lines<BufReader<Stdin>>,
}

impl Parent {
    /// Says `READY` and waits for `START`; returns the CPU time used so far.
    pub(crate) async fn ready() -> Result<(Parent, Duration), String> {
        say("READY");
        let mut parent = Parent {
            lines: BufReader::new(tokio::io::stdin()).lines(),
        };
        match parent.lines.next_line().await {
            Ok(Some(line)) if line.trim() == "START" => {}
            other => return Err(format!("expected START from the parent, got {other:?}")),
        }
        Ok((parent, cpu_now()?))
    }

    /// Waits for the parent to close this process's stdin.
    pub(crate) async fn closed(mut self) {
        while let Ok(Some(_)) = self.lines.next_line().await {}
    }
}

/// The CPU time this process has used.
pub(crate) fn cpu_now() -> Result<Duration, String> {
    process_cpu().ok_or_else(|| "this process's CPU clock cannot be read".to_owned())
}

/// Prints `line` to stdout at once (the parent reads it as it comes).
pub(crate) fn say(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Nanoseconds since the Unix epoch on the wall clock: the one clock parent and children share.
pub(crate) fn unix_ns(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_key_value_words() {
        let fields = Fields::parse("cpu_ns=1500 passed=3 junk name=x".split_whitespace());
        assert_eq!(fields.u64("passed"), Ok(3));
        assert_eq!(fields.cpu(), Ok(Duration::from_nanos(1500)));
        assert!(fields.u64("name").is_err());
        assert!(fields.u64("missing").is_err());
    }
}
