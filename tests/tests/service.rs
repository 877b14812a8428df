//! A service is never slowed by livecheck: an HTTP handler that triggers a
//! test and sends a signal answers as fast with the broker stopped as with it up; what cannot
//! reach Kafka is dropped, counted and logged once, and delivery can still be awaited.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use livecheck::{Client, SendError};
use livecheck_tests::broker::Broker;
use livecheck_tests::support::{service_client, unique_config};

/// Requests timed with the broker stopped.
const REQUESTS: usize = 200;
/// The producer's queue, in messages: small, so that the outage fills it.
const QUEUE: usize = 100;

/// A checkout, sampled every time.
#[livecheck::case(name = "service.checkout", probability = 1.0)]
async fn checkout(order: u64) -> livecheck::Result {
    let paid = PAID.wait().timeout("10s").await?;
    livecheck::ensure!(paid == order, "paid {paid}, want {order}");
    Ok(())
}

livecheck::signal! {
    /// The payment went through.
    PAID: u64 for checkout;
}

/// The handler of a service using livecheck: maybe trigger a test, and signal in its scope.
async fn place_order(order: u64) -> &'static str {
    match checkout
        .maybe_trigger(format!("order-{order}"), order)
        .await
    {
        Ok(Some(test)) => {
            livecheck::with_test(test, async {
                PAID.send(&order).await.expect("send");
            })
            .await
        }
        Ok(None) => {}
        Err(error) => panic!("trigger: {error}"),
    }
    "ok"
}

/// The service: `POST /orders/{n}`, with `client` in effect for each request.
async fn serve(client: Client) -> (String, tokio::sync::oneshot::Sender<()>) {
    let router = Router::new().route(
        "/orders/{n}",
        post(move |axum::extract::Path(n): axum::extract::Path<u64>| {
            let client = client.clone();
            async move { client.scope(place_order(n)).await }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
    });
    (format!("http://{address}"), stop)
}

/// Times `n` requests, one after another, from `first`; each must answer 200.
async fn time_requests(http: &reqwest::Client, base: &str, first: u64, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for order in first..first + n as u64 {
        let started = Instant::now();
        let response = http
            .post(format!("{base}/orders/{order}"))
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status(), 200);
        times.push(started.elapsed());
    }
    times
}

/// The nearest-rank percentile `p` (0–100).
fn percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, needle: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|l| l.contains(needle)).count()
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_does_not_slow_a_request_handler() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("warn,livecheck=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let mut broker = Broker::start();
    let mut config = unique_config(&broker, 2);
    config.properties = vec![
        ("queue.buffering.max.messages".into(), QUEUE.to_string()),
        // Queued messages give up 2 s into the outage, so the test sees them counted.
        ("message.timeout.ms".into(), "2000".into()),
    ];
    livecheck::transport::kafka::KafkaTransport::new(config.clone())
        .unwrap()
        .ensure_topics()
        .await
        .unwrap();
    let client = service_client(&config);
    let (base, stop) = serve(client.clone()).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    // Broker up: the normal latency, everything delivered, and delivery can be awaited.
    let up = time_requests(&http, &base, 0, 50).await;
    client.flush(Duration::from_secs(10)).await.unwrap();
    client
        .scope(PAID.send_to("order-0", &0).delivered())
        .await
        .expect("delivered with the broker up");
    let counters = client.counters();
    assert_eq!((counters.dropped, counters.undelivered), (0, 0));

    // Broker down: the same handler, timed again.
    tokio::task::block_in_place(|| broker.stop());
    let down = time_requests(&http, &base, 1000, REQUESTS).await;
    let (up_p99, down_p50, down_p99) = (
        percentile(&up, 99.0),
        percentile(&down, 50.0),
        percentile(&down, 99.0),
    );
    eprintln!(
        "request latency: broker up p99 {up_p99:?}; broker down p50 {down_p50:?}, p99 \
         {down_p99:?}, max {:?} ({REQUESTS} requests)",
        down.iter().max().unwrap()
    );
    assert!(
        down_p99 < Duration::from_millis(50),
        "p99 with the broker down is {down_p99:?}"
    );

    // Every message of the outage is accounted for: dropped at once (the queue of QUEUE was
    // full), or queued and given up after message.timeout.ms.
    let sent = 2 * REQUESTS as u64;
    wait_until("every message counted", Duration::from_secs(30), || {
        let c = client.counters();
        c.dropped + c.undelivered == sent
    })
    .await;
    let counters = client.counters();
    eprintln!("outage: {counters:?}");
    assert!(
        counters.dropped >= sent - QUEUE as u64,
        "a queue of {QUEUE} holds at most {QUEUE} of {sent}: {counters:?}"
    );
    assert!(counters.undelivered > 0, "{counters:?}");

    // Awaiting delivery tells the truth with the broker down, within message.timeout.ms.
    let awaited = tokio::time::timeout(
        Duration::from_secs(10),
        client.scope(PAID.send_to("order-1000", &1000).delivered()),
    )
    .await
    .expect("delivered() ends with message.timeout.ms");
    assert!(
        matches!(awaited, Err(SendError::Transport(_))),
        "{awaited:?}"
    );

    // Logged, not flooded: one line per kind of loss (the next would come a minute later).
    assert_eq!(logs.lines_with("livecheck: message dropped"), 1);
    assert_eq!(logs.lines_with("livecheck: message not delivered"), 1);
    let _ = stop.send(());
}
