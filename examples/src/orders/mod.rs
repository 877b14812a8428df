//! The orders system of Faust's stock-order example, watched by livecheck.
//!
//! - [`service`]: an HTTP API. `GET /order/init/{side}/` places an order — it may trigger the
//!   `test_order` case (with the case's probability; `?fake=1`, the case's own fake request,
//!   always does) — by calling `POST /order/create/`, which produces the order to the `orders`
//!   topic. `GET /order/{id}` reads the order store.
//! - [`agents`]: the `orders` agent "writes the order to the database" (signal
//!   `order_sent_to_db`), produces it to `order-execution` (signal `order_sent_to_kafka` once the
//!   broker acknowledged it), and records it in the store (signal `order_cached`); the execution
//!   agent executes it (signal `order_executed`).
//! - [`case`]: the case checking all of that end to end.
//!
//! The test context travels on the HTTP call (reqwest middleware out, tower layer in) and on the
//! Kafka records (headers), exactly as it would between real services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub mod agents;
pub mod service;

/// The case and its signals, from the demo's cases crate (`examples/orders-cases`), which the
/// services and the worker both link.
pub use orders_cases as case;
pub use orders_cases::Order;

/// Settings of the orders services.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// librdkafka properties for the services' clients.
    pub properties: Vec<(String, String)>,
    /// The topic orders are placed on.
    pub orders_topic: String,
    /// The topic orders go to for execution.
    pub execution_topic: String,
    /// Prefix of the agents' consumer groups.
    pub group_prefix: String,
    /// Break the execution agent on purpose: it drops every order.
    pub break_execution: bool,
}

impl OrdersConfig {
    /// Defaults for these brokers: topics `orders` and `order-execution`.
    pub fn new(brokers: impl Into<String>) -> Self {
        OrdersConfig {
            brokers: brokers.into(),
            properties: Vec::new(),
            orders_topic: "orders".into(),
            execution_topic: "order-execution".into(),
            group_prefix: "orders".into(),
            break_execution: std::env::var("ORDERS_BREAK").is_ok_and(|v| v == "execution"),
        }
    }

    /// Client settings for the services' producers (`consumer: false`) or consumers.
    pub(crate) fn client_config(&self, consumer: bool) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.nagle.disable", "true");
        if consumer {
            config.set("fetch.wait.max.ms", "5");
        } else {
            config.set("linger.ms", "0");
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Creates the topics the services use where they are missing — `orders` and `order-execution`,
/// and livecheck's three (the services trigger tests and send signals on them) — so the services
/// start on a broker without topic auto-creation, before or after the worker. An error names
/// the topics missing and why they could not be created.
pub async fn ensure_topics(
    config: &OrdersConfig,
    livecheck: &livecheck::transport::kafka::KafkaConfig,
) -> Result<(), String> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    let admin: AdminClient<DefaultClientContext> = config
        .client_config(false)
        .create()
        .map_err(|e| format!("cannot create an admin client: {e}"))?;
    let names = [&config.orders_topic, &config.execution_topic];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                livecheck.partitions,
                TopicReplication::Fixed(livecheck.replication),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(std::time::Duration::from_secs(10)));
    let results = admin
        .create_topics(topics.iter(), &options)
        .await
        .map_err(|e| {
            format!(
                "cannot create topics {}: {e}",
                names.map(|n| n.as_str()).join(", ")
            )
        })?;
    let mut missing = Vec::new();
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => missing.push(format!("{name} ({code})")),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "topics missing and not created: {}; create them, or let the broker create topics",
            missing.join(", ")
        ));
    }
    livecheck::transport::kafka::KafkaTransport::new(livecheck.clone())
        .map_err(|e| e.to_string())?
        .ensure_topics()
        .await
        .map_err(|e| format!("livecheck's topics: {e}"))
}

/// The order store ("database") the agent writes and the API reads.
#[derive(Debug, Clone, Default)]
pub struct OrderStore(Arc<Mutex<HashMap<String, Order>>>);

impl OrderStore {
    /// Records an order.
    pub fn insert(&self, order: Order) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(order.id.clone(), order);
    }

    /// Looks an order up.
    pub fn get(&self, id: &str) -> Option<Order> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

/// Runs the HTTP API on `listener` and both agents, until the future is dropped.
pub async fn run(
    config: OrdersConfig,
    client: livecheck::Client,
    listener: tokio::net::TcpListener,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store = OrderStore::default();
    let base = format!("http://{}", listener.local_addr()?);
    let app = service::router(service::State::new(
        config.clone(),
        client.clone(),
        store.clone(),
        base,
    )?);
    let orders = tokio::spawn(agents::orders_agent(config.clone(), client.clone(), store));
    let execution = tokio::spawn(agents::execution_agent(config, client));
    let served = axum::serve(listener, app).await;
    orders.abort();
    execution.abort();
    Ok(served?)
}
