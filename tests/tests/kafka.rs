//! The Kafka transport against a real broker (tansu, started per test on a free loopback port,
//! or LIVECHECK_TEST_BROKERS).

use std::time::Duration;

use livecheck::codec::Codec;
use livecheck::propagation::kafka::{attach_test_headers, handle_message, test_from_message};
use livecheck::{Case, CaseConfig, State};
use livecheck_tests::broker::Broker;
use livecheck_tests::cases::{flow, Step, FIRST, SECOND};
use livecheck_tests::support::{
    more_reports, plain_consumer, plain_producer, produce_raw, read_json_until, reports_for,
    service_client, unique_config, RunningWorker,
};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;

fn flow_case() -> Vec<CaseConfig> {
    vec![CaseConfig::from(flow.descriptor())]
}

/// What a service does next in a test: a record to `topic`, with the current test's headers.
async fn produce_order(producer: &rdkafka::producer::FutureProducer, topic: &str, key: &str) {
    let headers = attach_test_headers(OwnedHeaders::new());
    producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload("order")
                .headers(headers),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
}

fn step(stage: u32, value: &str) -> Step {
    Step {
        stage,
        value: value.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_fail_and_timeout_reach_the_report_topic() {
    let broker = Broker::start();
    let config = unique_config(&broker, 4);
    let worker = RunningWorker::start(&config, flow_case()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let service = service_client(&config);

    let reports = plain_consumer(&broker, &config.topics.reports);
    service
        .scope(async {
            flow.trigger("pass", "a".into(), 1, 20_000).await.unwrap();
            flow.trigger("fail", "a".into(), 1, 20_000).await.unwrap();
            flow.trigger("timeout", "a".into(), 1, 1_000).await.unwrap();
            FIRST.send_to("pass", &step(1, "a")).await.unwrap();
            FIRST.send_to("fail", &step(1, "b")).await.unwrap();
        })
        .await;
    let ids = ["pass", "fail", "timeout"].map(String::from);
    let by_id = reports_for(&reports, &ids, Duration::from_secs(60)).await;
    assert_eq!(by_id["pass"][0].state, State::Pass);
    assert!(by_id["pass"][0].signal_latency.contains_key("first"));
    assert_eq!(by_id["fail"][0].state, State::Fail);
    assert_eq!(
        by_id["fail"][0].error.as_deref(),
        Some("first stage saw \"b\", want \"a\"")
    );
    assert_eq!(by_id["timeout"][0].state, State::Timeout);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faust_json_records_have_the_documented_shape() {
    let broker = Broker::start();
    let mut config = unique_config(&broker, 2);
    config.codec = Codec::Json;
    let worker = RunningWorker::start(&config, flow_case()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let service = service_client(&config);
    service
        .scope(async {
            flow.trigger("j1", "x".into(), 1, 20_000).await.unwrap();
            FIRST.send_to("j1", &step(1, "x")).await.unwrap();
        })
        .await;

    let tests = plain_consumer(&broker, &config.topics.tests);
    let test = read_json_until(&tests, Duration::from_secs(30), |s| !s.is_empty()).await;
    let test = &test[0];
    assert_eq!(
        test["__faust"]["ns"],
        "faust.livecheck.models.TestExecution"
    );
    assert_eq!(test["id"], "j1");
    assert_eq!(test["case_name"], "it.flow");
    assert_eq!(test["test_args"], serde_json::json!(["x", 1, 20000]));
    assert_eq!(test["test_kwargs"], serde_json::json!({}));
    let stamp = test["timestamp"].as_str().unwrap();
    assert!(stamp.ends_with('Z') && stamp.len() == 27, "{stamp}");
    assert!(test["expires"].as_str().unwrap().ends_with('Z'));

    let bus = plain_consumer(&broker, &config.topics.bus);
    // The bus also carries workers' progress markers (case `__livecheck`): find the signal.
    let is_signal = |v: &serde_json::Value| v["case_name"] != "__livecheck";
    let bus_records =
        read_json_until(&bus, Duration::from_secs(30), |s| s.iter().any(is_signal)).await;
    let signal = bus_records.iter().find(|v| is_signal(v)).unwrap();
    assert_eq!(
        signal["__faust"]["ns"],
        "faust.livecheck.models.SignalEvent"
    );
    assert_eq!(signal["signal_name"], "first");
    assert_eq!(signal["case_name"], "it.flow");
    assert_eq!(signal["key"], "j1");
    assert_eq!(
        signal["value"],
        serde_json::json!({"stage": 1, "value": "x"})
    );

    let reports = plain_consumer(&broker, &config.topics.reports);
    let report = &read_json_until(&reports, Duration::from_secs(30), |s| !s.is_empty()).await[0];
    assert_eq!(report["__faust"]["ns"], "faust.livecheck.models.TestReport");
    assert_eq!(report["case_name"], "it.flow");
    assert_eq!(report["state"], "111/***/111");
    assert_eq!(report["test"]["id"], "j1");
    // The test ran within the 30 s this read waited, and its one wait within the test.
    let runtime = report["runtime"].as_f64().unwrap();
    assert!((0.0..30.0).contains(&runtime), "runtime {runtime}");
    let latency = report["signal_latency"]["first"].as_f64().unwrap();
    assert!(
        (0.0..=runtime).contains(&latency),
        "latency {latency}, runtime {runtime}"
    );
    assert!(report["error"].is_null() && report["traceback"].is_null());
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_handler_passes_the_test_headers_on() {
    let broker = Broker::start();
    let config = unique_config(&broker, 2);
    let next = Broker::unique("next");
    broker.create_topic(&next, 1);
    let transport = livecheck::transport::kafka::KafkaTransport::new(config.clone()).unwrap();
    transport.ensure_topics().await.unwrap();
    let service = service_client(&config);
    let producer = plain_producer(&broker);

    // The first service triggers a test and produces to the next topic inside its scope.
    let test = service
        .scope(flow.trigger("h1", "x".into(), 1, 1_000))
        .await
        .unwrap();
    livecheck::with_test(test.clone(), produce_order(&producer, &next, "h1")).await;
    // Outside a test scope nothing is attached.
    assert_eq!(attach_test_headers(OwnedHeaders::new()).count(), 0);

    // The next service reads it: the test is there, and is current inside the handler.
    let consumer = plain_consumer(&broker, &next);
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    let seen = test_from_message(&message).expect("the message carries the test");
    assert_eq!(seen.id, "h1");
    assert_eq!(seen.case_name, "it.flow");
    assert_eq!(seen.timestamp, test.timestamp);
    assert_eq!(seen.expires, test.expires);
    let names: Vec<_> = message
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.key.to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "LiveCheck-Test-Id",
            "LiveCheck-Test-Name",
            "LiveCheck-Test-Timestamp",
            "LiveCheck-Test-Expires",
            "traceparent"
        ]
    );
    // Triggered outside any trace: the test started one of its own, and it travels on.
    assert_eq!(seen.traceparent, test.traceparent);
    assert!(test.traceparent.is_some());
    let current = handle_message(&message, async {
        livecheck::current_test().map(|t| t.id.clone())
    })
    .await;
    assert_eq!(current.as_deref(), Some("h1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_counted_and_skipped() {
    let broker = Broker::start();
    let config = unique_config(&broker, 2);
    let worker = RunningWorker::start(&config, flow_case()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let producer = plain_producer(&broker);
    let garbage = futures::future::join_all((0..1000).map(|i| {
        let producer = &producer;
        let config = &config;
        async move {
            let key = format!("junk-{i}");
            let payload = format!("\u{1}not a record {i}");
            produce_raw(producer, &config.topics.tests, &key, payload.as_bytes()).await;
            produce_raw(producer, &config.topics.bus, &key, payload.as_bytes()).await;
        }
    }));
    garbage.await;

    let service = service_client(&config);
    let reports = plain_consumer(&broker, &config.topics.reports);
    let ids: Vec<String> = (0..5).map(|i| format!("after-{i}")).collect();
    service
        .scope(async {
            for id in &ids {
                flow.trigger(id.clone(), "ok".into(), 1, 30_000)
                    .await
                    .unwrap();
                FIRST.send_to(id, &step(1, "ok")).await.unwrap();
            }
        })
        .await;
    let by_id = reports_for(&reports, &ids, Duration::from_secs(60)).await;
    for id in &ids {
        assert_eq!(by_id[id][0].state, State::Pass, "{id}");
    }
    let counters = livecheck::Introspect::snapshot(&*worker.transport).counters;
    assert_eq!(counters.undecodable_tests, 1000);
    assert_eq!(counters.undecodable_signals, 1000);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_split_the_partitions_and_every_test_gets_one_report() {
    let broker = Broker::start();
    let config = unique_config(&broker, 4);
    let a = RunningWorker::start(&config, flow_case()).await;
    let b = RunningWorker::start(&config, flow_case()).await;
    // Both members must hold their share before the tests go out: wait for the rebalance that
    // follows the second join to settle into two disjoint halves.
    let (mut wa, mut wb) = (a.transport.assignment(), b.transport.assignment());
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (pa, pb) = (
                wa.borrow_and_update().clone(),
                wb.borrow_and_update().clone(),
            );
            let mut all: Vec<i32> = pa.iter().chain(&pb).copied().collect();
            all.sort_unstable();
            if !pa.is_empty() && !pb.is_empty() && all == [0, 1, 2, 3] {
                return (pa, pb);
            }
            tokio::select! {
                _ = wa.changed() => {}
                _ = wb.changed() => {}
            }
        }
    })
    .await;
    let (pa, pb) = settled.expect("the two workers never split the partitions");
    assert_eq!(pa.len() + pb.len(), 4, "a={pa:?} b={pb:?}");

    let service = service_client(&config);
    let reports = plain_consumer(&broker, &config.topics.reports);
    let ids: Vec<String> = (0..200).map(|i| format!("split-{i}")).collect();
    service
        .scope(async {
            for id in &ids {
                flow.trigger(id.clone(), "v".into(), 1, 30_000)
                    .await
                    .unwrap();
            }
            for id in &ids {
                FIRST.send_to(id, &step(1, "v")).await.unwrap();
            }
        })
        .await;
    let mut by_id = reports_for(&reports, &ids, Duration::from_secs(120)).await;
    // Any duplicate comes after the first report: read on until 2 s pass without a report.
    more_reports(&reports, &mut by_id, Duration::from_secs(2)).await;
    for id in &ids {
        assert_eq!(by_id[id].len(), 1, "{id} has {} reports", by_id[id].len());
        assert_eq!(by_id[id][0].state, State::Pass, "{id}");
    }
    let ran_a = a.handle.stats().tests_received;
    let ran_b = b.handle.stats().tests_received;
    assert_eq!(ran_a + ran_b, 200);
    assert!(ran_a > 0 && ran_b > 0, "split a={ran_a} b={ran_b}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_stage_signals_arrive_and_tests_pass() {
    let broker = Broker::start();
    let config = unique_config(&broker, 2);
    let worker = RunningWorker::start(&config, flow_case()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let service = service_client(&config);
    let reports = plain_consumer(&broker, &config.topics.reports);
    let test = service
        .scope(flow.trigger("two", "z".into(), 2, 20_000))
        .await
        .unwrap();
    // A service handling the test's request sends both signals in its scope.
    service
        .scope(livecheck::with_test(test, async {
            FIRST.send(&step(1, "z")).await.unwrap();
            SECOND.send(&step(2, "z")).await.unwrap();
        }))
        .await;
    let by_id = reports_for(&reports, &["two".to_string()], Duration::from_secs(60)).await;
    assert_eq!(by_id["two"][0].state, State::Pass);
    assert_eq!(by_id["two"][0].signal_latency.len(), 2);
    worker.stop().await;
}

/// A `traceparent` entering a service through HTTP leaves on the next Kafka record of
/// the test it triggers, on the test's signals, and appears in the test's report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_entering_through_http_leaves_on_the_next_record_and_reaches_the_report() {
    use axum::routing::post;
    use livecheck::propagation::http::TestContextLayer;
    use livecheck::trace::TraceParent;

    const INCOMING: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let broker = Broker::start();
    let config = unique_config(&broker, 2);
    let next = Broker::unique("next");
    broker.create_topic(&next, 1);
    let worker = RunningWorker::start(&config, flow_case()).await;
    worker.wait_assigned(Duration::from_secs(30)).await;
    let reports = plain_consumer(&broker, &config.topics.reports);
    let bus = plain_consumer(&broker, &config.topics.bus);

    // The service: an HTTP handler that triggers a test, produces its next record in it and
    // sends the test's first signal, the way the orders demo does.
    let service = service_client(&config);
    let producer = plain_producer(&broker);
    let topic = next.clone();
    let router = axum::Router::new()
        .route(
            "/orders",
            post(move || async move {
                service
                    .scope(async {
                        let test = flow.trigger("traced", "a".into(), 1, 20_000).await.unwrap();
                        livecheck::with_test(test, async {
                            produce_order(&producer, &topic, "traced").await;
                            FIRST.send(&step(1, "a")).await.unwrap();
                        })
                        .await;
                    })
                    .await;
                "ok"
            }),
        )
        .layer(TestContextLayer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let response = reqwest::Client::new()
        .post(format!("http://{address}/orders"))
        .header("traceparent", INCOMING)
        .header("tracestate", "vendor=opaque")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let incoming: TraceParent = INCOMING.parse().unwrap();

    // The next record carries the trace as it came, beside the test's headers.
    let consumer = plain_consumer(&broker, &next);
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    let header = |name: &str| {
        message
            .headers()
            .unwrap()
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("traceparent").as_deref(), Some(INCOMING));
    assert_eq!(header("tracestate").as_deref(), Some("vendor=opaque"));
    assert_eq!(header("LiveCheck-Test-Id").as_deref(), Some("traced"));
    let seen = test_from_message(&message).unwrap();
    assert_eq!(seen.traceparent, Some(incoming));

    // So does the signal the service sent in the test.
    let signal = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let message = bus.recv().await.unwrap();
            if message.key() == Some(&b"traced"[..]) {
                return message.detach();
            }
        }
    })
    .await
    .expect("the signal on the bus");
    let traceparent = signal
        .headers()
        .and_then(|h| {
            h.iter()
                .find(|h| h.key == "traceparent")
                .and_then(|h| h.value)
        })
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(traceparent.as_deref(), Some(INCOMING));

    // The worker ran the test in that trace: its report names the trace id.
    let by_id = reports_for(&reports, &["traced".to_owned()], Duration::from_secs(60)).await;
    let report = &by_id["traced"][0];
    assert_eq!(report.state, State::Pass, "{report:?}");
    assert_eq!(
        report.trace_id.as_deref(),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    assert_eq!(
        report.test.as_ref().and_then(|t| t.traceparent),
        Some(incoming)
    );
    worker.stop().await;
}

/// A report's record carries the time its verdict fell, on every attempt: published again after
/// a broker outage, it still says when the test ended, not when the broker came back (a fault
/// run judged a true TIMEOUT false because its report, published again, was stamped later than
/// the signal that came after the verdict).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_record_is_stamped_with_its_verdict_time() {
    use livecheck::Consume;

    let broker = Broker::start();
    let config = unique_config(&broker, 1);
    let transport = livecheck::transport::kafka::KafkaTransport::new(config.clone()).unwrap();
    transport.ensure_topics().await.unwrap();
    let verdict_at = chrono::Utc::now() - chrono::Duration::seconds(42);
    let report = livecheck::TestReport {
        case_name: "it.stamped".into(),
        state: State::Timeout,
        test: Some(livecheck::TestExecution::new(
            "stamped-1",
            "it.stamped",
            verdict_at,
            verdict_at + chrono::Duration::minutes(10),
        )),
        runtime: Some(10.0),
        signal_latency: Default::default(),
        error: Some("signal x did not arrive within 10.00s".into()),
        traceback: None,
        attempt: 1,
        timed_out_signal: Some("x".into()),
        trace_id: None,
    };
    transport
        .publish_report(&report, verdict_at)
        .await
        .expect("published");
    let reports = plain_consumer(&broker, &config.topics.reports);
    let message = tokio::time::timeout(Duration::from_secs(30), reports.recv())
        .await
        .expect("a report within 30 s")
        .expect("report topic");
    assert_eq!(
        message.timestamp().to_millis(),
        Some(verdict_at.timestamp_millis())
    );
}
