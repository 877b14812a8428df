//! The `livecheck` demo binary's `main`: the orders system and a livecheck worker watching it
//! (also `livecheck run --once`, for CI).
//!
//! With no `--brokers`: an embedded Kafka, the orders services on 127.0.0.1:8080 (`ORDERS_BIND`
//! to change; a port in use is an error, exit code 1) and the worker, all in this process. With
//! `--brokers`, only the worker: run the services with `cargo run --bin orders`.

use std::process::ExitCode;

use crate::orders::{self, OrdersConfig};

/// Runs the demo: `livecheck::main_with` and a set-up hook that starts the orders services on
/// the embedded broker.
pub fn main() -> ExitCode {
    livecheck::main_with(|started| async move {
        let Some(embedded) = started.embedded.clone() else {
            return; // Real brokers: the services run as their own binary.
        };
        // `run --once` waits for the services (until `ready` is dropped).
        let ready = started.ready.defer();
        let config = OrdersConfig::new(started.brokers.clone());
        for topic in [&config.orders_topic, &config.execution_topic] {
            if let Err(error) = embedded.create_topic(topic, started.kafka.partitions) {
                return ready.fail(format!("orders demo: cannot create topic {topic}: {error}"));
            }
        }
        let bind = std::env::var("ORDERS_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
        let listener = match tokio::net::TcpListener::bind(&bind).await {
            Ok(listener) => listener,
            Err(error) => {
                return ready.fail(format!(
                    "orders demo: cannot listen on {bind} ({error}); set ORDERS_BIND to a free \
                     address (port 0 picks one)"
                ));
            }
        };
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        orders::case::set_service_url(&url);
        eprintln!(
            "orders demo: services on {url} (GET {url}/order/init/sell/ places an order){}",
            if config.break_execution {
                "; execution stage BROKEN on purpose (ORDERS_BREAK=execution)"
            } else {
                ""
            }
        );
        // The API listens (requests wait in its backlog until it serves them): cases may run.
        ready.done();
        if let Err(error) = orders::run(config, started.client.clone(), listener).await {
            eprintln!("orders demo: services stopped: {error}");
        }
    })
}
