//! A sampled request's cost to a service (livecheck must not slow it): `maybe_trigger` on a case of
//! probability 1 and `Signal::send` in the test's scope, timed one request at a time, with the
//! broker up, with it stopped, and with it stopped and the producer's queue full (every message
//! dropped). Neither call may wait on the broker: the target is p99 < 50 µs in each.
//!
//! The broker that goes down is a tansu of its own (started and stopped here), so the others'
//! measurements keep theirs. Part of `cargo run --release -p bench` (`--only service`).

use std::time::{Duration, Instant};

use livecheck::transport::kafka::KafkaTransport;
use livecheck::Client;
use livecheck_tests::broker::Broker;

use crate::cases::{sampled, PAID};
use crate::setup::{service_client, unique_config};
use crate::stats::Samples;

/// Unrecorded requests before each timed run (first-call costs: the thread's RNG, tracing's
/// call sites, librdkafka's topic handles).
const WARMUP: usize = 200;
/// The producer's queue, in messages, of the "queue full" run.
pub(crate) const SMALL_QUEUE: u64 = 1000;

/// The request path's timings.
#[derive(Debug)]
pub(crate) struct RequestPath {
    /// Requests per run.
    pub(crate) requests: usize,
    /// The broker up.
    pub(crate) up: Samples,
    /// The broker stopped: everything queued.
    pub(crate) down: Samples,
    /// The broker stopped and the queue full: (nearly) everything dropped.
    pub(crate) full: Samples,
    /// Messages the "queue full" run dropped (of 2 per request).
    pub(crate) full_dropped: u64,
    /// Messages the other two runs dropped (must be 0).
    pub(crate) other_dropped: u64,
}

/// Times `requests` requests in each state.
pub(crate) async fn run(brokers: &str, requests: usize) -> Result<RequestPath, String> {
    // Broker up: the benchmark's broker.
    let config = unique_config(brokers, "request");
    ensure_topics(&config).await?;
    let up_client = service_client(&config)?;
    time(&up_client, WARMUP, 0).await?;
    let up = time(&up_client, requests, WARMUP as u64).await?;
    flush(&up_client).await?;

    // Broker down: a tansu of its own, stopped once the clients have its topics' metadata.
    let mut own = tokio::task::spawn_blocking(Broker::start)
        .await
        .map_err(|e| format!("start tansu: {e}"))?;
    let config = unique_config(&own.bootstrap(), "request-down");
    ensure_topics(&config).await?;
    let down_client = service_client(&config)?;
    let mut small = config.clone();
    small.properties.push((
        "queue.buffering.max.messages".into(),
        SMALL_QUEUE.to_string(),
    ));
    let full_client = service_client(&small)?;
    for client in [&down_client, &full_client] {
        time(client, 10, 0).await?;
        flush(client).await?;
    }
    own = tokio::task::spawn_blocking(move || {
        own.stop();
        own
    })
    .await
    .map_err(|e| format!("stop tansu: {e}"))?;
    time(&down_client, WARMUP, 1_000_000).await?;
    let down = time(&down_client, requests, 2_000_000).await?;
    // Fill the small queue first, so that every timed request meets a full one.
    time(&full_client, SMALL_QUEUE as usize, 3_000_000).await?;
    let before = full_client.counters().dropped;
    let full = time(&full_client, requests, 4_000_000).await?;
    let full_dropped = full_client.counters().dropped - before;
    let other_dropped = up_client.counters().dropped + down_client.counters().dropped;
    drop(own);
    Ok(RequestPath {
        requests,
        up,
        down,
        full,
        full_dropped,
        other_dropped,
    })
}

async fn ensure_topics(config: &livecheck::transport::kafka::KafkaConfig) -> Result<(), String> {
    KafkaTransport::new(config.clone())
        .map_err(|e| e.to_string())?
        .ensure_topics()
        .await
        .map_err(|e| format!("topics: {e}"))
}

async fn flush(client: &Client) -> Result<(), String> {
    client
        .flush(Duration::from_secs(30))
        .await
        .map_err(|e| format!("flush: {e}"))
}

/// `n` requests numbered from `first`, each timed alone: what a service's handler does when the
/// request is sampled.
async fn time(client: &Client, n: usize, first: u64) -> Result<Samples, String> {
    client
        .scope(async {
            let mut samples = Vec::with_capacity(n);
            for order in first..first + n as u64 {
                let started = Instant::now();
                let test = sampled
                    .maybe_trigger(format!("order-{order}"), order)
                    .await
                    .map_err(|e| format!("trigger: {e}"))?
                    .ok_or("probability 1 always samples")?;
                livecheck::with_test(test, PAID.send(&order))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
                samples.push(started.elapsed());
            }
            Ok(Samples::new(samples))
        })
        .await
}
