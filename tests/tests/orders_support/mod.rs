//! Shared set-up of the orders tests (each scenario runs in its own test binary, since the
//! demo case finds the orders API through a process-wide setting).
#![allow(dead_code)]

use std::time::Duration;

use livecheck::{Case, CaseConfig};
use livecheck_examples::orders::{self, case::test_order, OrdersConfig};
use livecheck_tests::broker::Broker;
use livecheck_tests::support::{plain_consumer, service_client, unique_config, RunningWorker};
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;

pub(crate) struct Demo {
    pub(crate) base: String,
    pub(crate) worker: RunningWorker,
    pub(crate) reports: StreamConsumer,
    _broker: Broker,
}

pub(crate) async fn start(break_execution: bool) -> Demo {
    let broker = Broker::start();
    let config = unique_config(&broker, 4);
    let mut orders_config = OrdersConfig::new(broker.bootstrap());
    orders_config.orders_topic = Broker::unique("orders");
    orders_config.execution_topic = Broker::unique("order-execution");
    orders_config.group_prefix = Broker::unique("orders-group");
    orders_config.break_execution = break_execution;
    broker.create_topic(&orders_config.orders_topic, 4);
    broker.create_topic(&orders_config.execution_topic, 4);

    let worker =
        RunningWorker::start(&config, vec![CaseConfig::from(test_order.descriptor())]).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    orders::case::set_service_url(&base);
    tokio::spawn(orders::run(
        orders_config,
        service_client(&config),
        listener,
    ));
    let reports = plain_consumer(&broker, &config.topics.reports);
    Demo {
        base,
        worker,
        reports,
        _broker: broker,
    }
}

/// Places `n` sell orders through the API; returns their ids.
pub(crate) async fn place_orders(base: &str, n: usize) -> Vec<String> {
    let client = livecheck::propagation::http::client();
    let mut ids = Vec::new();
    for _ in 0..n {
        let response = client
            .get(format!("{base}/order/init/sell/"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let order: orders::Order = response.json().await.unwrap();
        ids.push(order.id);
    }
    ids
}

/// Reads reports until `done` says so.
pub(crate) async fn read_reports(
    reports: &StreamConsumer,
    within: Duration,
    mut done: impl FnMut(&[livecheck::TestReport]) -> bool,
) -> Vec<livecheck::TestReport> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while !done(&seen) {
        let message = tokio::time::timeout_at(deadline, reports.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} reports in time: {seen:#?}", seen.len()))
            .unwrap();
        seen.push(livecheck::codec::decode_report(message.payload().unwrap()).unwrap());
    }
    seen
}
