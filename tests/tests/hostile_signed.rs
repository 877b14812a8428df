//! Hostile writers with a key set (issue "Step 10 — Trust boundaries", probe 6; the others are
//! in `hostile.rs`). The key is process-wide (`livecheck::signing::install`), hence a test
//! binary of its own: the orders services in this process sign and verify with it, the demo
//! worker process gets it through `LIVECHECK_TEST_KEY`.
//!
//! 3,000 HTTP requests with forged `LiveCheck-Test-*` headers (a fresh id each; one carries the
//! id of a live test) go to the demo API's init and create endpoints. None may put a signal on
//! the bus under a forged id or reach the live test (it passes as usual), the service counts
//! every one as untrusted, and real orders keep passing (the signed path works).
//!
//! ```sh
//! cargo test -p livecheck-tests --test hostile_signed -- --nocapture
//! ```

mod hostile_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hostile_support::*;
use livecheck::signing::{self, Source, TestKey};
use livecheck::State;
use livecheck_tests::broker::Broker;
use livecheck_tests::support::service_client;

const SECRET: &str = "hostile-probe-secret";
const REQUESTS: usize = 3000;
/// Requests in flight at once, and started per second at most: the orders agent handles the
/// orders one by one, and the real tests the init endpoint starts wait 10 s per signal.
const CONCURRENCY: usize = 16;
const PER_SECOND: f64 = 150.0;
const EVERY: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p6_with_a_key_forged_test_context_reaches_no_test() {
    bounded(probe_6()).await;
}

async fn probe_6() {
    signing::install(Some(TestKey::new(SECRET.as_bytes())));
    let mut scene = Scene::start("hostile-signed").await;
    let worker = scene
        .spawn("worker", LogFormat::Json, &[("LIVECHECK_TEST_KEY", SECRET)])
        .await;
    // Its fake orders pass: the services' signature is the worker's.
    scene.warm(&worker).await;
    let mut f = scene.figures(format!(
        "probe 6: key set, {REQUESTS} requests with forged LiveCheck-Test-* headers (one worker)"
    ));
    let untrusted_before = signing::untrusted(Source::Http);
    let client = service_client(&scene.config);

    // The live test first: its id in forged headers, then its real (signed) order.
    let live = attack_live_test(&scene, &client).await;
    f.info(
        "live test: forged request status, handled before the real order",
        format!("{:?}, {}", live.forged_status, live.forged_first),
    );

    // The rest: fresh forged ids, half to the init endpoint, half to the create endpoint.
    let prefix = Broker::unique("forged");
    let started = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / PER_SECOND);
    let outcomes: Vec<Outcome> = stream::iter(1..REQUESTS)
        .map(|i| {
            let base = scene.base.clone();
            let id = format!("{prefix}-{i}");
            async move {
                tokio::time::sleep_until((started + gap * i as u32).into()).await;
                if i % 2 == 1 {
                    match forged_init(&base, &id).await {
                        Ok(order) => Outcome::Init(order["id"].as_str().map(str::to_owned)),
                        Err(error) => Outcome::Failed(error),
                    }
                } else {
                    let order_id = format!("{id}-order");
                    match forged_create(&base, &id, &order(&order_id, "sell")).await {
                        Ok(201) => Outcome::Create(order_id),
                        Ok(status) => Outcome::Failed(format!("create: {status}")),
                        Err(error) => Outcome::Failed(error),
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let sent_in = started.elapsed();
    let real_orders: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Init(id) => id.clone(),
            _ => None,
        })
        .collect();
    let created: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Create(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    let failed: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Failed(e) => Some(e),
            _ => None,
        })
        .collect();
    f.info(
        "requests: init answered / create answered 201 / failed",
        format!(
            "{} / {} / {} (+1 live) in {:.1} s",
            real_orders.len(),
            created.len(),
            failed.len(),
            sent_in.as_secs_f64()
        ),
    );
    if let Some(error) = failed.first() {
        f.note(format!("first failed request: {}", clip(error, 200)));
    }

    // Every forged create's order went through the agent (so whatever it would signal is
    // sent), and the real orders the init endpoint placed are reported.
    let unreported = scene
        .unreported(&real_orders, Duration::from_secs(120))
        .await;
    let mut not_stored = created.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !not_stored.is_empty() && Instant::now() < deadline {
        let mut left = Vec::new();
        for id in not_stored {
            if !stored(&scene.base, &id).await {
                left.push(id);
            }
        }
        not_stored = left;
        if !not_stored.is_empty() {
            tokio::time::sleep(EVERY).await;
        }
    }
    f.info(
        "forged creates' orders not in the orders store after 30 s",
        not_stored.len(),
    );
    // The bus has gone quiet: nothing new for 2 s (at most 30 s).
    poll(Duration::from_secs(30), EVERY, || async {
        let last = scene.readers.lock().bus.iter().map(|r| r.at).max()?;
        (last.elapsed() >= Duration::from_secs(2)).then_some(())
    })
    .await;

    let live_report = poll(Duration::from_secs(30), EVERY, || async {
        let seen = scene.readers.lock();
        let reports = seen.reports_of(&live.id);
        (!reports.is_empty()).then(|| {
            (
                one_pass(&reports),
                reports.iter().map(|r| summary(r)).collect::<Vec<_>>(),
            )
        })
    })
    .await;
    // What the readers saw (the lock is let go before the next await).
    {
        let seen = scene.readers.lock();
        let forged: HashSet<String> = (1..REQUESTS).map(|i| format!("{prefix}-{i}")).collect();
        let under_forged = seen.bus.iter().filter(|r| forged.contains(&r.key)).count();
        f.check(
            "signals on the bus under a forged id",
            under_forged,
            "0",
            under_forged == 0,
        );
        let (live_signals, foreign) = signals_for(&seen, &live.id);
        f.check(
            "live test: its signals on the bus carrying another order",
            format!("{foreign} (of {live_signals})"),
            "0",
            foreign == 0,
        );
        f.check(
            "live test: its report",
            live_report
                .as_ref()
                .map_or("none within 30 s".to_owned(), |(_, r)| format!("{r:?}")),
            "one PASS",
            live_report.as_ref().is_some_and(|(pass, _)| *pass),
        );
        let untrusted = signing::untrusted(Source::Http) - untrusted_before;
        f.check(
            "untrusted(Source::Http) in the services' process, increase",
            untrusted,
            REQUESTS,
            untrusted == REQUESTS as u64,
        );
        let not_pass: Vec<String> = real_orders
            .iter()
            .filter_map(|id| {
                let reports = seen.reports_of(id);
                (!reports.is_empty() && reports.iter().any(|r| r.report.state != State::Pass))
                    .then(|| format!("{id}: {:?}", states(&reports)))
            })
            .collect();
        f.check(
            "real orders (init endpoint): unreported / reported other than PASS",
            format!(
                "{} / {} of {}",
                unreported.len(),
                not_pass.len(),
                real_orders.len()
            ),
            format!("0 / 0 of {}", REQUESTS / 2),
            unreported.is_empty() && not_pass.is_empty() && real_orders.len() == REQUESTS / 2,
        );
        if let Some(example) = not_pass.first() {
            f.note(format!("not PASS: {example}"));
        }
    }
    let metrics = worker.metrics_or_empty().await;
    for source in ["test_record", "signal", "marker", "report"] {
        f.info(
            format!("worker: livecheck_untrusted_test_context_total{{source={source}}}"),
            shown(metrics.get(
                "livecheck_untrusted_test_context_total",
                &[("source", source)],
            )),
        );
    }
    drop(worker);
    scene.stop().await;
    f.finish();
}

/// What a forged request did.
enum Outcome {
    /// The init endpoint placed an order (its id: a real test, started by the service).
    Init(Option<String>),
    /// The create endpoint took the order with this id.
    Create(String),
    Failed(String),
}
