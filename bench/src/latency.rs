//! Signal latency: from a service's `Signal::send` call to the return of the case's `wait`, one
//! signal at a time, on a worker running in this process and a service client with a producer
//! of its own.
//!
//! Each test of `bench.latency` waits for three signals in turn. The service sends each one as
//! soon as the case says it waits for it (as the floor produces as soon as it consumed), inside
//! `with_test`, so `send` is keyed by the test as in a real service. The value of a signal is
//! the `now_ns()` of the moment `send` was called; the case subtracts it from the moment its
//! `wait` returned. Part of `cargo run --release -p bench`.

use std::time::Duration;

use livecheck::{Case, CaseConfig, WorkerSettings};

use crate::cases::{latency_probe, now_ns, probes, Probe, LAT_1, LAT_2, LAT_3};
use crate::setup::{service_client, unique_config, Reports, RunningWorker};
use crate::stats::Samples;

/// How long the benchmark waits for one step of the case.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Latency of the three signals, and of the first one of each test alone.
#[derive(Debug)]
pub(crate) struct Latency {
    /// Every signal.
    pub(crate) all: Samples,
    /// The first signal of each test: sent when the case starts waiting, right after the
    /// worker's tests consumer got the test, so at any point of the bus consumer's fetch.
    pub(crate) first: Samples,
    /// The second and third: sent right after the bus consumer delivered the one before.
    pub(crate) later: Samples,
}

/// Measures `samples` signals (after `warmup` unrecorded ones).
pub(crate) async fn run(brokers: &str, samples: usize, warmup: usize) -> Result<Latency, String> {
    let config = unique_config(brokers, "latency");
    let worker = RunningWorker::start(
        &config,
        vec![CaseConfig::from(latency_probe.descriptor())],
        WorkerSettings::default(),
        Reports::default(),
    )
    .await?;
    let service = service_client(&config)?;
    let mut probes = probes();
    let signals = [&LAT_1, &LAT_2, &LAT_3];
    let mut recorded = Vec::with_capacity(samples);
    let (mut first, mut later) = (Vec::new(), Vec::new());
    let mut seen = 0;
    let mut n = 0;
    while recorded.len() < samples {
        n += 1;
        let id = format!("latency-{n}");
        let test = service
            .scope(latency_probe.trigger(id.clone()))
            .await
            .map_err(|e| format!("trigger: {e}"))?;
        for (index, signal) in signals.into_iter().enumerate() {
            match next_probe(&mut probes).await? {
                Probe::Waiting { test, signal } if test == id && signal == index => {}
                other => return Err(format!("unexpected {other:?}")),
            }
            let sent = now_ns();
            service
                .scope(livecheck::with_test(test.clone(), signal.send(&sent)))
                .await
                .map_err(|e| format!("send: {e}"))?;
            match next_probe(&mut probes).await? {
                Probe::Received {
                    test,
                    signal,
                    latency,
                } if test == id && signal == index => {
                    seen += 1;
                    if seen > warmup && recorded.len() < samples {
                        recorded.push(latency);
                        if index == 0 {
                            first.push(latency)
                        } else {
                            later.push(latency)
                        }
                    }
                }
                other => return Err(format!("unexpected {other:?}")),
            }
        }
    }
    worker.stop().await;
    Ok(Latency {
        all: Samples::new(recorded),
        first: Samples::new(first),
        later: Samples::new(later),
    })
}

async fn next_probe(
    probes: &mut tokio::sync::mpsc::UnboundedReceiver<Probe>,
) -> Result<Probe, String> {
    tokio::time::timeout(STEP_TIMEOUT, probes.recv())
        .await
        .map_err(|_| format!("bench.latency said nothing for {STEP_TIMEOUT:?}"))?
        .ok_or_else(|| "probe channel closed".to_owned())
}
