//! The floor: a bare rdkafka produce → consume round trip, one message at a time, with exactly
//! the client settings livecheck uses (`KafkaConfig::producer_config` / `consumer_config`: linger
//! 0, Nagle off, murmur2_random, fetch.wait.max.ms 5) on a topic shaped like the bus (8
//! partitions, consumer assigned every partition, key = a test id, payload = a bincode signal).
//!
//! No livecheck signal can arrive faster than this on the same broker. Part of
//! `cargo run --release -p bench`.

use std::time::{Duration, Instant};

use livecheck::codec::Codec;
use livecheck::SignalEvent;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::cases::now_ns;
use crate::setup::{create_topic, unique_config, PARTITIONS};
use crate::stats::Samples;

/// How long one round trip may take before the floor gives up.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(30);

/// Measures `samples` round trips (after `warmup` unrecorded ones).
pub(crate) async fn run(brokers: &str, samples: usize, warmup: usize) -> Result<Samples, String> {
    let config = unique_config(brokers, "floor");
    let topic = config.topics.bus.clone();
    create_topic(brokers, &topic).await?;
    let producer: FutureProducer = config
        .producer_config()
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let consumer: StreamConsumer = config
        .consumer_config(&config.group_id)
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    // Like the worker's bus consumer: every partition assigned, no group rebalancing. Start at
    // offset 0: the topic is new.
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions
            .add_partition_offset(&topic, partition, Offset::Offset(0))
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&partitions).map_err(|e| e.to_string())?;

    let mut recorded = Vec::with_capacity(samples);
    for i in 0..warmup + samples {
        let key = format!("floor-{i}");
        // The bytes a signal of `bench.latency` puts on the bus.
        let payload = Codec::Bincode.encode_signal(&SignalEvent {
            signal_name: "lat_1".into(),
            case_name: "bench.latency".into(),
            key: key.clone(),
            value: serde_json::Value::from(now_ns()),
        });
        let started = Instant::now();
        let send = producer.send(
            FutureRecord::to(&topic).key(&key).payload(&payload),
            rdkafka::util::Timeout::Never,
        );
        let receive = async {
            let message = consumer.recv().await.map_err(|e| e.to_string())?;
            let elapsed = started.elapsed();
            if message.key() != Some(key.as_bytes()) {
                return Err(format!(
                    "floor read an unexpected message at offset {}",
                    message.offset()
                ));
            }
            Ok(elapsed)
        };
        let (sent, received) =
            tokio::time::timeout(ROUND_TRIP_TIMEOUT, async { tokio::join!(send, receive) })
                .await
                .map_err(|_| format!("no round trip within {ROUND_TRIP_TIMEOUT:?}"))?;
        sent.map_err(|(e, _)| format!("produce: {e}"))?;
        let elapsed = received?;
        if i >= warmup {
            recorded.push(elapsed);
        }
    }
    Ok(Samples::new(recorded))
}
