//! The `livecheck` demo: the orders system and a livecheck worker watching it.
//!
//! `cargo run --bin livecheck` — with no `--brokers`, an embedded Kafka, the orders services on
//! 127.0.0.1:8080 (`ORDERS_BIND` to change) and the worker, all in this process; a fake order
//! every 2 s and one line per test outcome. With `--brokers`, only the worker: run the services
//! with `cargo run --bin orders`. `ORDERS_BREAK=execution` breaks the execution stage on purpose.

use livecheck_examples::orders::{self, OrdersConfig};

fn main() -> std::process::ExitCode {
    livecheck::main_with(|started| async move {
        let Some(embedded) = started.embedded else {
            return; // Real brokers: the services run as their own binary.
        };
        let config = OrdersConfig::new(started.brokers.clone());
        for topic in [&config.orders_topic, &config.execution_topic] {
            if let Err(error) = embedded.create_topic(topic, started.kafka.partitions) {
                eprintln!("orders demo: {error}");
                return;
            }
        }
        let bind = std::env::var("ORDERS_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
        let listener = match tokio::net::TcpListener::bind(&bind).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("orders demo: cannot listen on {bind} ({error}); set ORDERS_BIND");
                return;
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
        if let Err(error) = orders::run(config, started.client, listener).await {
            eprintln!("orders demo: services stopped: {error}");
        }
    })
}
