//! Topic administration: the three topics created where missing, and their partition counts
//! checked.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::config::Role;
use super::stats::broker_error;
use super::KafkaTransport;
use crate::transport::TransportError;

impl KafkaTransport {
    /// Creates the three topics where missing and checks that the tests and bus topics have the
    /// same partition count (else a test and its signals could meet on different workers).
    pub async fn ensure_topics(&self) -> Result<(), TransportError> {
        let admin: AdminClient<DefaultClientContext> = self
            .config
            .client_config(Role::Admin)
            .create()
            .map_err(|e| broker_error("create admin client", e))?;
        let topics = &self.config.topics;
        let names = [&topics.tests, &topics.bus, &topics.reports];
        let existing = self.partition_counts(&names).await?;
        let missing: Vec<NewTopic<'_>> = names
            .iter()
            .filter(|name| !existing.contains_key(name.as_str()))
            .map(|name| {
                NewTopic::new(
                    name,
                    self.config.partitions,
                    TopicReplication::Fixed(self.config.replication),
                )
            })
            .collect();
        if !missing.is_empty() {
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            let results = admin
                .create_topics(missing.iter(), &options)
                .await
                .map_err(|e| broker_error("create topics", e))?;
            for result in results {
                match result {
                    Ok(name) => tracing::info!(topic = %name, "topic created"),
                    Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                        tracing::debug!(topic = %name, "topic created meanwhile")
                    }
                    Err((name, code)) => {
                        return Err(TransportError::Config(format!(
                            "cannot create topic {name}: {code}"
                        )))
                    }
                }
            }
        }
        // Topic metadata can lag a creation: poll until all three are visible.
        let mut counts = HashMap::new();
        for _ in 0..50 {
            counts = self.partition_counts(&names).await?;
            if counts.len() == names.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (Some(tests), Some(bus)) = (counts.get(&topics.tests), counts.get(&topics.bus)) else {
            return Err(TransportError::Config(format!(
                "topics {} and {} do not exist and could not be created",
                topics.tests, topics.bus
            )));
        };
        if tests != bus {
            return Err(TransportError::Config(format!(
                "the tests topic {} has {tests} partitions but the bus topic {} has {bus}: they \
                 must be equal so that a test and its signals reach the same worker",
                topics.tests, topics.bus
            )));
        }
        Ok(())
    }

    async fn partition_counts(
        &self,
        names: &[&String],
    ) -> Result<HashMap<String, usize>, TransportError> {
        let consumer: BaseConsumer = self
            .config
            .client_config(Role::Admin)
            .create()
            .map_err(|e| broker_error("create metadata client", e))?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let mut counts = HashMap::new();
            for name in names {
                let metadata = consumer
                    .fetch_metadata(Some(&name), Duration::from_secs(10))
                    .map_err(|e| broker_error(format!("metadata of {name}"), e))?;
                if let Some(topic) = metadata.topics().first() {
                    if topic.error().is_none() && !topic.partitions().is_empty() {
                        counts.insert(name, topic.partitions().len());
                    }
                }
            }
            Ok(counts)
        })
        .await
        .map_err(|e| TransportError::Config(format!("metadata task failed: {e}")))?
    }
}
