//! Worker processes in one consumer group, killed and started again, and what their JSON logs
//! and metrics say: who owns which partition, which partitions the orphaned-partition alarm
//! named.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use livecheck::transport::kafka::KafkaConfig;

/// Worker processes in one group, one slot per worker; a slot's process can be killed and
/// started again (a new incarnation, with a log of its own). Dropping the fleet kills them all.
#[derive(Debug)]
pub struct Fleet {
    binary: &'static str,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    dir: PathBuf,
    slots: Vec<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    child: Option<Child>,
    logs: Vec<PathBuf>,
}

impl Fleet {
    /// The fleet of `binary` workers on `config`'s topics and group, each started with `extra`
    /// arguments and `envs`, their logs in `dir`; none started yet.
    pub fn new(
        binary: &'static str,
        config: &KafkaConfig,
        extra: &[&str],
        envs: Vec<(String, String)>,
        dir: &Path,
    ) -> Fleet {
        let mut args: Vec<String> = [
            "--brokers",
            &config.brokers,
            "--group-id",
            &config.group_id,
            "--tests-topic",
            &config.topics.tests,
            "--bus-topic",
            &config.topics.bus,
            "--report-topic",
            &config.topics.reports,
            "--partitions",
            &config.partitions.to_string(),
            // Several workers on one host: each takes a free port for its status page.
            "--web-bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Fleet {
            binary,
            args,
            envs,
            dir: dir.to_owned(),
            slots: Vec::new(),
        }
    }

    /// Starts (or starts again) the worker of `slot`.
    pub fn spawn(&mut self, slot: usize) {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Slot::default);
        }
        let s = &mut self.slots[slot];
        assert!(s.child.is_none(), "worker {slot} is running");
        let log = self
            .dir
            .join(format!("worker-{slot}-{}.log", s.logs.len() + 1));
        let child = Command::new(self.binary)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn,livecheck=info")
            .env_remove("LIVECHECK_BROKERS")
            .stdin(Stdio::null())
            // One line per report: kept beside the log, for a reader of kept logs.
            .stdout(std::fs::File::create(log.with_extension("out")).expect("create a file"))
            .stderr(std::fs::File::create(&log).expect("create a worker log"))
            .spawn()
            .expect("start a worker process");
        s.child = Some(child);
        s.logs.push(log);
    }

    /// SIGKILLs the worker of `slot`.
    pub fn kill(&mut self, slot: usize) {
        if let Some(mut child) = self.slots[slot].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The slots whose process is running.
    pub fn live(&mut self) -> Vec<usize> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| {
                let running = s
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
                running.then_some(i)
            })
            .collect()
    }

    /// What each live worker owns now, as its log says (`None`: no assignment yet).
    pub fn ownership(&mut self) -> Vec<(usize, Option<Vec<i32>>)> {
        self.live()
            .into_iter()
            .map(|slot| {
                let log = self.slots[slot].logs.last().expect("a log");
                (slot, current_assignment(&read(log)))
            })
            .collect()
    }

    /// Polls the logs until `settled` holds for the live workers' ownership, or `within` passes.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        settled: impl Fn(&[(usize, Option<Vec<i32>>)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if settled(&self.ownership()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The workers' "orphaned partitions" alarms (WARN or ERROR log events, in every log of
    /// every incarnation): how many, and the partitions they named.
    pub fn detections(&self) -> (usize, std::collections::BTreeMap<i32, i64>) {
        let mut count = 0;
        let mut partitions = std::collections::BTreeMap::new();
        for log in self.slots.iter().flat_map(|s| &s.logs) {
            let (n, named) = orphan_alarms(&read(log));
            count += n;
            for (partition, at) in named {
                let first = partitions.entry(partition).or_insert(at);
                *first = (*first).min(at);
            }
        }
        (count, partitions)
    }

    /// The value of metric `name` (its first series) the worker of `slot` exports now (`None`
    /// if it is not up or does not say).
    pub async fn metric(&self, slot: usize, name: &str) -> Option<f64> {
        let log = read(self.slots[slot].logs.last()?);
        let url = status_url(&log)?;
        let response = tokio::time::timeout(
            Duration::from_secs(3),
            reqwest::get(format!("{url}metrics")),
        )
        .await
        .ok()?
        .ok()?;
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|line| line.split([' ', '{']).next() == Some(name))
            .find_map(|line| line.rsplit(' ').next().and_then(|v| v.parse().ok()))
    }

    /// The largest `livecheck_orphaned_partitions` a live worker exports (`None` if none does).
    pub async fn orphaned_metric(&mut self) -> Option<f64> {
        let mut best: Option<f64> = None;
        for slot in self.live() {
            if let Some(value) = self.metric(slot, "livecheck_orphaned_partitions").await {
                best = Some(best.map_or(value, |b: f64| b.max(value)));
            }
        }
        best
    }

    /// Copies the logs to `to` (when the run asked to keep them).
    pub fn keep_logs(&self, to: Option<&Path>, label: &str) {
        let Some(to) = to else {
            return;
        };
        let dir = to.join(label);
        let _ = std::fs::create_dir_all(&dir);
        for log in self.slots.iter().flat_map(|s| &s.logs) {
            for file in [log.clone(), log.with_extension("out")] {
                if let Some(name) = file.file_name() {
                    let _ = std::fs::copy(&file, dir.join(name));
                }
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for slot in 0..self.slots.len() {
            self.kill(slot);
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// (level, fields) of each JSON event of a worker's log.
fn json_events(log: &str) -> impl Iterator<Item = (String, serde_json::Value)> + '_ {
    log.lines().filter_map(|line| {
        let mut event = serde_json::from_str::<serde_json::Value>(line).ok()?;
        let level = event["level"].as_str().unwrap_or_default().to_owned();
        Some((level, event["fields"].take()))
    })
}

/// The "orphaned partitions" alarms of one log (WARN or ERROR; the INFO "none any more" is not
/// one): how many, and the partitions they named, each with its first alarm's time (ms since
/// the epoch; 0 where the event has no timestamp).
pub(super) fn orphan_alarms(log: &str) -> (usize, std::collections::BTreeMap<i32, i64>) {
    let mut count = 0;
    let mut partitions = std::collections::BTreeMap::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &event["fields"];
        let alarm = matches!(event["level"].as_str(), Some("WARN" | "ERROR"))
            && fields["message"]
                .as_str()
                .is_some_and(|m| m.contains("orphaned partitions"));
        if alarm {
            count += 1;
            let at = event["timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(0, |t| t.timestamp_millis());
            for partition in partition_list(fields["partitions"].as_str()) {
                partitions.entry(partition).or_insert(at);
            }
        }
    }
    (count, partitions)
}

/// `[0, 1, 2]` (a field logged with `?partitions`) as numbers.
fn partition_list(listed: Option<&str>) -> Vec<i32> {
    listed
        .unwrap_or("[]")
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// The partitions of the tests topic a worker owns at the end of its JSON log: those of its last
/// "partitions assigned" line, none after a "partitions revoked" one; `None` before either.
pub(super) fn current_assignment(log: &str) -> Option<Vec<i32>> {
    let mut current = None;
    for (_, fields) in json_events(log) {
        match fields["message"].as_str() {
            Some("partitions assigned") => {
                current = Some(partition_list(fields["partitions"].as_str()))
            }
            Some("partitions revoked") => current = Some(Vec::new()),
            _ => {}
        }
    }
    current
}

/// `http://127.0.0.1:PORT/` from the worker's "status page at ..." line.
pub(super) fn status_url(log: &str) -> Option<String> {
    let rest = log.split("status page at ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_owned())
}

/// Every partition some worker of `ownership` owns.
pub fn owned_partitions(ownership: &[(usize, Option<Vec<i32>>)]) -> BTreeSet<i32> {
    ownership
        .iter()
        .flat_map(|(_, p)| p.iter().flatten().copied())
        .collect()
}

/// Every worker owns something and together they own every partition.
pub fn split_between_all(
    ownership: &[(usize, Option<Vec<i32>>)],
    workers: usize,
    partitions: i32,
) -> bool {
    ownership.len() == workers
        && ownership
            .iter()
            .all(|(_, p)| p.as_ref().is_some_and(|p| !p.is_empty()))
        && owned_partitions(ownership).len() == partitions as usize
}
