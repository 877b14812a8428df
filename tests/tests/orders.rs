//! The orders demo on a real broker: its services and a worker, end to end — passing orders.

mod orders_support;

use std::collections::HashMap;
use std::time::Duration;

use livecheck::State;
use orders_support::{place_orders, read_reports, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_orders_pass_with_every_signal_latency() {
    let demo = start(false).await;
    let ids = place_orders(&demo.base, 50).await;
    // Every placed order's report, whatever else arrives first: the demo's case also has a
    // fake request every 2 s, whose tests report in between (counting 50 reports of any test
    // stopped short of the last orders when the handover held the first ones for 3 s).
    let reports = read_reports(&demo.reports, Duration::from_secs(120), |seen| {
        ids.iter().all(|id| {
            seen.iter()
                .any(|r| r.test.as_ref().is_some_and(|t| &t.id == id))
        })
    })
    .await;
    let by_id: HashMap<_, _> = reports
        .iter()
        .filter_map(|r| Some((r.test.as_ref()?.id.clone(), r)))
        .collect();
    for id in &ids {
        let report = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no report for order {id}"));
        assert_eq!(report.state, State::Pass, "{report:#?}");
        let signals: Vec<&str> = report.signal_latency.keys().map(String::as_str).collect();
        assert_eq!(
            signals,
            [
                "order_cached",
                "order_executed",
                "order_sent_to_db",
                "order_sent_to_kafka"
            ]
        );
        // Each wait within the test, the test within the 120 s this read waited (a NaN fails).
        let runtime = report.runtime.expect("a test report has a runtime");
        assert!((0.0..120.0).contains(&runtime), "runtime {runtime}");
        for (signal, latency) in &report.signal_latency {
            assert!(
                (0.0..=runtime).contains(latency),
                "{signal}: latency {latency}, runtime {runtime}"
            );
        }
    }
    demo.worker.stop().await;
}
