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
    let reports = read_reports(&demo.reports, Duration::from_secs(120), |seen| {
        seen.iter().filter(|r| r.test.is_some()).count() >= 50
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
        assert!(report.signal_latency.values().all(|s| *s >= 0.0));
    }
    demo.worker.stop().await;
}
