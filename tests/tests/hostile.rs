//! Hostile writers (issue "Step 10 — Trust boundaries"): anyone who can write to livecheck's
//! three topics, and any HTTP client of a service, is untrusted. Each probe below is one finding
//! of the issue, played against ONE demo worker *process* (two where stated) on tansu, with the
//! orders services running in this process and fake orders flowing through them. Each prints
//! its figures as a table and asserts them (all of a probe's figures are printed before the
//! assertion fails).
//!
//! ```sh
//! cargo test -p livecheck-tests --test hostile -- --nocapture
//! ```
//!
//! 1. 100 tests with 600 KB ids: `/metrics` keeps answering within 1 s, nothing stays in
//!    flight, each is counted as `id_too_long`, and none is read again after a restart.
//! 2. A forged claim on each bus partition with no member behind it: believed by nobody, the
//!    worker keeps its partitions (every order reported) and its leadership.
//! 3. A late claim from a real old owner (two workers): the new owner keeps the partition.
//! 4. 35 forged FAIL reports dated 10 years ahead: not counted; the next PASS is the state.
//! 5. A forged suite report from a non-leader (two workers): not adopted by any worker.
//! 7. Without a key: forged headers do make a test (Faust's behaviour), and the worker says
//!    once that test context is unauthenticated. (6, with a key, is `hostile_signed.rs`: the key
//!    is process-wide.)
//! 8. A test id holding a newline and an ANSI escape: every log and console line mentioning
//!    it stays one line, escaped.
//! 9. 1,000 tests of an unknown case: counted one by one, logged at most 3 times.

mod hostile_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::join_all;
use hostile_support::*;
use livecheck::State;
use livecheck_tests::broker::Broker;
use livecheck_tests::support::service_client;
use serde_json::{json, Value};

const EVERY: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------------
// 1. Long ids

const LONG_IDS: usize = 100;
const LONG_ID_BYTES: usize = 600 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p1_tests_with_600_kb_ids_are_skipped_and_not_read_again() {
    bounded(probe_1()).await;
}

async fn probe_1() {
    let mut scene = Scene::start("hostile-ids").await;
    let mut worker = scene.spawn("worker", LogFormat::Json, &[]).await;
    scene.warm(&worker).await;
    let mut f = scene.figures(format!(
        "probe 1: {LONG_IDS} tests with {} KB ids on the tests topic (one worker)",
        LONG_ID_BYTES / 1024
    ));
    let before = worker.metrics_or_empty().await;

    let sampler = Sampler::start(&worker.url, EVERY, Duration::from_secs(1));
    let now = Utc::now();
    let records: Vec<(String, Vec<u8>)> = (0..LONG_IDS)
        .map(|i| {
            let mut id = format!("long-{i:03}-");
            id.push_str(&"x".repeat(LONG_ID_BYTES - id.len()));
            // Half of them expired already, half valid for 10 minutes.
            let (timestamp, expires) = if i % 2 == 0 {
                (
                    now - chrono::Duration::hours(2),
                    now - chrono::Duration::hours(1),
                )
            } else {
                (now, now + chrono::Duration::minutes(10))
            };
            let record = test_record(&id, CASE, timestamp, expires);
            (format!("long-{i:03}"), record.to_string().into_bytes())
        })
        .collect();
    let producing = Instant::now();
    join_all(records.iter().map(|(key, payload)| {
        scene.produce(
            &scene.config.topics.tests,
            None,
            key.as_bytes(),
            payload,
            None,
            &[],
        )
    }))
    .await;
    f.info(
        "records produced (bytes each)",
        format!(
            "{LONG_IDS} ({} B) in {:.1} s",
            records[0].1.len(),
            producing.elapsed().as_secs_f64()
        ),
    );
    drop(records);
    let produced = Instant::now();

    // Back to nothing in flight, with the 100 counted.
    let settled = poll(Duration::from_secs(30), EVERY, || async {
        let last = sampler.last()?;
        let counted = last.skipped("tests", "id_too_long") == Some(LONG_IDS as f64);
        (counted && last.in_flight() == Some(0.0)).then(|| produced.elapsed())
    })
    .await;
    // And 30 s more of /metrics answering.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let polls = sampler.stop().await;
    let after = worker.metrics_or_empty().await;

    let (count, bad, slowest, first) = poll_figures(&polls, Duration::from_secs(1));
    f.check(
        "/metrics polls failed or slower than 1 s (every 200 ms, to 30 s after)",
        format!("{bad} of {count}; slowest {slowest:.2?}"),
        "0",
        bad == 0 && count > 0,
    );
    if !first.is_empty() {
        f.note(format!("/metrics: {first}"));
    }
    let peak = polls
        .iter()
        .filter_map(|p| p.result.as_ref().ok()?.in_flight())
        .fold(0.0_f64, f64::max);
    f.info("tests in flight, peak during the probe", peak);
    f.check(
        "back to 0 in flight with the 100 counted, after the last record",
        settled.map_or("not within 30 s".to_owned(), |d| format!("{d:.1?}")),
        "within 30 s",
        settled.is_some(),
    );
    f.info("tests in flight at the end", shown(after.in_flight()));
    let id_too_long = after.skipped("tests", "id_too_long");
    f.check(
        "skipped{topic=tests,reason=id_too_long}",
        shown(id_too_long),
        LONG_IDS,
        id_too_long == Some(LONG_IDS as f64),
    );
    let received = |m: &Samples| m.get("livecheck_tests_received_total", &[]).unwrap_or(0.0);
    f.info(
        "livecheck_tests_received_total, increase",
        received(&after) - received(&before),
    );
    let long_reports = scene
        .readers
        .lock()
        .reports
        .iter()
        .filter(|r| r.id_len >= LONG_ID_BYTES / 2)
        .count();
    f.info("reports published of the long-id tests", long_reports);

    // Restart: SIGTERM, and a new process in the same group.
    let high_at_restart: Vec<i64> = scene
        .group_progress()
        .await
        .iter()
        .map(|(_, _, high)| *high)
        .collect();
    let status = worker.terminate();
    f.info(
        "first process after SIGTERM",
        status.map_or("?".to_owned(), |s| s.to_string()),
    );
    let restarted = Instant::now();
    let again = scene.spawn("worker-again", LogFormat::Json, &[]).await;
    scene.warm(&again).await;
    // It has read the tests topic up to where it ended at the restart: the group's committed
    // offsets reach those high watermarks.
    let caught_up = poll(
        Duration::from_secs(30),
        Duration::from_millis(500),
        || async {
            let progress = scene.group_progress().await;
            progress
                .iter()
                .all(|(p, committed, _)| {
                    let high = high_at_restart.get(*p as usize).copied().unwrap_or(0);
                    high <= 0 || committed.is_some_and(|c| c >= high)
                })
                .then_some(progress)
        },
    )
    .await;
    f.check(
        "new process: the group's offsets reached the topic's end at the restart",
        caught_up.as_ref().map_or_else(
            || format!("not within 30 s (ends {high_at_restart:?})"),
            |p| format!("{p:?}"),
        ),
        "within 30 s",
        caught_up.is_some(),
    );
    let again_metrics = again.metrics_or_empty().await;
    let read_again = again_metrics.skipped("tests", "id_too_long");
    f.check(
        "new process: skipped{reason=id_too_long}",
        read_again.map_or("absent (never counted)".to_owned(), |v| v.to_string()),
        "0",
        read_again.unwrap_or(0.0) == 0.0,
    );
    let reported_again = scene
        .readers
        .lock()
        .reports
        .iter()
        .filter(|r| r.id_len >= LONG_ID_BYTES / 2 && r.at >= restarted)
        .count();
    f.check(
        "long-id tests reported after the restart",
        reported_again,
        "0",
        reported_again == 0,
    );
    drop(again);
    drop(worker);
    scene.stop().await;
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. Forged claims

/// A claim as the bus carries it (JSON).
fn claim(value: Value) -> Vec<u8> {
    json!({"signal_name": "claim", "case_name": "__livecheck", "key": "x", "value": value})
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2_a_forged_claim_with_no_member_behind_it_is_not_believed() {
    bounded(probe_2()).await;
}

async fn probe_2() {
    let mut scene = Scene::start("hostile-claims").await;
    let worker = scene.spawn("worker", LogFormat::Json, &[]).await;
    scene.warm(&worker).await;
    let mut f = scene
        .figures("probe 2: a forged claim on each bus partition, no member behind it (one worker)");
    let sampler = Sampler::start(&worker.url, EVERY, Duration::from_secs(3));
    let group = scene.config.group_id.clone();
    let forged = 2 * PARTITIONS as usize;
    for partition in 0..PARTITIONS {
        for value in [
            json!({"group": group, "generation": 0}),
            json!({"group": group, "member": "forged-member", "generation": 999_999}),
        ] {
            scene
                .produce(
                    &scene.config.topics.bus,
                    Some(partition),
                    b"x",
                    &claim(value),
                    None,
                    &[],
                )
                .await;
        }
    }
    let claimed = Instant::now();
    // The worker has read them once it counts them (at most 15 s: no such count before
    // step 10).
    let counted = poll(Duration::from_secs(15), EVERY, || async {
        let last = sampler.last()?;
        (last.skipped("bus", "claim_not_believed") >= Some(forged as f64)).then_some(())
    })
    .await;
    f.info(
        "claims counted by the worker before orders were placed",
        if counted.is_some() {
            "yes"
        } else {
            "no (waited 15 s)"
        },
    );

    let ids = scene.place_orders(20).await;
    let missing = scene.unreported(&ids, Duration::from_secs(60)).await;
    // Leadership watched for 10 s after the claims at least.
    if let Some(rest) = Duration::from_secs(10).checked_sub(claimed.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let polls = sampler.stop().await;
    let after = worker.metrics_or_empty().await;
    let partitions: BTreeSet<i32> = {
        let seen = scene.readers.lock();
        ids.iter().filter_map(|id| seen.partition_of(id)).collect()
    };
    f.info("orders placed after the claims", ids.len());
    f.info("partitions they went to", format!("{partitions:?}"));
    f.check(
        "orders unreported after 60 s",
        missing.len(),
        "0",
        missing.is_empty(),
    );
    let answered: Vec<Option<f64>> = polls
        .iter()
        .filter_map(|p| p.result.as_ref().ok().map(Samples::leader))
        .collect();
    let not_leader = answered.iter().filter(|l| **l != Some(1.0)).count();
    f.check(
        "samples of livecheck_worker_leader != 1 (every 200 ms)",
        format!("{not_leader} of {}", answered.len()),
        "0",
        not_leader == 0 && !answered.is_empty(),
    );
    let believed = after.skipped("bus", "claim_not_believed");
    f.check(
        "skipped{topic=bus,reason=claim_not_believed}",
        shown(believed),
        forged,
        believed == Some(forged as f64),
    );
    let assigned = worker.assigned().await;
    f.check(
        "its assignment at the end",
        format!("{assigned:?}"),
        format!("{:?}", (0..PARTITIONS).collect::<Vec<_>>()),
        assigned == Some((0..PARTITIONS).collect()),
    );
    drop(worker);
    scene.stop().await;
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. A late claim from a real old owner

/// A claim of the workers' group read back from the bus.
#[derive(Debug, Clone)]
struct Claim {
    /// The record's key: the claiming worker's instance.
    key: String,
    generation: u64,
    member: Option<String>,
    /// The bus partition it is on (the partition it claims).
    partition: i32,
    payload: Vec<u8>,
    value: Value,
}

/// The claims of the workers' group read from the bus so far.
fn claims_of(scene: &Scene) -> Vec<Claim> {
    let group = scene.config.group_id.as_str();
    scene
        .readers
        .lock()
        .bus
        .iter()
        .filter_map(|r| {
            let signal = r.signal.as_ref()?;
            let ours = signal.case_name == "__livecheck"
                && signal.signal_name == "claim"
                && signal.value["group"].as_str() == Some(group);
            ours.then(|| Claim {
                key: r.key.clone(),
                generation: signal.value["generation"].as_u64().unwrap_or_default(),
                member: signal.value["member"].as_str().map(str::to_owned),
                partition: r.partition,
                payload: r.payload.clone(),
                value: signal.value.clone(),
            })
        })
        .collect()
}

/// Waits until `a` and `b` split the partitions between them: (a's, b's).
async fn split(a: &Worker, b: &Worker, within: Duration) -> Option<(Vec<i32>, Vec<i32>)> {
    poll(within, Duration::from_millis(500), || async {
        let pa = a.assigned().await?;
        let pb = b.assigned().await?;
        let all: BTreeSet<i32> = pa.iter().chain(&pb).copied().collect();
        let split = !pa.is_empty()
            && !pb.is_empty()
            && pa.len() + pb.len() == PARTITIONS as usize
            && all.len() == PARTITIONS as usize;
        split.then_some((pa, pb))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_a_late_claim_from_an_old_owner_does_not_fence_the_new_owner() {
    bounded(probe_3()).await;
}

async fn probe_3() {
    let mut scene = Scene::start("hostile-late-claim").await;
    let a = scene.spawn("A", LogFormat::Json, &[]).await;
    scene.warm(&a).await;
    let mut f = scene.figures("probe 3: a late claim from a real old owner (workers A and B)");
    // A's claims, one per partition: all of them A's (it is alone).
    let a_claims = poll(Duration::from_secs(15), EVERY, || async {
        let claims = claims_of(&scene);
        let partitions: BTreeSet<i32> = claims.iter().map(|c| c.partition).collect();
        (partitions.len() == PARTITIONS as usize).then_some(claims)
    })
    .await
    .unwrap_or_else(|| panic!("A's claims not on the bus: {:?}", claims_of(&scene)));
    let a_instance = a_claims[0].key.clone();
    let old = a_claims
        .iter()
        .min_by_key(|c| c.generation)
        .cloned()
        .expect("a claim");
    f.info("a claim of A's, as the bus has it (value)", &old.value);

    let b = scene.spawn("B", LogFormat::Json, &[]).await;
    let Some((pa, pb)) = split(&a, &b, Duration::from_secs(90)).await else {
        panic!(
            "A and B did not split the partitions within 90 s: A {:?}, B {:?}\n{}\n{}",
            a.assigned().await,
            b.assigned().await,
            a.log_tail(20),
            b.log_tail(20)
        );
    };
    f.info("split", format!("A {pa:?}, B {pb:?}"));
    let generations: BTreeSet<u64> = claims_of(&scene).iter().map(|c| c.generation).collect();
    f.info(
        "A's old claim: generation (generations on the bus)",
        format!("{} ({generations:?})", old.generation),
    );
    let q = pb[0];
    f.info("partition of B the old claim is written to", q);
    scene
        .produce(
            &scene.config.topics.bus,
            Some(q),
            a_instance.as_bytes(),
            &old.payload,
            None,
            &[],
        )
        .await;

    // B's assignment, every 200 ms, while orders go through partition q.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let watch = {
        let url = b.url.clone();
        tokio::spawn(async move {
            let mut samples: Vec<Option<Vec<i32>>> = Vec::new();
            loop {
                let api = get_text(&format!("{url}api/cases"), Duration::from_secs(3)).await;
                samples.push(
                    api.ok()
                        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                        .and_then(|v| partitions_of(&v)),
                );
                tokio::select! {
                    _ = stopped.changed() => break samples,
                    _ = tokio::time::sleep(EVERY) => {}
                }
            }
        })
    };
    let watch_from = Instant::now();
    let mut on_q = Vec::new();
    for _ in 0..6 {
        let ids = scene.place_orders(8).await;
        let placed = poll(Duration::from_secs(15), EVERY, || async {
            let seen = scene.readers.lock();
            ids.iter()
                .map(|id| seen.partition_of(id).map(|p| (id.clone(), p)))
                .collect::<Option<Vec<_>>>()
        })
        .await
        .expect("the orders' tests on the tests topic");
        on_q.extend(
            placed
                .into_iter()
                .filter(|(_, p)| *p == q)
                .map(|(id, _)| id),
        );
        if on_q.len() >= 3 {
            break;
        }
    }
    let missing = scene.unreported(&on_q, Duration::from_secs(60)).await;
    // Watch at least 15 s after the claim.
    if let Some(rest) = Duration::from_secs(15).checked_sub(watch_from.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let _ = stop.send(true);
    let samples = watch.await.expect("the watch");
    let lost = samples
        .iter()
        .filter(|s| s.as_ref().is_some_and(|p| !p.contains(&q)))
        .count();
    f.check(
        format!("samples of B's assignment without partition {q} (every 200 ms, 15 s+)"),
        format!("{lost} of {}", samples.len()),
        "0",
        lost == 0 && !samples.is_empty(),
    );
    f.info(
        "assignments at the end",
        format!("A {:?}, B {:?}", a.assigned().await, b.assigned().await),
    );
    let by_b = on_q.iter().filter(|id| b.reported(id) > 0).count();
    let by_a = on_q.iter().filter(|id| a.reported(id) > 0).count();
    f.check(
        format!("tests on partition {q} after the claim: unreported / reported by B / by A"),
        format!("{} / {by_b} / {by_a} of {}", missing.len(), on_q.len()),
        format!("0 / {0} / 0 of {0}", on_q.len()),
        !on_q.is_empty() && missing.is_empty() && by_b == on_q.len() && by_a == 0,
    );
    let b_metrics = b.metrics_or_empty().await;
    f.info(
        "B: skipped{topic=bus,reason=claim_not_believed}",
        shown(b_metrics.skipped("bus", "claim_not_believed")),
    );
    drop(a);
    drop(b);
    scene.stop().await;
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// 4. Reports from the future

const FUTURE_REPORTS: usize = 35;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_forged_fail_reports_dated_ten_years_ahead_do_not_count() {
    bounded(probe_4()).await;
}

async fn probe_4() {
    let mut scene = Scene::start("hostile-future").await;
    let worker = scene.spawn("worker", LogFormat::Json, &[]).await;
    scene.warm(&worker).await;
    let mut f = scene.figures(format!(
        "probe 4: {FUTURE_REPORTS} forged FAIL reports dated 10 years ahead (one worker)"
    ));
    f.info(
        "case state before (state, suite_failed)",
        format!("{:?}", worker.case_state().await),
    );
    let future = Utc::now() + chrono::Duration::days(3653);
    let prefix = Broker::unique("future");
    for i in 0..FUTURE_REPORTS {
        let id = format!("{prefix}-{i}");
        let test = test_record(&id, CASE, future, future + chrono::Duration::hours(1));
        let report = report_record("FAIL", test, "forged failure dated 10 years ahead");
        scene
            .produce(
                &scene.config.topics.reports,
                None,
                id.as_bytes(),
                report.to_string().as_bytes(),
                Some(future.timestamp_millis()),
                &[],
            )
            .await;
    }
    let forged_at = Instant::now();

    // The case's state, every 200 ms, from now on.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let watch = {
        let url = worker.url.clone();
        tokio::spawn(async move {
            let mut seen: Vec<(String, bool)> = Vec::new();
            loop {
                let api = get_text(&format!("{url}api/cases"), Duration::from_secs(3)).await;
                if let Some(state) = api
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| case_state(&v))
                {
                    if seen.last() != Some(&state) {
                        seen.push(state);
                    }
                }
                tokio::select! {
                    _ = stopped.changed() => break seen,
                    _ = tokio::time::sleep(EVERY) => {}
                }
            }
        })
    };
    // The next healthy PASS: a real test's, read after the forgeries.
    let pass = poll(Duration::from_secs(30), EVERY, || async {
        let seen = scene.readers.lock();
        seen.reports
            .iter()
            .find(|r| {
                r.at >= forged_at
                    && r.report.state == State::Pass
                    && r.id.as_deref().is_some_and(|id| !id.starts_with(&prefix))
            })
            .and_then(|r| r.id.clone())
    })
    .await;
    f.check(
        "a healthy PASS reported after the forgeries",
        pass.clone().unwrap_or_else(|| "none within 30 s".into()),
        "one",
        pass.is_some(),
    );
    // Its worker has judged it (give it 5 s to take in its own report).
    let state = poll(Duration::from_secs(5), EVERY, || async {
        worker.case_state().await.filter(|(s, _)| s == "PASS")
    })
    .await;
    let state_now = match state {
        Some(state) => Some(state),
        None => worker.case_state().await,
    };
    f.check(
        "case state after it (api/cases: state, suite_failed)",
        format!("{state_now:?}"),
        "PASS",
        state_now.as_ref().is_some_and(|(s, _)| s == "PASS"),
    );
    let future_count = poll(Duration::from_secs(10), EVERY, || async {
        let value = worker
            .metrics_or_empty()
            .await
            .skipped("reports", "future")?;
        (value >= FUTURE_REPORTS as f64).then_some(value)
    })
    .await;
    let future_count = match future_count {
        Some(value) => Some(value),
        None => worker.metrics_or_empty().await.skipped("reports", "future"),
    };
    f.check(
        "skipped{topic=reports,reason=future}",
        shown(future_count),
        format!(">= {FUTURE_REPORTS}"),
        future_count >= Some(FUTURE_REPORTS as f64),
    );
    let _ = stop.send(true);
    let states = watch.await.expect("the watch");
    f.info(
        "case states seen after the forgeries (state, suite_failed)",
        format!("{states:?}"),
    );
    let suite: Vec<String> = scene
        .readers
        .lock()
        .reports
        .iter()
        .filter(|r| r.at >= forged_at && r.id.is_none())
        .map(summary)
        .collect();
    f.info(
        "suite reports published after the forgeries",
        format!("{suite:?}"),
    );
    drop(worker);
    scene.stop().await;
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// 5. A suite report from a non-leader

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p5_a_forged_suite_report_from_a_non_leader_is_not_adopted() {
    bounded(probe_5()).await;
}

async fn probe_5() {
    let mut scene = Scene::start("hostile-suite").await;
    let a = scene.spawn("A", LogFormat::Json, &[]).await;
    scene.warm(&a).await;
    let b = scene.spawn("B", LogFormat::Json, &[]).await;
    let Some((pa, pb)) = split(&a, &b, Duration::from_secs(90)).await else {
        panic!(
            "A and B did not split the partitions within 90 s: A {:?}, B {:?}",
            a.assigned().await,
            b.assigned().await
        );
    };
    let mut f = scene.figures("probe 5: a forged suite report from a non-leader (workers A and B)");
    f.info("split", format!("A {pa:?}, B {pb:?}"));
    let workers = [&a, &b];
    let leader_of = |api: Option<Value>| api.and_then(|v| v["worker"]["leader"].as_bool());
    let leaders = [leader_of(a.api().await.ok()), leader_of(b.api().await.ok())];
    f.info("leader (A, B)", format!("{leaders:?}"));
    // The non-leader's member id: in its claims (the newest, on the partitions it owns), and
    // one of the members the group coordinator lists.
    let non_leader_partitions = match leaders {
        [Some(true), Some(false)] => Some(&pb),
        [Some(false), Some(true)] => Some(&pa),
        _ => None,
    };
    let members: Vec<String> = scene
        .members()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    f.info("the group's members (coordinator)", format!("{members:?}"));
    let non_leader = non_leader_partitions.and_then(|owned| {
        claims_of(&scene)
            .into_iter()
            .filter(|c| owned.contains(&c.partition))
            .max_by_key(|c| c.generation)
            .and_then(|c| c.member)
    });
    let real = non_leader.as_ref().is_some_and(|m| members.contains(m));
    f.check(
        "the non-leader's member id (from its claims), a member of the group",
        format!("{non_leader:?}, {real}"),
        "one, true",
        real,
    );
    let member = non_leader.unwrap_or_else(|| "no-member-found".into());
    let group = scene.config.group_id.clone();
    let mut before = Vec::new();
    for w in workers {
        before.push(w.case_state().await);
    }
    f.info(
        "case state before on A, B (state, suite_failed)",
        format!("{before:?}"),
    );

    // Every worker's case state, every 200 ms, from now on.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watches: Vec<_> = workers
        .iter()
        .map(|w| {
            let url = w.url.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut seen: Vec<Option<(String, bool)>> = Vec::new();
                loop {
                    let api = get_text(&format!("{url}api/cases"), Duration::from_secs(3)).await;
                    seen.push(
                        api.ok()
                            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                            .and_then(|v| case_state(&v)),
                    );
                    tokio::select! {
                        _ = stopped.changed() => break seen,
                        _ = tokio::time::sleep(EVERY) => {}
                    }
                }
            })
        })
        .collect();

    let mut forged = 0;
    for state in ["FAIL", "PASS"] {
        for headers in [
            vec![
                ("livecheck-group", group.as_str()),
                ("livecheck-member", member.as_str()),
            ],
            vec![],
        ] {
            let report = report_record(state, Value::Null, "forged suite report");
            scene
                .produce(
                    &scene.config.topics.reports,
                    None,
                    CASE.as_bytes(),
                    report.to_string().as_bytes(),
                    None,
                    &headers,
                )
                .await;
            forged += 1;
        }
        // Both workers have read them once they count them (at most 15 s), then 3 s more.
        poll(Duration::from_secs(15), EVERY, || async {
            let mut all = true;
            for w in workers {
                let count = w
                    .metrics_or_empty()
                    .await
                    .skipped("reports", "not_from_leader");
                all &= count >= Some(forged as f64);
            }
            all.then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let _ = stop.send(true);
    for ((w, watch), before) in workers.iter().zip(watches).zip(&before) {
        let seen = watch.await.expect("the watch");
        let failed = seen
            .iter()
            .filter(|s| s.as_ref().is_some_and(|(_, failed)| *failed))
            .count();
        let changed = seen
            .iter()
            .flatten()
            .filter(|s| before.as_ref().is_some_and(|b| b.0 != s.0))
            .count();
        f.check(
            format!(
                "{}: samples with suite_failed / with another state than before",
                w.label
            ),
            format!("{failed} / {changed} of {}", seen.len()),
            "0 / 0",
            failed == 0 && changed == 0 && !seen.is_empty(),
        );
        let count = w
            .metrics_or_empty()
            .await
            .skipped("reports", "not_from_leader");
        f.check(
            format!(
                "{}: skipped{{topic=reports,reason=not_from_leader}}",
                w.label
            ),
            shown(count),
            forged,
            count == Some(forged as f64),
        );
    }
    drop(a);
    drop(b);
    scene.stop().await;
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// 7. Without a key

const FORGED_WITHOUT_KEY: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p7_without_a_key_forged_headers_make_tests_and_the_worker_says_so_once() {
    bounded(probe_7()).await;
}

async fn probe_7() {
    let mut scene = Scene::start("hostile-nokey").await;
    let worker = scene.spawn("worker", LogFormat::Json, &[]).await;
    scene.warm(&worker).await;
    let mut f = scene.figures(format!(
        "probe 7: no key, {FORGED_WITHOUT_KEY} forged LiveCheck-Test-* headers on the create \
         endpoint (one worker)"
    ));
    let prefix = Broker::unique("forged");
    let ids: Vec<String> = (0..FORGED_WITHOUT_KEY)
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    let mut statuses = Vec::new();
    for id in &ids {
        let body = order(&format!("{id}-order"), "sell");
        statuses.push(forged_create(&scene.base, id, &body).await);
    }
    let accepted = statuses.iter().filter(|s| *s == &Ok(201)).count();
    f.info(
        "forged requests answered 201",
        format!("{accepted} of {}", ids.len()),
    );
    let client = service_client(&scene.config);
    let live = attack_live_test(&scene, &client).await;

    let with_signals = || {
        let seen = scene.readers.lock();
        ids.iter()
            .filter(|id| seen.bus.iter().any(|r| &r.key == *id))
            .count()
    };
    poll(Duration::from_secs(20), EVERY, || async {
        (with_signals() == ids.len()).then_some(())
    })
    .await;
    let signals = {
        let seen = scene.readers.lock();
        seen.bus
            .iter()
            .filter(|r| r.key.starts_with(&prefix))
            .count()
    };
    f.check(
        "forged ids with signals on the bus (Faust's behaviour)",
        format!("{} of {} ({signals} signals)", with_signals(), ids.len()),
        format!("{0} of {0}", ids.len()),
        with_signals() == ids.len(),
    );
    let report = poll(Duration::from_secs(30), EVERY, || async {
        let seen = scene.readers.lock();
        let reports = seen.reports_of(&live.id);
        (!reports.is_empty()).then(|| reports.iter().map(|r| summary(r)).collect::<Vec<_>>())
    })
    .await;
    let (count, foreign) = signals_for(&scene.readers.lock(), &live.id);
    f.info(
        "live test: forged request status, handled before the real order",
        format!("{:?}, {}", live.forged_status, live.forged_first),
    );
    f.info(
        "live test: its signals on the bus (of them carrying another order)",
        format!("{count} ({foreign})"),
    );
    f.info(
        "live test: its report (no key: the forgery reaches it)",
        format!("{report:?}"),
    );
    let said = worker
        .log_text()
        .matches("test context is unauthenticated")
        .count();
    f.check(
        "worker's stderr: \"test context is unauthenticated\"",
        format!("{said} time(s)"),
        "1 time(s)",
        said == 1,
    );
    drop(worker);
    scene.stop().await;
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// 8. Control characters in an id

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p8_an_id_with_a_newline_and_an_escape_stays_on_one_line() {
    bounded(probe_8()).await;
}

async fn probe_8() {
    let mut scene = Scene::start("hostile-text").await;
    // The human log format: JSON would escape the id by itself.
    let worker = scene.spawn("worker", LogFormat::Pretty, &[]).await;
    scene.warm(&worker).await;
    let mut f =
        scene.figures("probe 8: a test id holding \\n and \\x1b[31m (one worker, pretty log)");
    let marker = Broker::unique("hostile-id");
    let id = format!("{marker}\nFORGED-LINE  INFO livecheck: PASS everything\x1b[31mRED");
    let now = Utc::now();
    let record = test_record(
        &id,
        CASE,
        now - chrono::Duration::hours(2),
        now - chrono::Duration::hours(1),
    );
    scene
        .produce(
            &scene.config.topics.tests,
            None,
            id.as_bytes(),
            record.to_string().as_bytes(),
            None,
            &[],
        )
        .await;
    let mentioned = poll(Duration::from_secs(20), EVERY, || async {
        worker.log_text().contains(&marker).then_some(())
    })
    .await;
    f.check(
        "the worker's log mentions the test",
        mentioned.is_some(),
        "true",
        mentioned.is_some(),
    );
    // Its report, if it is published (a SKIP), is the last thing the console would print.
    let report = poll(Duration::from_secs(10), EVERY, || async {
        let seen = scene.readers.lock();
        let reports = seen.reports_of(&id);
        (!reports.is_empty()).then(|| states(&reports).join(","))
    })
    .await;
    f.info("its report", report.unwrap_or_else(|| "none".into()));
    for (name, text) in [
        ("log (stderr)", worker.log_text()),
        ("console (stdout)", worker.out_text()),
    ] {
        let esc = text.bytes().filter(|b| *b == 0x1b).count();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(&marker)).collect();
        let split = text
            .lines()
            .filter(|l| l.contains("FORGED-LINE") && !l.contains(&marker))
            .count();
        let escaped = lines
            .iter()
            .filter(|l| l.contains("\\n") && l.contains("\\u{1b}"))
            .count();
        f.info(format!("{name}: lines mentioning it"), lines.len());
        f.check(format!("{name}: raw ESC bytes"), esc, "0", esc == 0);
        f.check(
            format!("{name}: lines holding the id's second half alone"),
            split,
            "0",
            split == 0,
        );
        f.check(
            format!("{name}: of the lines mentioning it, with \\n and \\u{{1b}} escaped"),
            format!("{escaped} of {}", lines.len()),
            "all",
            escaped == lines.len(),
        );
        if let Some(line) = lines.first() {
            f.note(format!(
                "{name}: {}",
                clip(&line.replace('\x1b', "<ESC>"), 300)
            ));
        }
    }
    drop(worker);
    scene.stop().await;
    f.finish();
}

// ---------------------------------------------------------------------------------------------
// 9. Unknown cases

const UNKNOWN: usize = 1000;
const UNKNOWN_CASE: &str = "hostile.no-such-case";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p9_a_thousand_tests_of_an_unknown_case_are_counted_and_logged_at_most_thrice() {
    bounded(probe_9()).await;
}

async fn probe_9() {
    let mut scene = Scene::start("hostile-unknown").await;
    let worker = scene.spawn("worker", LogFormat::Json, &[]).await;
    scene.warm(&worker).await;
    let mut f = scene.figures(format!(
        "probe 9: {UNKNOWN} tests of an unknown case (one worker)"
    ));
    let logged_before = worker.log_text().len();
    let before = worker
        .metrics_or_empty()
        .await
        .skipped("tests", "unknown_case")
        .unwrap_or(0.0);
    let prefix = Broker::unique("unknown");
    let now = Utc::now();
    let records: Vec<(String, Vec<u8>)> = (0..UNKNOWN)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let record = test_record(&id, UNKNOWN_CASE, now, now + chrono::Duration::minutes(10));
            (id, record.to_string().into_bytes())
        })
        .collect();
    for chunk in records.chunks(100) {
        join_all(chunk.iter().map(|(id, payload)| {
            scene.produce(
                &scene.config.topics.tests,
                None,
                id.as_bytes(),
                payload,
                None,
                &[],
            )
        }))
        .await;
    }
    let counted = poll(Duration::from_secs(30), EVERY, || async {
        let value = worker
            .metrics_or_empty()
            .await
            .skipped("tests", "unknown_case")?;
        (value - before >= UNKNOWN as f64).then_some(())
    })
    .await;
    // Time for a summary line a throttled log would write.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let count = worker
        .metrics_or_empty()
        .await
        .skipped("tests", "unknown_case")
        .map(|v| v - before);
    f.check(
        "skipped{topic=tests,reason=unknown_case}, increase",
        shown(count),
        UNKNOWN,
        count == Some(UNKNOWN as f64),
    );
    f.info("all counted within 30 s", counted.is_some());
    let log = worker.log_text();
    let new = log.get(logged_before..).unwrap_or("");
    let warns: Vec<&str> = new
        .lines()
        .filter(|l| {
            json_events(l)
                .first()
                .is_some_and(|(level, _)| level == "WARN")
                && (l.contains(UNKNOWN_CASE)
                    || l.contains("unknown case")
                    || l.contains("does not run"))
        })
        .collect();
    f.check(
        "WARN lines about them in the worker's log",
        warns.len(),
        "<= 3",
        warns.len() <= 3,
    );
    if let Some(line) = warns.first() {
        f.note(format!("first: {}", clip(line, 300)));
    }
    drop(worker);
    scene.stop().await;
    f.finish();
}
