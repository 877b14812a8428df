//! Service-side cost, in a tight loop with `black_box`: what a service pays per request for
//! `maybe_trigger` on a case at probability 0 (the request is not sampled), and for attaching the
//! current test's four `LiveCheck-Test-*` headers to an outgoing Kafka record
//! (`attach_test_headers` inside `with_test`). No broker involved. Part of
//! `cargo run --release -p bench`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use livecheck::propagation::kafka::attach_test_headers;
use livecheck::TestExecution;
use rdkafka::message::OwnedHeaders;

use crate::cases::never;

/// How many times each loop is timed; the median is kept.
const ROUNDS: usize = 7;

/// Nanoseconds per call.
#[derive(Debug)]
pub(crate) struct Micro {
    /// `never.maybe_trigger(id, n)` polled to completion (probability 0: nothing published).
    pub(crate) maybe_trigger_ns: f64,
    /// `attach_test_headers(OwnedHeaders::new())` inside `with_test`, dropping the headers.
    pub(crate) attach_headers_ns: f64,
    /// `OwnedHeaders::new()` and its drop alone: librdkafka's part of the line above.
    pub(crate) empty_headers_ns: f64,
}

/// Times each operation `iterations` times per round.
pub(crate) fn run(iterations: u64) -> Micro {
    let mut cx = Context::from_waker(Waker::noop());
    let maybe_trigger_ns = median_ns(iterations, || {
        for n in 0..iterations {
            let fut = pin!(never.maybe_trigger(black_box("order-1"), black_box(n)));
            match fut.poll(&mut cx) {
                Poll::Ready(result) => {
                    black_box(result.ok());
                }
                Poll::Pending => unreachable!("probability 0 never publishes"),
            }
        }
    });
    let empty_headers_ns = median_ns(iterations, || {
        for _ in 0..iterations {
            black_box(OwnedHeaders::new());
        }
    });
    let test = sample_test();
    let attach_headers_ns = median_ns(iterations, || {
        let scoped = pin!(livecheck::with_test(test.clone(), async {
            for _ in 0..iterations {
                black_box(attach_test_headers(black_box(OwnedHeaders::new())));
            }
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(scoped.poll(&mut cx).is_ready());
    });
    Micro {
        maybe_trigger_ns,
        attach_headers_ns,
        empty_headers_ns,
    }
}

fn median_ns(iterations: u64, mut round: impl FnMut()) -> f64 {
    let mut per_call: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            round();
            started.elapsed().as_nanos() as f64 / iterations as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[ROUNDS / 2]
}

fn sample_test() -> TestExecution {
    let now = chrono::Utc::now();
    let id = "0b9c4a52-5b8e-4f8e-9a51-3f1d2c6e7a90";
    TestExecution {
        test_args: vec![serde_json::Value::from("sell")],
        ..TestExecution::new(
            id,
            "orders.test_order",
            now,
            now + chrono::Duration::hours(3),
        )
    }
}
