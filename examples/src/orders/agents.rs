//! The agents: the orders agent and the execution agent, each a Kafka consumer that handles a
//! record with the record's test (from its headers) as the current test.

use std::time::Duration;

use livecheck::propagation::kafka::{attach_test_headers, handle_message};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::case::{ORDER_CACHED, ORDER_EXECUTED, ORDER_SENT_TO_DB, ORDER_SENT_TO_KAFKA};
use super::{Order, OrderStore, OrdersConfig};

type AgentResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn consumer(
    config: &OrdersConfig,
    group: &str,
    topic: &str,
) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
    let consumer: StreamConsumer = config
        .client_config(true)
        .set("group.id", format!("{}-{group}", config.group_prefix))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// The next record of `consumer` that is an order; others are logged and skipped, and consumer
/// errors are retried (the client reconnects by itself).
async fn next_order<'c>(
    consumer: &'c StreamConsumer,
    agent: &str,
) -> (rdkafka::message::BorrowedMessage<'c>, Order) {
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, agent, "consume failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match message.payload().map(serde_json::from_slice::<Order>) {
            Some(Ok(order)) => return (message, order),
            _ => tracing::warn!(offset = message.offset(), agent, "not an order, skipped"),
        }
    }
}

/// Consumes `orders`: writes each order to the "database", passes it on for execution, records
/// it in the store — signalling each stage for orders that are tests.
pub async fn orders_agent(
    config: OrdersConfig,
    client: livecheck::Client,
    store: OrderStore,
) -> AgentResult {
    let consumer = consumer(&config, "agent", &config.orders_topic)?;
    let producer: FutureProducer = config.client_config(false).create()?;
    loop {
        let (message, order) = next_order(&consumer, "orders").await;
        let handled = client.scope(handle_message(&message, async {
            // "Database" write.
            ORDER_SENT_TO_DB.send(&order).await?;
            let payload = serde_json::to_vec(&order)?;
            producer
                .send(
                    FutureRecord::to(&config.execution_topic)
                        .key(&order.id)
                        .payload(&payload)
                        .headers(attach_test_headers(OwnedHeaders::new())),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)?;
            ORDER_SENT_TO_KAFKA.send(&()).await?;
            store.insert(order.clone());
            ORDER_CACHED.send(&order.id).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
        if let Err(error) = handled.await {
            tracing::warn!(%error, order = %order.id, "orders agent: order not handled");
        }
    }
}

/// Consumes `order-execution`: executes each order (or, broken on purpose, drops it).
pub async fn execution_agent(config: OrdersConfig, client: livecheck::Client) -> AgentResult {
    let consumer = consumer(&config, "execution", &config.execution_topic)?;
    loop {
        let (message, order) = next_order(&consumer, "execution").await;
        if config.break_execution {
            tracing::warn!(order = %order.id, "execution agent broken on purpose: order dropped");
            continue;
        }
        let execution_id = format!("exec-{}", order.id);
        let sent = client
            .scope(handle_message(&message, ORDER_EXECUTED.send(&execution_id)))
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, order = %order.id, "execution agent: signal not sent");
        }
    }
}
