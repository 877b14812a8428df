//! The orders services (the demo's HTTP API and agents) in a test's process, against the test's
//! broker: what the fault and hostile-writer tests put load through.

use std::time::Duration;

use livecheck::transport::kafka::KafkaConfig;
use livecheck_examples::orders::{self, OrdersConfig};

use crate::support::service_client;

/// The orders services on a runtime of their own. `orders::run` spawns its agents as tasks that
/// outlive it; shutting their runtime down is what stops them, and it must happen while the
/// broker is up: a Kafka consumer closes on drop, and waits for its broker.
#[derive(Debug)]
pub struct Services {
    runtime: Option<tokio::runtime::Runtime>,
    base: String,
}

impl Services {
    /// Starts the API on a free loopback port and the agents, on the topics of `config`.
    pub fn start(orders_config: OrdersConfig, config: &KafkaConfig) -> Services {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("orders-services")
            .enable_all()
            .build()
            .expect("a runtime for the services");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the orders API");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let client = service_client(config);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            if let Err(error) = orders::run(orders_config, client, listener).await {
                eprintln!("orders services stopped: {error}");
            }
        });
        Services {
            runtime: Some(runtime),
            base,
        }
    }

    /// The API's base URL (`http://127.0.0.1:PORT`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Stops the API and both agents, waiting (at most 15 s) until their consumers are closed.
    /// Call it from a multi-threaded runtime (it blocks in place).
    pub fn stop(mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Off the test's runtime: a runtime may not be shut down from inside another one.
            tokio::task::block_in_place(|| {
                let _ =
                    std::thread::spawn(move || runtime.shutdown_timeout(Duration::from_secs(15)))
                        .join();
            });
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
