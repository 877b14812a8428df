//! Verdicts under faults: worker *processes* in one consumer group on a real broker, a
//! steady stream of tests through healthy services, and faults — workers SIGKILLed and started
//! again, a worker joining while tests wait, the broker restarted. The test reads the tests topic
//! (what was triggered) and the report topic (what was reported) back and prints, per scenario:
//! tests triggered / reported / lost / false failures / reported twice.
//!
//! It runs on tansu and on librdkafka's mock cluster; the mock lives in this process, which
//! outlives the killed workers, and the workers are pointed at its port.
//!
//! This file holds the scenarios; the harness (worker fleet, broker host, load, readers, judge)
//! is [`livecheck_tests::faults`], with its own unit tests.
//!
//! ```sh
//! cargo test -p livecheck-tests --test faults -- --nocapture     # prints the tables
//! LIVECHECK_FAULTS_KILLS=10 LIVECHECK_FAULTS_RATE=20 cargo test ... # bigger runs
//! ```
//!
//! Knobs (environment variables, CI-sized defaults): `LIVECHECK_FAULTS_WORKERS` (3),
//! `_PARTITIONS` (8), `_RATE` (orders per second, 12), `_KILLS` (per kill scenario, 5),
//! `_KILL_EVERY` (s, 10), `_SCALE_TESTS` (40), `_SCALE_WAIT` (s, 45), `_OUTAGE` (s, 10), `_DRAIN`
//! (s, 40), `_SCENARIOS` (`kill-1s,kill-8s,scale-out,broker-restart`), `_BROKERS` (`tansu,mock`),
//! `_SEED` (which workers get killed), `_LOGS` (a directory to keep the workers' logs in).
//!
//! What is asserted — the guarantees docs/operations.md ("Under faults") states:
//! - No false failure: with healthy services every test report is PASS. TIMEOUTs of tests that
//!   were in flight while the broker itself was down are true verdicts, counted apart.
//! - Nothing lost (triggered, and no report by the end of the drain), except tests on partitions
//!   of the tests topic that no live worker owns at the end — the broker left them orphaned — and
//!   then the workers' orphaned-partition detection named each of them (log line "orphaned
//!   partitions") within 60 s of its first lost test.
//! - A test is reported more than once only if it was in flight at a fault (a kill, the broker's
//!   outage). A test moved by a rebalance (scale-out) is reported once.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use livecheck::transport::kafka::KafkaConfig;
use livecheck_examples::orders::OrdersConfig;
use livecheck_tests::broker::{Broker, BROKERS_ENV};
use livecheck_tests::cases::{flow, Step, FIRST, SECOND};
use livecheck_tests::faults::{
    judge, now_ms, owned_partitions, split_between_all, FaultWindow, Fleet, Host, Kind, Load,
    Outcome, Readers,
};
use livecheck_tests::services::Services;
use livecheck_tests::support::service_client;

/// The demo binary (`examples/src/bin/livecheck.rs`): the orders case, run with `--brokers`.
const DEMO: &str = env!("CARGO_BIN_EXE_livecheck-demo");
/// The integration-test worker: the `it.flow` case, whose waits the test controls.
const TEST_WORKER: &str = env!("CARGO_BIN_EXE_livecheck-test-worker");

/// Time from the start of the load to the first fault.
const WARM_UP: Duration = Duration::from_secs(5);
/// After the last fault: the drain lasts at least this long, so that re-runs show up.
const QUIET: Duration = Duration::from_secs(20);
/// How long workers may take to split the partitions between them.
const SETTLE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_on_tansu() {
    suite(Kind::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_on_the_mock_cluster() {
    suite(Kind::Mock).await;
}

// ---------------------------------------------------------------------------------------------
// Knobs and scenarios

#[derive(Debug, Clone)]
struct Knobs {
    workers: usize,
    partitions: i32,
    rate: f64,
    kills: usize,
    kill_every: Duration,
    scale_tests: usize,
    scale_wait: Duration,
    outage: Duration,
    drain: Duration,
    scenarios: Vec<String>,
    brokers: Vec<String>,
    seed: u64,
    logs: Option<PathBuf>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(format!("LIVECHECK_FAULTS_{name}")) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("LIVECHECK_FAULTS_{name}={value:?} is not valid")),
        Err(_) => default,
    }
}

fn list(name: &str, default: &str) -> Vec<String> {
    env_or(name, default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Knobs {
    fn from_env() -> Knobs {
        let secs = |name, default| Duration::from_secs_f64(env_or(name, default));
        Knobs {
            workers: env_or("WORKERS", 3usize).max(2),
            partitions: env_or("PARTITIONS", 8),
            rate: env_or("RATE", 12.0),
            kills: env_or("KILLS", 5),
            kill_every: secs("KILL_EVERY", 10.0),
            scale_tests: env_or("SCALE_TESTS", 40),
            scale_wait: secs("SCALE_WAIT", 45.0),
            outage: secs("OUTAGE", 10.0),
            drain: secs("DRAIN", 40.0),
            scenarios: list("SCENARIOS", "kill-1s,kill-8s,scale-out,broker-restart"),
            brokers: list("BROKERS", "tansu,mock"),
            seed: env_or("SEED", now_ms() as u64),
            logs: std::env::var_os("LIVECHECK_FAULTS_LOGS").map(PathBuf::from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scenario {
    /// Workers SIGKILLed one at a time (a random live one every `kill_every`), each started
    /// again `back_after` later.
    Kills { back_after: Duration },
    /// One worker owns everything; tests wait for their second signal; a second worker joins
    /// and the signal is sent once the partitions moved.
    ScaleOut,
    /// The broker (tansu, on its sqlite storage) stopped for `outage` and started again under
    /// a steady load.
    BrokerRestart,
}

impl Scenario {
    fn parse(key: &str) -> Scenario {
        match key {
            "scale-out" => Scenario::ScaleOut,
            "broker-restart" => Scenario::BrokerRestart,
            kill => {
                let secs = kill
                    .strip_prefix("kill-")
                    .and_then(|s| s.strip_suffix('s'))
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "unknown scenario {key:?} in LIVECHECK_FAULTS_SCENARIOS (kill-Ns, \
                             scale-out, broker-restart)"
                        )
                    });
                Scenario::Kills {
                    back_after: Duration::from_secs_f64(secs),
                }
            }
        }
    }

    fn title(&self, knobs: &Knobs) -> String {
        match self {
            Scenario::Kills { back_after } => format!(
                "{} kills, killed worker back after {}",
                knobs.kills,
                secs(*back_after)
            ),
            Scenario::ScaleOut => format!(
                "scale-out: {} tests waiting {}, a worker joins",
                knobs.scale_tests,
                secs(knobs.scale_wait)
            ),
            Scenario::BrokerRestart => format!("broker restart ({} down)", secs(knobs.outage)),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// xorshift64*: which worker gets killed, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

// ---------------------------------------------------------------------------------------------
// The suite: every scenario on one kind of broker, a table, then the assertions

async fn suite(kind: Kind) {
    let knobs = Knobs::from_env();
    if !knobs.brokers.iter().any(|b| b == kind.key()) {
        println!(
            "faults on {}: skipped (LIVECHECK_FAULTS_BROKERS)",
            kind.title()
        );
        return;
    }
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for key in &knobs.scenarios {
        let scenario = Scenario::parse(key);
        let title = scenario.title(&knobs);
        if scenario == Scenario::BrokerRestart {
            // The mock cluster lives in this process and keeps nothing: it cannot restart. Its
            // broker_down/broker_up (a network cut) was tried: the workers came back, but this
            // process's own readers never read again and hung when closed.
            let why = match kind {
                Kind::Mock => Some("the mock cluster cannot be restarted"),
                Kind::Tansu if std::env::var_os(BROKERS_ENV).is_some() => {
                    Some("an external broker is not restarted")
                }
                Kind::Tansu => None,
            };
            if let Some(why) = why {
                println!("faults on {}: {title}: skipped ({why})", kind.title());
                continue;
            }
        }
        let began = Instant::now();
        let mut outcome = match scenario {
            Scenario::ScaleOut => scale_out(kind, &knobs).await,
            _ => orders_scenario(kind, scenario, &knobs).await,
        };
        outcome.title = title;
        outcome.took = began.elapsed();
        println!("{}", outcome.details());
        outcomes.push(outcome);
    }
    let table = table(kind, &knobs, &outcomes, started.elapsed());
    println!("{table}");
    let violations: Vec<String> = outcomes.iter().flat_map(Outcome::violations).collect();
    assert!(
        violations.is_empty(),
        "guarantees broken under faults on {}:\n- {}\n\n{table}",
        kind.title(),
        violations.join("\n- ")
    );
}

fn table(kind: Kind, knobs: &Knobs, outcomes: &[Outcome], took: Duration) -> String {
    let mut out = format!(
        "\nFaults on {} — {} worker processes, {} partitions, {} orders/s, kills every {}, \
         seed {}, {:.0} s in all\n\n\
         | scenario | triggered | reported | lost | of which on orphaned partitions | false \
         failures | true timeouts (signal late) | reported twice | of which not in flight at \
         a fault | \
         attempt > 1 |\n|---|---|---|---|---|---|---|---|---|---|\n",
        kind.title(),
        knobs.workers,
        knobs.partitions,
        knobs.rate,
        secs(knobs.kill_every),
        knobs.seed,
        took.as_secs_f64()
    );
    for o in outcomes {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            o.title,
            o.triggered,
            o.reported,
            o.lost.len(),
            o.lost.iter().filter(|l| l.orphaned).count(),
            o.false_failures.len(),
            o.true_timeouts,
            o.twice,
            o.twice_unexplained.len(),
            o.attempt_above_one,
        ));
    }
    out
}

/// Unique topic and group names of one scenario.
fn kafka_config(bootstrap: &str, partitions: i32) -> KafkaConfig {
    let mut config = livecheck_tests::support::unique_topics(bootstrap, "faults", partitions);
    config.signal_replay = Duration::from_secs(600);
    config
}

// ---------------------------------------------------------------------------------------------
// Scenarios with the orders services: kills and the broker restart

/// Sleeps until `until`, starting again the workers whose restart falls due meanwhile.
async fn run_until(until: Instant, fleet: &mut Fleet, restarts: &mut Vec<(Instant, usize)>) {
    loop {
        let now = Instant::now();
        restarts.sort_by_key(|(at, _)| *at);
        while restarts.first().is_some_and(|(at, _)| *at <= now) {
            let (_, slot) = restarts.remove(0);
            fleet.spawn(slot);
        }
        if now >= until {
            return;
        }
        let next = restarts.first().map_or(until, |(at, _)| (*at).min(until));
        tokio::time::sleep_until(next.into()).await;
    }
}

async fn orders_scenario(kind: Kind, scenario: Scenario, knobs: &Knobs) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::start(kind, scenario == Scenario::BrokerRestart);
    let config = kafka_config(&host.bootstrap(), knobs.partitions);
    let mut orders_config = OrdersConfig::new(host.bootstrap());
    orders_config.orders_topic = Broker::unique("faults-orders");
    orders_config.execution_topic = Broker::unique("faults-execution");
    orders_config.group_prefix = Broker::unique("faults-orders-group");
    orders_config.break_execution = false;
    for topic in [
        &config.topics.tests,
        &config.topics.bus,
        &config.topics.reports,
        &orders_config.orders_topic,
        &orders_config.execution_topic,
    ] {
        host.create_topic(topic, knobs.partitions);
    }

    // The services, in this process: they outlive every worker.
    let services = Services::start(orders_config, &config);
    let base = services.base().to_owned();
    let readers = Readers::start(&host.bootstrap(), &config.topics);
    let mut fleet = Fleet::new(
        DEMO,
        &config,
        &[],
        vec![("ORDERS_URL".into(), base.clone())],
        dir.path(),
    );
    for slot in 0..knobs.workers {
        fleet.spawn(slot);
    }
    let (workers, partitions) = (knobs.workers, knobs.partitions);
    let settled = fleet
        .wait_for(SETTLE, |o| split_between_all(o, workers, partitions))
        .await;
    let mut notes = Vec::new();
    if !settled {
        notes.push(format!(
            "the group had not split the partitions between all workers after {}: {:?}",
            secs(SETTLE),
            fleet.ownership()
        ));
    }

    let load = Load::start(base, knobs.rate);
    let start = Instant::now();
    let origin = now_ms();
    let mut windows = Vec::new();
    let mut faults = Vec::new();
    let mut last_fault = start;
    let mut restarts: Vec<(Instant, usize)> = Vec::new();
    match scenario {
        Scenario::Kills { back_after } => {
            let mut rng = Rng(knobs.seed | 1);
            for i in 0..knobs.kills {
                let at = start + WARM_UP + knobs.kill_every * i as u32;
                run_until(at, &mut fleet, &mut restarts).await;
                let live = fleet.live();
                if live.is_empty() {
                    continue;
                }
                let slot = live[rng.below(live.len())];
                fleet.kill(slot);
                let killed = now_ms();
                windows.push(FaultWindow {
                    from: killed,
                    to: killed,
                });
                faults.push(format!(
                    "kill worker {slot} at +{:.1} s",
                    start.elapsed().as_secs_f64()
                ));
                restarts.push((Instant::now() + back_after, slot));
                last_fault = Instant::now();
            }
            // The last restart is the last fault: its join moves partitions again.
            let end = last_fault + back_after.max(Duration::from_secs(5));
            run_until(end, &mut fleet, &mut restarts).await;
            last_fault = Instant::now();
        }
        Scenario::BrokerRestart => {
            tokio::time::sleep_until((start + WARM_UP * 2).into()).await;
            let down = now_ms();
            tokio::task::block_in_place(|| host.down());
            faults.push(format!(
                "broker down at +{:.1} s",
                start.elapsed().as_secs_f64()
            ));
            tokio::time::sleep(knobs.outage).await;
            tokio::task::block_in_place(|| host.up());
            windows.push(FaultWindow {
                from: down,
                to: now_ms(),
            });
            faults.push(format!(
                "broker up at +{:.1} s",
                start.elapsed().as_secs_f64()
            ));
            last_fault = Instant::now();
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
        Scenario::ScaleOut => unreachable!("scale-out has a function of its own"),
    }
    let (ok, failed) = load.stop().await;
    let cutoff = now_ms();
    let load_end = Instant::now();
    notes.push(format!(
        "orders placed: {ok}, failed calls to the API: {failed}"
    ));

    // Drain: every test triggered by now reported, and long enough after the last fault for
    // re-runs to show up; at most `drain`.
    loop {
        let quiet = last_fault.elapsed() >= QUIET && load_end.elapsed() >= Duration::from_secs(5);
        if (quiet && readers.all_reported(cutoff)) || load_end.elapsed() >= knobs.drain {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ownership = fleet.ownership();
    let orphaned: BTreeSet<i32> = (0..knobs.partitions)
        .filter(|p| !owned_partitions(&ownership).contains(p))
        .collect();
    let mut outcome = judge(&readers.lock(), cutoff, &windows, &orphaned, origin);
    (outcome.detection_lines, outcome.detected_at) = fleet.detections();
    outcome.detected = outcome.detected_at.keys().copied().collect();
    outcome.detection_metric = fleet.orphaned_metric().await;
    outcome.faults = faults;
    notes.push(format!(
        "ownership at the end (worker, partitions): {ownership:?}"
    ));
    outcome.notes.extend(notes);
    fleet.keep_logs(
        knobs.logs.as_deref(),
        &format!("{}-{}", kind.key(), scenario_key(scenario)),
    );
    drop(fleet);
    services.stop();
    readers.stop().await;
    outcome
}

fn scenario_key(scenario: Scenario) -> String {
    match scenario {
        Scenario::Kills { back_after } => format!("kill-{}s", back_after.as_secs_f64()),
        Scenario::ScaleOut => "scale-out".into(),
        Scenario::BrokerRestart => "broker-restart".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Scale-out: tests in flight while a worker joins

async fn scale_out(kind: Kind, knobs: &Knobs) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(kind, false);
    let config = kafka_config(&host.bootstrap(), knobs.partitions);
    for topic in [
        &config.topics.tests,
        &config.topics.bus,
        &config.topics.reports,
    ] {
        host.create_topic(topic, knobs.partitions);
    }
    let readers = Readers::start(&host.bootstrap(), &config.topics);
    let service = service_client(&config);
    let mut fleet = Fleet::new(
        TEST_WORKER,
        &config,
        &["--case", "it.flow"],
        Vec::new(),
        dir.path(),
    );
    let partitions = knobs.partitions;
    fleet.spawn(0);
    let mut notes = Vec::new();
    if !fleet
        .wait_for(SETTLE, |o| split_between_all(o, 1, partitions))
        .await
    {
        notes.push(format!(
            "the first worker did not own every partition after {}",
            secs(SETTLE)
        ));
    }

    // Tests that wait `scale_wait` for their second signal.
    let prefix = Broker::unique("scale");
    let ids: Vec<String> = (0..knobs.scale_tests)
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    let step = |stage| Step {
        stage,
        value: "scale".into(),
    };
    let wait_ms = knobs.scale_wait.as_millis() as u64;
    let triggered_at = Instant::now();
    let origin = now_ms();
    service
        .scope(async {
            for id in &ids {
                flow.trigger(id.clone(), "scale".into(), 2, wait_ms)
                    .await
                    .expect("trigger");
                FIRST.send_to(id, &step(1)).await.expect("first signal");
            }
        })
        .await;
    let all_seen = tokio::time::timeout(Duration::from_secs(30), async {
        while readers.lock().tests.len() < ids.len() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok();
    assert!(all_seen, "the tests never reached the tests topic");
    // Every test running on the first worker (past its handover), holding its first signal:
    // the join below moves tests in flight.
    let running = tokio::time::timeout(Duration::from_secs(30), async {
        while fleet.metric(0, "livecheck_tests_in_flight").await < Some(ids.len() as f64) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .is_ok();
    if !running {
        notes.push("the first worker was not running every test before the join".into());
    }

    // The second worker joins while every test waits; the signal goes once the group split.
    fleet.spawn(1);
    let joined = Instant::now();
    let faults = vec![format!(
        "worker 1 joins at +{:.1} s",
        triggered_at.elapsed().as_secs_f64()
    )];
    let budget = knobs.scale_wait.saturating_sub(triggered_at.elapsed()) / 2;
    if !fleet
        .wait_for(budget, |o| split_between_all(o, 2, partitions))
        .await
    {
        notes.push(format!(
            "the group had not split after {:.1} s: {:?}",
            joined.elapsed().as_secs_f64(),
            fleet.ownership()
        ));
    }
    notes.push(format!(
        "second signals sent at +{:.1} s, {:.1} s after the join",
        triggered_at.elapsed().as_secs_f64(),
        joined.elapsed().as_secs_f64()
    ));
    service
        .scope(async {
            for id in &ids {
                SECOND.send_to(id, &step(2)).await.expect("second signal");
            }
        })
        .await;
    let cutoff = now_ms();

    // Drain past the first owner's deadline, so that a TIMEOUT it would still publish is seen.
    let past_deadline = triggered_at + knobs.scale_wait + Duration::from_secs(5);
    let drain_end = Instant::now() + knobs.drain;
    loop {
        let now = Instant::now();
        if (now >= past_deadline && readers.all_reported(cutoff)) || now >= drain_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ownership = fleet.ownership();
    let orphaned: BTreeSet<i32> = (0..partitions)
        .filter(|p| !owned_partitions(&ownership).contains(p))
        .collect();
    let mut outcome = judge(&readers.lock(), cutoff, &[], &orphaned, origin);
    (outcome.detection_lines, outcome.detected_at) = fleet.detections();
    outcome.detected = outcome.detected_at.keys().copied().collect();
    outcome.detection_metric = fleet.orphaned_metric().await;
    outcome.faults = faults;
    notes.push(format!(
        "ownership at the end (worker, partitions): {ownership:?}"
    ));
    outcome.notes.extend(notes);
    fleet.keep_logs(knobs.logs.as_deref(), &format!("{}-scale-out", kind.key()));
    drop(fleet);
    drop(service);
    readers.stop().await;
    outcome
}
