//! The livecheck side of the cross-language test with Faust (tests/faust/cross.sh runs it).
//!
//! - `livecheck-faust-cross [livecheck flags]`: a livecheck worker (`livecheck::main`) with the
//!   case `cross.faust_service`, whose tests and signals a Faust service sends
//!   (tests/faust/cross.py `service`). Run it with `--codec json --case cross.faust_service`.
//! - `livecheck-faust-cross service --brokers B --prefix P --run R --tests N`: a livecheck
//!   service (json codec) that triggers N tests of `cross.livecheck_service`, with a record
//!   argument, and sends the case's record-typed signals in each test's scope; a Faust worker
//!   runs them (tests/faust/cross.py `worker`).
//!
//! The records match tests/faust/cross.py's `cross.models.*` classes field for field.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use livecheck::codec::Codec;
use livecheck::transport::kafka::{KafkaConfig, KafkaTransport, Topics};
use livecheck::transport::Consume;
use livecheck::Client;
use serde::{Deserialize, Serialize};

/// `class Line(faust.Record, namespace="cross.models.Line")`.
#[livecheck::faust_record(ns = "cross.models.Line")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: u64,
}

/// `class Order(faust.Record, namespace="cross.models.Order")`; denies unknown fields, so a
/// marker that was not skipped would fail the test.
#[livecheck::faust_record(ns = "cross.models.Order")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    id: String,
    side: String,
    lines: Vec<Line>,
}

/// `class Execution(faust.Record, namespace="cross.models.Execution")`.
#[livecheck::faust_record(ns = "cross.models.Execution")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Execution {
    order_id: String,
    n: u64,
}

/// The order of test `n`, as tests/faust/cross.py `make_order` builds it.
fn make_order(run: &str, n: u64) -> Order {
    Order {
        id: format!("{run}-{n}"),
        side: if n % 2 == 1 { "sell" } else { "buy" }.into(),
        lines: vec![
            Line {
                sku: format!("sku-{n}"),
                qty: n,
            },
            Line {
                sku: "extra".into(),
                qty: 1,
            },
        ],
    }
}

/// Triggered by a Faust service: the order positionally, `n` by name (test_kwargs).
#[livecheck::case(
    name = "cross.faust_service",
    probability = 1.0,
    warn_stalled_after = "1h"
)]
async fn faust_service(order: Order, n: u64) -> livecheck::Result {
    let placed = ORDER_PLACED.wait().timeout("120s").await?;
    livecheck::ensure!(placed == order, "order_placed {placed:?} != {order:?}");
    let executed = ORDER_EXECUTED.wait().timeout("120s").await?;
    livecheck::ensure!(
        executed.order_id == order.id && executed.n == n,
        "order_executed {executed:?} for order {} n {n}",
        order.id
    );
    Ok(())
}

livecheck::signal! {
    /// Sent by the Faust service.
    ORDER_PLACED: Order for faust_service;
    /// Sent by the Faust service.
    ORDER_EXECUTED: Execution for faust_service;
}

/// Triggered by this binary's service mode and run by a Faust worker, whose case of the same
/// name checks the same things (a livecheck worker could run this one).
#[livecheck::case(
    name = "cross.livecheck_service",
    probability = 1.0,
    warn_stalled_after = "1h"
)]
async fn livecheck_service(order: Order, n: u64) -> livecheck::Result {
    let accepted = ORDER_ACCEPTED.wait().timeout("120s").await?;
    livecheck::ensure!(
        accepted == order,
        "order_accepted {accepted:?} != {order:?}"
    );
    let shipped = ORDER_SHIPPED.wait().timeout("120s").await?;
    livecheck::ensure!(
        shipped.order_id == order.id && shipped.n == n,
        "{shipped:?}"
    );
    Ok(())
}

livecheck::signal! {
    /// Sent by this binary's service mode.
    ORDER_ACCEPTED: Order for livecheck_service;
    /// Sent by this binary's service mode.
    ORDER_SHIPPED: Execution for livecheck_service;
}

/// The flags of the service mode.
struct ServiceArgs {
    brokers: String,
    prefix: String,
    run: String,
    tests: u64,
}

impl ServiceArgs {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut brokers, mut prefix, mut run, mut tests) = (None, None, None, None);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--brokers" => brokers = Some(value),
                "--prefix" => prefix = Some(value),
                "--run" => run = Some(value),
                "--tests" => tests = Some(value.parse().map_err(|e| format!("--tests: {e}"))?),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(ServiceArgs {
            brokers: brokers.ok_or("--brokers is required")?,
            prefix: prefix.ok_or("--prefix is required")?,
            run: run.ok_or("--run is required")?,
            tests: tests.ok_or("--tests is required")?,
        })
    }
}

async fn service(args: ServiceArgs) -> Result<(), Box<dyn Error>> {
    // The one setting a service of a mixed deployment needs: Faust reads only JSON.
    let mut config = KafkaConfig::new(&args.brokers).with_codec(Codec::Json);
    config.topics = Topics::new(
        format!("{}-tests", args.prefix),
        format!("{}-bus", args.prefix),
        format!("{}-report", args.prefix),
    );
    let transport = Arc::new(KafkaTransport::new(config)?);
    let client = Client::from_arc(transport.clone());
    client
        .scope(async {
            for n in 0..args.tests {
                let order = make_order(&args.run, n);
                let test = livecheck_service
                    .trigger(order.id.clone(), order.clone(), n)
                    .await?;
                livecheck::with_test(test, async {
                    ORDER_ACCEPTED.send(&order).await?;
                    ORDER_SHIPPED
                        .send(&Execution {
                            order_id: order.id.clone(),
                            n,
                        })
                        .await
                })
                .await?;
            }
            Ok::<_, Box<dyn Error>>(())
        })
        .await?;
    // Flushes what is still queued.
    transport.close().await?;
    eprintln!(
        "livecheck-faust-cross service: triggered {} tests and sent their signals",
        args.tests
    );
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) != Some("service") {
        return livecheck::main();
    }
    args.next();
    let args = match ServiceArgs::parse(args) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("livecheck-faust-cross service: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("livecheck-faust-cross service: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(service(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("livecheck-faust-cross service: {error}");
            ExitCode::FAILURE
        }
    }
}
