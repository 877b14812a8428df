//! Verdicts through rebalances and oversized reports, on tansu and on librdkafka's mock cluster
//! (faults first seen under the fault tests).
//!
//! - A scale-out with tests in flight: each test is reported exactly once, PASS, by whoever owns
//!   its partition at the end; the first worker stops the tests it lost (no false TIMEOUT).
//! - The tests moved need a signal sent *before* the move: the new owner finds it by replaying
//!   the bus (the mock cluster answers offsets-for-times with -1; starting at the end lost it).
//! - A report larger than the broker takes is truncated and published; its test is acknowledged
//!   and does not run again after a restart.
//! - Fencing: a worker stops the tests of a partition another worker of its group claimed after
//!   it, and commits nothing of it (tansu does not fence an old owner itself) — only when the
//!   coordinator vouches for the claim: claims naming no member, or a member not in the group,
//!   change nothing (one forged record must not silence a partition).
//! - A hung test is stopped at its case's `max_runtime` with a TIMEOUT report, frees its slot and
//!   does not come back after a restart ("found" 5).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use livecheck::transport::embedded::EmbeddedCluster;
use livecheck::transport::kafka::KafkaConfig;
use livecheck::{Case, CaseConfig, Introspect, State, TestReport};
use livecheck_tests::broker::Broker;
use livecheck_tests::cases::{flow, Step, FIRST, SECOND};
use livecheck_tests::support::{
    plain_consumer, plain_consumer_at, plain_producer, service_client, unique_config, RunningWorker,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

const TESTS: usize = 40;

fn step(stage: u32, value: &str) -> Step {
    Step {
        stage,
        value: value.into(),
    }
}

/// Sends the second stage's signal of every test in `ids`, as a service would.
async fn send_second_stage(service: &livecheck::Client, ids: &[String]) {
    service
        .scope(async {
            for id in ids {
                SECOND.send_to(id, &step(2, "v")).await.unwrap();
            }
        })
        .await;
}

/// Reads reports until `ids` all have one and both workers are idle, then a little more (so a
/// late duplicate would be seen); returns every test report read, by id.
async fn all_reports(
    reports: &StreamConsumer,
    ids: &[String],
    workers: &[&RunningWorker],
    within: Duration,
) -> HashMap<String, Vec<TestReport>> {
    let mut by_id: HashMap<String, Vec<TestReport>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut settle: Option<tokio::time::Instant> = None;
    loop {
        let idle = workers.iter().all(|w| w.handle.stats().in_flight == 0);
        let complete = ids.iter().all(|id| by_id.contains_key(id));
        match (complete && idle, settle) {
            (true, None) => settle = Some(tokio::time::Instant::now() + Duration::from_secs(3)),
            (true, Some(at)) if tokio::time::Instant::now() >= at => return by_id,
            (false, _) => settle = None,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reports missing after {within:?}: {} of {} tests reported",
            by_id.len(),
            ids.len()
        );
        if let Ok(Ok(message)) =
            tokio::time::timeout(Duration::from_millis(200), reports.recv()).await
        {
            let report = livecheck::codec::decode_report(message.payload().unwrap_or_default())
                .expect("report decodes");
            if let Some(test) = &report.test {
                by_id.entry(test.id.clone()).or_default().push(report);
            }
        }
    }
}

/// 40 tests of two stages; the first stage's signal is sent and seen by the only worker; a
/// second worker joins and takes some partitions; then the second stage's signal is sent.
async fn scale_out_with_tests_in_flight(config: KafkaConfig) {
    let cases = vec![CaseConfig::from(flow.descriptor())];
    let first = RunningWorker::start(&config, cases.clone()).await;
    first.wait_assigned(Duration::from_secs(30)).await;
    let reports = plain_consumer_at(&config.brokers, &config.topics.reports);
    let service = service_client(&config);
    let ids: Vec<String> = (0..TESTS).map(|i| format!("moved-{i}")).collect();
    service
        .scope(async {
            for id in &ids {
                flow.trigger(id.as_str(), "v".into(), 2, 60_000)
                    .await
                    .unwrap();
                FIRST.send_to(id, &step(1, "v")).await.unwrap();
            }
        })
        .await;
    // Every test is running on the first worker (after its handover), holding its first signal.
    let received = || {
        let stats = first.handle.stats();
        (stats.signals_received, stats.in_flight)
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        while received().0 < TESTS as u64 || received().1 < TESTS {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the first worker did not run the tests and get their first signals");

    let second = RunningWorker::start(&config, cases).await;
    second.wait_assigned(Duration::from_secs(60)).await;
    // Wait until the first worker's assignment settled too (it lost what the second got).
    let mut assignment = first.transport.assignment();
    let total = config.partitions as usize;
    let mine = second.transport.assignment().borrow().len();
    tokio::time::timeout(
        Duration::from_secs(60),
        assignment.wait_for(|p| p.len() + mine == total),
    )
    .await
    .expect("the first worker's assignment did not settle")
    .unwrap();

    send_second_stage(&service, &ids).await;
    let by_id = all_reports(&reports, &ids, &[&first, &second], Duration::from_secs(120)).await;
    let moved = first.handle.stats().tests_moved;
    let mut twice = Vec::new();
    let mut not_pass = Vec::new();
    for id in &ids {
        let reports = &by_id[id];
        if reports.len() > 1 {
            twice.push(id);
        }
        for r in reports {
            if r.state != State::Pass {
                not_pass.push((id, r.state, r.error.clone()));
            }
        }
    }
    assert!(not_pass.is_empty(), "false failures: {not_pass:?}");
    assert!(twice.is_empty(), "reported twice: {twice:?}");
    assert!(moved > 0, "no test moved: the scenario did not happen");
    println!("{TESTS} tests, {moved} moved to the new worker, each reported once, all PASS");
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_moved_by_a_scale_out_are_reported_once_on_tansu() {
    let broker = Broker::start();
    scale_out_with_tests_in_flight(unique_config(&broker, 4)).await;
}

/// A config of unique topics and group on a mock cluster of its own (`partitions` each), which
/// runs as long as the returned handle.
fn on_the_mock_cluster(
    partitions: i32,
    adjust: impl FnOnce(&mut KafkaConfig),
) -> (KafkaConfig, EmbeddedCluster) {
    let mut config = livecheck_tests::support::unique_topics("", "lc", partitions);
    adjust(&mut config);
    let cluster = EmbeddedCluster::start(&config.topics, partitions).expect("mock cluster");
    config.brokers = cluster.bootstrap().to_owned();
    (config, cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_moved_by_a_scale_out_are_reported_once_on_the_mock_cluster() {
    let (mut config, cluster) = on_the_mock_cluster(4, |_| {});
    config.signal_replay = Duration::from_secs(600);
    scale_out_with_tests_in_flight(config).await;
    drop(cluster);
}

/// A config on a mock cluster of its own with a 1 s heartbeat and a 3 s session: a 3 s handover.
fn with_a_3s_handover() -> (KafkaConfig, EmbeddedCluster) {
    on_the_mock_cluster(2, |config| {
        config.properties = vec![
            ("heartbeat.interval.ms".into(), "1000".into()),
            ("session.timeout.ms".into(), "3000".into()),
        ];
    })
}

/// Starts a worker, triggers the tests `ids` (their signal sent first) once it is assigned, and
/// returns the first of their reports and how long after the assignment it was read.
async fn first_report_after_assignment(
    config: &KafkaConfig,
    ids: &[String],
) -> (TestReport, Duration) {
    let reports = plain_consumer_at(&config.brokers, &config.topics.reports);
    let worker = RunningWorker::start(config, vec![CaseConfig::from(flow.descriptor())]).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let assigned = tokio::time::Instant::now();
    let service = service_client(config);
    service
        .scope(async {
            for id in ids {
                FIRST.send_to(id, &step(1, "v")).await.unwrap();
                flow.trigger(id.as_str(), "v".into(), 1, 30_000)
                    .await
                    .unwrap();
            }
        })
        .await;
    let (report, at) = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let Ok(message) = reports.recv().await else {
                continue;
            };
            let report = livecheck::codec::decode_report(message.payload().unwrap_or_default())
                .expect("report decodes");
            if report.test.as_ref().is_some_and(|t| ids.contains(&t.id)) {
                break (report, tokio::time::Instant::now());
            }
        }
    })
    .await
    .expect("no report within 60 s");
    worker.stop().await;
    assert_eq!(report.state, State::Pass, "{report:?}");
    let runtime = report.runtime.unwrap();
    assert!(
        runtime < 1.0,
        "the test itself is quick (its signal was there): {runtime}s"
    );
    (report, at - assigned)
}

/// A worker given partitions that another member owned before holds their tests for the
/// handover (`session.timeout.ms`, at least 2 x `heartbeat.interval.ms`) before it runs them,
/// so an earlier owner the broker did not fence can stop first (tansu completes a rebalance
/// before its members hear of it; the fault test saw tests reported twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_waits_the_handover_before_it_runs_the_tests_of_partitions_owned_before() {
    let (config, cluster) = with_a_3s_handover();
    // An earlier owner: it runs a test to its report (its claims and progress on the bus, its
    // offsets committed), then leaves.
    let (_, _) = first_report_after_assignment(&config, &["before-0".to_owned()]).await;
    let ids = ["after-0".to_owned(), "after-1".to_owned()];
    let (_, after) = first_report_after_assignment(&config, &ids).await;
    assert!(
        after >= Duration::from_millis(2900),
        "reported {after:?} after the assignment: the handover of 3 s was not kept"
    );
    println!("first test reported {after:?} after the assignment (handover 3 s)");
    drop(cluster);
}

/// The first worker of a fresh group — nobody's claim or progress on the bus, nothing committed,
/// and a broker that rebalances as Kafka does — runs its first tests at once, not a handover
/// later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_groups_first_worker_runs_its_tests_without_the_handover() {
    let (config, cluster) = with_a_3s_handover();
    let ids = ["fresh-0".to_owned(), "fresh-1".to_owned()];
    let (_, after) = first_report_after_assignment(&config, &ids).await;
    assert!(
        after < Duration::from_millis(2900),
        "reported {after:?} after the assignment: the fresh group was held for the handover"
    );
    println!("first test reported {after:?} after the assignment (handover 3 s, not needed)");
    drop(cluster);
}

/// Fencing (tansu completes a rebalance before an old owner hears of it): a worker that reads,
/// on the bus, a claim by another worker of its group made after its own, stops that
/// partition's tests — and commits nothing of it. When the group gives the partition back, its
/// tests run again, once, and find the signals sent before the fence (the bus is replayed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stops_a_partition_another_worker_of_its_group_claimed_after_it() {
    let broker = Broker::start();
    let config = unique_config(&broker, 2);
    let worker = RunningWorker::start(&config, vec![CaseConfig::from(flow.descriptor())]).await;
    assert_eq!(worker.wait_assigned(Duration::from_secs(30)).await, [0, 1]);
    let reports = plain_consumer(&broker, &config.topics.reports);
    let tests = plain_consumer(&broker, &config.topics.tests);
    let bus = plain_consumer(&broker, &config.topics.bus);
    let mut claims = OwnClaims::default();
    let service = service_client(&config);

    // Two-stage tests, running, holding their first signal.
    let ids: Vec<String> = (0..16).map(|i| format!("fenced-{i}")).collect();
    service
        .scope(async {
            for id in &ids {
                FIRST.send_to(id, &step(1, "v")).await.unwrap();
                flow.trigger(id.as_str(), "v".into(), 2, 60_000)
                    .await
                    .unwrap();
            }
        })
        .await;
    let handle = worker.handle.clone();
    let running = |n: usize| {
        let handle = handle.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(30), async {
                while handle.stats().in_flight != n {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await
            .is_ok()
        }
    };
    assert!(running(ids.len()).await, "the tests did not all start");
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while partition_of.len() < ids.len() {
            let message = tests.recv().await.expect("tests topic");
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            partition_of.insert(key, message.partition());
        }
    })
    .await
    .expect("the tests were not all written");
    let fenced: Vec<&String> = ids.iter().filter(|id| partition_of[*id] == 1).collect();
    assert!(
        !fenced.is_empty() && fenced.len() < ids.len(),
        "the tests all went to one partition: {partition_of:?}"
    );

    // Claims after the worker's own that no coordinator vouches for: another group's on
    // partition 0 (not about this group), and this group's on partition 1 naming no member,
    // then a member that is not in the group (one forged record once silenced a
    // partition).
    let claim = |group: &str, member: Option<&str>| livecheck::SignalEvent {
        signal_name: "claim".into(),
        case_name: "__livecheck".into(),
        key: "another-worker".into(),
        value: serde_json::json!({"generation": 1_000_000, "group": group, "member": member}),
    };
    let producer = plain_producer(&broker);
    let write_claim = |partition: i32, claim: livecheck::SignalEvent| {
        let payload = config.codec.encode_signal(&claim);
        let producer = &producer;
        let topic = config.topics.bus.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(partition)
                        .key("another-worker")
                        .payload(&payload),
                    Duration::from_secs(30),
                )
                .await
                .expect("claim produced");
        }
    };
    let group = config.group_id.as_str();
    write_claim(0, claim("another-group", Some("m"))).await;
    write_claim(1, claim(group, None)).await;
    write_claim(1, claim(group, Some("rdkafka-not-a-member"))).await;
    let not_believed = || {
        worker
            .transport
            .snapshot()
            .skipped
            .into_iter()
            .filter(|(topic, reason, _)| *topic == "bus" && *reason == "claim_not_believed")
            .map(|(_, _, n)| n)
            .sum::<u64>()
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        while not_believed() < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the forged claims were not judged");
    assert_eq!(
        *worker.transport.assignment().borrow(),
        [0, 1],
        "a forged claim fenced"
    );
    assert!(running(ids.len()).await, "a forged claim stopped tests");

    // A real member joins the group (for another topic: the range assignor gives it none of
    // ours). A claim of partition 1 naming it, in a generation at least the worker's, is one
    // the coordinator vouches for: the partition is fenced.
    let other = Broker::unique("lc-other");
    broker.create_topic(&other, 1);
    let member: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", &config.group_id)
        .create()
        .expect("member");
    member.subscribe(&[&other]).expect("subscribe");
    let member = Arc::new(member);
    let stop_polling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let polling = tokio::task::spawn_blocking({
        let (member, stop) = (member.clone(), stop_polling.clone());
        move || {
            let until = std::time::Instant::now() + Duration::from_secs(90);
            while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                let _ = member.poll(Duration::from_millis(100));
            }
        }
    });
    let member_id = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(id) = member_id_in_group(&member, group) {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the member did not join");
    // The join's rebalance must be over at the worker before the claim is written: its
    // assignment reads [0, 1] through an eager rebalance, so the sign is the worker's own claim
    // of partition 1 in a newer generation. A claim read while the worker was revoked, or
    // before its new claim, is an earlier owner's and fences nothing (a CI run wrote it too
    // early and waited for a fence in vain).
    let before = claims.generation(&bus, 1, i64::MIN).await;
    claims.generation(&bus, 1, before).await;
    let mut assignment = worker.transport.assignment();
    tokio::time::timeout(
        Duration::from_secs(30),
        assignment.wait_for(|p| *p == [0, 1]),
    )
    .await
    .expect("the worker was not assigned again after the join")
    .unwrap();
    write_claim(1, claim(group, Some(&member_id))).await;
    tokio::time::timeout(Duration::from_secs(20), assignment.wait_for(|p| *p == [0]))
        .await
        .expect("partition 1 was not let go")
        .unwrap();
    assert!(
        running(ids.len() - fenced.len()).await,
        "the fenced partition's tests did not stop"
    );
    assert_eq!(worker.handle.stats().tests_moved, fenced.len() as u64);

    // The member leaves: the group rebalances and gives the worker both partitions again
    // (with new claims of its own).
    stop_polling.store(true, Ordering::Relaxed);
    let _ = polling.await;
    drop(member);
    tokio::time::timeout(
        Duration::from_secs(30),
        assignment.wait_for(|p| *p == [0, 1]),
    )
    .await
    .expect("the group did not give partition 1 back")
    .unwrap();

    send_second_stage(&service, &ids).await;
    let by_id = all_reports(&reports, &ids, &[&worker], Duration::from_secs(60)).await;
    for id in &ids {
        let reports = &by_id[id];
        assert_eq!(reports.len(), 1, "{id} reported {} times", reports.len());
        assert_eq!(reports[0].state, State::Pass, "{:?}", reports[0]);
    }
    println!(
        "{} of {} tests stopped by the fence, run again once its partition came back, all PASS",
        fenced.len(),
        ids.len()
    );
    worker.stop().await;
}

/// The worker's own claims read back from the bus: the highest group generation it claimed
/// each partition in.
#[derive(Default)]
struct OwnClaims {
    generation: HashMap<i32, i64>,
}

impl OwnClaims {
    /// Reads the bus until the worker has claimed `partition` in a generation above `above`;
    /// returns that generation.
    async fn generation(&mut self, bus: &StreamConsumer, partition: i32, above: i64) -> i64 {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(&generation) = self.generation.get(&partition) {
                    if generation > above {
                        return generation;
                    }
                }
                let message = bus.recv().await.expect("bus topic");
                let Ok(signal) =
                    livecheck::codec::Codec::decode_signal(message.payload().unwrap_or_default())
                else {
                    continue;
                };
                if signal.case_name == "__livecheck"
                    && signal.signal_name == "claim"
                    && signal.key != "another-worker"
                {
                    if let Some(generation) = signal.value["generation"].as_i64() {
                        let seen = self
                            .generation
                            .entry(message.partition())
                            .or_insert(i64::MIN);
                        *seen = (*seen).max(generation);
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no claim of partition {partition} above generation {above}"))
    }
}

/// The member id of the test's own consumer in `group`, as the coordinator lists it.
fn member_id_in_group(member: &rdkafka::consumer::BaseConsumer, group: &str) -> Option<String> {
    let list = member
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .ok()?;
    let group = list.groups().iter().find(|g| g.name() == group)?;
    group
        .members()
        .iter()
        // The worker's member ids start with its client id, `livecheck`; this consumer's with
        // librdkafka's default, `rdkafka` (tansu does not describe subscriptions).
        .find(|m| m.id().starts_with("rdkafka-"))
        .map(|m| m.id().to_owned())
}

/// The case of the oversized-report test: fails with an error text of 2 MB.
#[livecheck::case(name = "it.huge", probability = 1.0, warn_stalled_after = "1h")]
async fn huge(size: usize) -> livecheck::Result {
    livecheck::fail!("{}", "x".repeat(size))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_report_is_published_truncated_and_not_run_again() {
    let broker = Broker::start();
    // One partition: the tests after the huge one wait behind its offset.
    let config = unique_config(&broker, 1);
    let cases = vec![
        CaseConfig::from(huge.descriptor()),
        CaseConfig::from(flow.descriptor()),
    ];
    let worker = RunningWorker::start(&config, cases.clone()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let reports = plain_consumer(&broker, &config.topics.reports);
    let service = service_client(&config);
    service
        .scope(async {
            huge.trigger("huge-1", 2_000_000).await.unwrap();
            flow.trigger("after-1", "v".into(), 1, 30_000)
                .await
                .unwrap();
            FIRST.send_to("after-1", &step(1, "v")).await.unwrap();
        })
        .await;
    let ids = ["huge-1", "after-1"].map(String::from);
    let by_id = all_reports(&reports, &ids, &[&worker], Duration::from_secs(60)).await;
    let report = &by_id["huge-1"][0];
    assert_eq!(report.state, State::Fail);
    let error = report.error.as_deref().unwrap();
    assert!(
        error.contains("[report truncated from "),
        "{}",
        &error[error.len().saturating_sub(100)..]
    );
    assert!(error.len() < 500_000);
    worker.stop().await;

    // A new worker in the same group: the huge test is not run again, a new test passes.
    let worker = RunningWorker::start(&config, cases).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    service
        .scope(async {
            flow.trigger("after-2", "v".into(), 1, 30_000)
                .await
                .unwrap();
            FIRST.send_to("after-2", &step(1, "v")).await.unwrap();
        })
        .await;
    let later = all_reports(
        &reports,
        &["after-2".to_owned()],
        &[&worker],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(later["after-2"][0].state, State::Pass);
    assert!(
        !later.contains_key("huge-1") && !later.contains_key("after-1"),
        "ran again after the restart: {:?}",
        later.keys().collect::<Vec<_>>()
    );
    worker.stop().await;
}

/// The case of the hung-test test: never returns on its own.
#[livecheck::case(
    name = "it.hung",
    probability = 1.0,
    warn_stalled_after = "1h",
    max_runtime = "2s"
)]
async fn hung() -> livecheck::Result {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_tests_are_stopped_at_max_runtime_and_not_run_again() {
    let broker = Broker::start();
    let config = unique_config(&broker, 1);
    let cases = vec![
        CaseConfig::from(hung.descriptor()),
        CaseConfig::from(flow.descriptor()),
    ];
    let worker = RunningWorker::start(&config, cases.clone()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let reports = plain_consumer(&broker, &config.topics.reports);
    let service = service_client(&config);
    let ids: Vec<String> = (0..8).map(|i| format!("hung-{i}")).collect();
    service
        .scope(async {
            for id in &ids {
                hung.trigger(id.as_str()).await.unwrap();
            }
        })
        .await;
    let by_id = all_reports(&reports, &ids, &[&worker], Duration::from_secs(60)).await;
    for id in &ids {
        let report = &by_id[id][0];
        assert_eq!(report.state, State::Timeout, "{id}: {report:?}");
        assert!(
            report
                .error
                .as_deref()
                .unwrap_or("")
                .contains("max_runtime"),
            "{id}: {:?}",
            report.error
        );
    }
    worker.stop().await;

    // After a restart, none of them runs again; a new test passes behind them.
    let worker = RunningWorker::start(&config, cases).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    service
        .scope(async {
            flow.trigger("after-hung", "v".into(), 1, 30_000)
                .await
                .unwrap();
            FIRST.send_to("after-hung", &step(1, "v")).await.unwrap();
        })
        .await;
    let later = all_reports(
        &reports,
        &["after-hung".to_owned()],
        &[&worker],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(later["after-hung"][0].state, State::Pass);
    let again: Vec<_> = ids.iter().filter(|id| later.contains_key(*id)).collect();
    assert!(again.is_empty(), "ran again after the restart: {again:?}");
    worker.stop().await;
}
