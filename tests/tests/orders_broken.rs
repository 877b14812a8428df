//! The orders demo on a real broker: its services and a worker, end to end — a broken stage.

mod orders_support;

use std::time::Duration;

use livecheck::State;
use orders_support::{place_orders, read_reports, start};
use rdkafka::message::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_execution_stage_times_out_and_fails_the_suite_once() {
    let demo = start(true).await;
    // test_order allows 3 consecutive failures; place 5 orders.
    place_orders(&demo.base, 5).await;
    // Five test reports and the suite FAIL, in whatever order the leader publishes them.
    let mut reports = read_reports(&demo.reports, Duration::from_secs(120), |seen| {
        seen.iter().filter(|r| r.test.is_some()).count() >= 5 && seen.iter().any(|r| r.is_suite())
    })
    .await;
    // Then a while more, so that a second suite report would be seen.
    let more = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(message)) = tokio::time::timeout_at(more, demo.reports.recv()).await {
        reports.push(livecheck::codec::decode_report(message.payload().unwrap()).unwrap());
    }
    let tests: Vec<_> = reports.iter().filter(|r| r.test.is_some()).collect();
    for report in &tests {
        assert_eq!(report.state, State::Timeout, "{report:#?}");
        assert!(report.error.as_deref().unwrap().contains("order_executed"));
        // Every stage before the broken one was seen.
        assert_eq!(report.signal_latency.len(), 3, "{report:#?}");
    }
    let suites: Vec<_> = reports.iter().filter(|r| r.is_suite()).collect();
    assert_eq!(suites.len(), 1, "{suites:#?}");
    assert_eq!(suites[0].state, State::Fail);
    assert!(suites[0]
        .error
        .as_deref()
        .unwrap()
        .contains("3 consecutive failures"));
    demo.worker.stop().await;
}
