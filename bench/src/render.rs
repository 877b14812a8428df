//! The table `livecheck-bench` prints, in Markdown, and what it says about the machine and the
//! broker. Part of `cargo run --release -p bench`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use livecheck_tests::broker::find_tansu;

use crate::throughput::Throughput;
use crate::{memory, request, Results};

/// Worker + service CPU per test the target allows, µs.
const CPU_TARGET_US: f64 = 40.0;
/// … and its largest multiple of the floor's.
const CPU_TARGET_FLOOR: f64 = 3.0;

/// The table, in Markdown.
pub(crate) fn render(r: &Results, quick: bool, about: &[&str; 4], took: Duration) -> String {
    let [date, broker, machine, command] = about;
    let mut out = String::new();
    let _ = writeln!(out, "## livecheck-bench, {date}\n");
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(out, "- broker: {broker}");
    let _ = writeln!(out, "- machine: {machine}");
    let _ = writeln!(out, "- whole run: {:.0} s\n", took.as_secs_f64());
    let faust_ok = r.faust.as_ref();
    let faust_name = faust_ok.map_or_else(
        || "Faust LiveCheck".to_owned(),
        |f| format!("Faust {} (aiokafka {})", f.faust_streaming, f.aiokafka),
    );
    let table = r.floor.is_some()
        || r.throughput.is_some()
        || r.instructions.is_some()
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
        cpu_rows(&mut out, r, t);
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
    if r.throughput.is_none() {
        instructions_row(&mut out, r);
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
    cpu_notes(&mut out, r);
    if let Some(m) = &r.memory {
        let _ = writeln!(
            out,
            "- memory: a worker process with `test_concurrency` = {}, {} signals stored (waited for) in flight; VmRSS. The second run sets `GLIBC_TUNABLES={}`.",
            m.tests,
            m.in_flight_stored,
            memory::FIXED_GLIBC_THRESHOLDS
        );
    }
    if let Some(f) = faust_ok {
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
    if quick {
        let _ = writeln!(out, "- `--quick`: sizes scaled down; not figures to quote.");
    }
    if let Some(soak) = &r.soak {
        let _ = writeln!(out, "\n{}", soak.render());
    }
    let _ = writeln!(out, "\nStages:\n");
    for verdict in &r.verdicts {
        let _ = writeln!(out, "- {}", verdict.describe());
    }
    let failed = r.failed();
    let _ = writeln!(
        out,
        "\n{}",
        if failed.is_empty() {
            "Every stage completed.".to_owned()
        } else {
            format!(
                "**{} of {} stages failed.**",
                failed.len(),
                r.verdicts.len()
            )
        }
    );
    out
}

/// The CPU rows of the throughput run: per test, in instructions, in Kafka messages, the
/// broker's; in cores.
fn cpu_rows(out: &mut String, r: &Results, t: &Throughput) {
    let dash = "—";
    let (worker, service) = t.cpu_us_per_test();
    let ours = worker + service;
    let floor = r.floor_load.as_ref();
    let faust = r.faust.as_ref().and_then(|f| f.cpu_us_per_test());
    let floor_cell = floor.map_or_else(
        || dash.to_owned(),
        |f| {
            format!(
                "{:.1} µs (one producer + one consumer, {:.2} messages per test at the same rate)",
                f.cpu_us_per_test(),
                f.messages as f64 / f.tests.max(1) as f64
            )
        },
    );
    let faust_cell = match faust {
        Some((Some(own), _)) => format!("{own:.0} µs, one process ({:.0} × livecheck)", own / ours),
        _ => dash.to_owned(),
    };
    let (target, verdict) = match floor {
        Some(f) => {
            let factor = ours / f.cpu_us_per_test();
            (
                format!("≤ {CPU_TARGET_US:.0} µs and ≤ {CPU_TARGET_FLOOR:.0} × floor (here {factor:.1} ×)"),
                yes_no(ours <= CPU_TARGET_US && factor <= CPU_TARGET_FLOOR),
            )
        }
        None => (
            format!("≤ {CPU_TARGET_US:.0} µs and ≤ {CPU_TARGET_FLOOR:.0} × floor"),
            yes_no(ours <= CPU_TARGET_US),
        ),
    };
    let _ = writeln!(
        out,
        "| CPU per test, worker + service (µs, at the throughput run's {:.0} tests/s) | {ours:.1} µs (worker {worker:.1}, service {service:.1}) | {floor_cell} | {faust_cell} | {target} | {verdict} |",
        t.tests_per_sec()
    );
    instructions_row(out, r);
    let per_test = |n: u64| n as f64 / t.tests.max(1) as f64;
    let _ = writeln!(
        out,
        "| Kafka messages per test (written; the worker reads each back once) | {:.2} (tests {:.2}, bus {:.2}, reports {:.2}) | {} | {dash} | | |",
        t.messages_per_test(),
        per_test(t.messages.tests),
        per_test(t.messages.bus),
        per_test(t.messages.reports),
        floor.map_or_else(
            || dash.to_owned(),
            |f| format!("{:.2} (one topic)", f.messages as f64 / f.tests.max(1) as f64)
        ),
    );
    let broker_us = |cpu: Option<f64>, tests: u64| {
        cpu.map_or_else(
            || "?".to_owned(),
            |s| format!("{:.0} µs", s * 1e6 / tests.max(1) as f64),
        )
    };
    let _ = writeln!(
        out,
        "| broker CPU per test | {} | {} | {} | | |",
        broker_us(t.broker_cpu, t.tests),
        floor.map_or_else(|| dash.to_owned(), |f| broker_us(f.broker_cpu, f.tests)),
        match faust {
            Some((_, Some(broker))) => format!("{broker:.0} µs"),
            _ => dash.to_owned(),
        },
    );
    let cores = |c: Option<f64>| c.map_or_else(|| "?".to_owned(), |c| format!("{c:.2}"));
    let over =
        |cpu: Duration, wall: Duration| Some(cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9));
    let faust_ok = r.faust.as_ref();
    let _ = writeln!(
        out,
        "| CPU during the run, in cores: the worker, the service, the broker | {}, {}, {} | {} | {} | | |",
        cores(over(t.worker_cpu, t.elapsed)),
        cores(over(t.service_cpu, t.service_elapsed)),
        cores(t.broker_cpu.map(|s| s / t.elapsed.as_secs_f64().max(1e-9))),
        floor.map_or_else(
            || dash.to_owned(),
            |f| format!(
                "{}, broker {}",
                cores(over(f.cpu, f.elapsed)),
                cores(f.broker_cpu.map(|s| s / f.elapsed.as_secs_f64().max(1e-9)))
            )
        ),
        faust_ok.map_or(dash.to_owned(), |f| format!(
            "{}, broker {}",
            cores(f.own_cores),
            cores(f.broker_cores)
        )),
    );
}

/// Instructions per test, or why they could not be counted.
fn instructions_row(out: &mut String, r: &Results) {
    let dash = "—";
    match &r.instructions {
        Some(Ok(i)) => {
            let [w, s, f] = i.per_test();
            let _ = writeln!(
                out,
                "| instructions per test, worker + service (callgrind, {} tests at {:.0} tests/s, both sides alike) | {:.0} k (worker {:.0} k, service {:.0} k; {:.1} × floor) | {:.0} k | {dash} | | |",
                i.tests,
                i.rate,
                (w + s) / 1e3,
                w / 1e3,
                s / 1e3,
                (w + s) / f.max(1.0),
                f / 1e3
            );
        }
        Some(Err(why)) => {
            let _ = writeln!(
                out,
                "| instructions per test, worker + service | n/a ({why}) | n/a | {dash} | | |"
            );
        }
        None => {}
    }
}

/// What the CPU rows measured, under the table.
fn cpu_notes(out: &mut String, r: &Results) {
    if r.throughput.is_some() {
        let _ = writeln!(
            out,
            "- CPU: the worker and the service are child processes; each reads its own CPU clock (`CLOCK_PROCESS_CPUTIME_ID`, every thread) at the start and when it is done (the worker at its last report, the service at its last delivery). The broker's and Faust's are `/proc/PID/stat` ticks over their runs."
        );
    }
    if let Some(f) = &r.floor_load {
        let _ = writeln!(
            out,
            "- CPU floor: {} messages the size of a signal produced ({:.0} a second, paced every ms) and consumed by one child process with one `ThreadedProducer` and one `StreamConsumer` on one topic of 8 partitions, livecheck's client settings; {:.2} s of CPU in {:.1} s.",
            f.messages,
            f.rate,
            f.cpu.as_secs_f64(),
            f.elapsed.as_secs_f64()
        );
    }
    if let Some(Ok(i)) = &r.instructions {
        let _ = writeln!(
            out,
            "- instructions: callgrind's count (every thread) between the start and the end of runs of {} tests paced at {:.0} tests/s, livecheck's and the floor's ({:.2} messages per test); {}.",
            i.tests,
            i.rate,
            i.messages.total() as f64 / i.tests.max(1) as f64,
            i.perf
        );
    }
}

/// The workspace's `target` directory (or `CARGO_TARGET_DIR`), where Faust's log and
/// callgrind's dumps go.
pub(crate) fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let _ = std::fs::create_dir_all(&target);
    std::fs::canonicalize(&target).unwrap_or(target)
}

/// `tansu --version`.
pub(crate) fn tansu_version() -> String {
    std::process::Command::new(find_tansu())
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "tansu".to_owned())
}

/// `/proc/cpuinfo`'s model name and the number of CPUs, and the kernel.
pub(crate) fn machine() -> String {
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
pub(crate) fn load_average() -> String {
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
