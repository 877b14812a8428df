//! The CPU floor: what a bare rdkafka producer and consumer spend to move the Kafka messages of
//! the throughput run — as many per test, at the same rate — with livecheck's client settings
//! (`KafkaConfig::producer_config` / `consumer_config`).
//!
//! One child process (`livecheck-bench floor-load`, protocol in `child.rs`) holds one
//! `ThreadedProducer` (as livecheck's clients) and one `StreamConsumer` assigned every
//! partition of a topic of [`PARTITIONS`] partitions; it produces messages the size of a signal
//! (a bincode `SignalEvent`, keyed by a test id), paced every millisecond, and consumes them
//! until it has read all. Its CPU from `START` to the last message read is the floor of
//! livecheck's worker + service CPU: no test, no case, no store, no report, no commit. Part of
//! `cargo run --release -p bench`.

use std::path::Path;
use std::time::{Duration, Instant};

use livecheck::codec::Codec;
use livecheck::transport::kafka::KafkaConfig;
use livecheck::SignalEvent;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::callgrind;
use crate::child::{say, ChildProcess, Parent};
use crate::setup::{
    count_messages, create_topic, parse_property, unique_config, COUNT_IDLE, PARTITIONS,
};
use crate::stats::CpuMeter;

/// What the floor's load cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloorLoad {
    /// Tests it stands for.
    pub(crate) tests: u64,
    /// Messages produced and consumed.
    pub(crate) messages: u64,
    /// Messages per second asked for.
    pub(crate) rate: f64,
    /// Its CPU time from the start to the last message read.
    pub(crate) cpu: Duration,
    /// From the start to the last message read.
    pub(crate) elapsed: Duration,
    /// CPU seconds of the broker meanwhile, when the benchmark started it.
    pub(crate) broker_cpu: Option<f64>,
    /// Instructions (under callgrind only).
    pub(crate) instructions: Option<u64>,
}

impl FloorLoad {
    /// CPU per test, in µs.
    pub(crate) fn cpu_us_per_test(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.tests.max(1) as f64
    }
}

/// Arguments of the child.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LoadArgs {
    /// Bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// The topic (it exists, with [`PARTITIONS`] partitions).
    #[arg(long)]
    topic: String,
    /// Messages to move.
    #[arg(long)]
    messages: u64,
    /// Messages per test (for the keys: one key per test).
    #[arg(long)]
    per_test: u64,
    /// Messages per second.
    #[arg(long)]
    rate: f64,
    /// librdkafka properties on top of livecheck's settings.
    #[arg(short = 'X', value_parser = parse_property)]
    property: Vec<(String, String)>,
}

/// Moves `messages_per_test × tests` messages at `tests_per_sec × messages_per_test` a second
/// through the child (under callgrind, its dumps in `callgrind`, if given).
pub(crate) async fn run(
    brokers: &str,
    tests: u64,
    messages_per_test: f64,
    tests_per_sec: f64,
    callgrind: Option<&Path>,
    broker_pid: Option<u32>,
) -> Result<FloorLoad, String> {
    let config = unique_config(brokers, "floor-load");
    let topic = config.topics.bus.clone();
    create_topic(brokers, &topic).await?;
    let messages = (tests as f64 * messages_per_test).round() as u64;
    let rate = tests_per_sec * messages_per_test;
    let mut args = vec![
        "floor-load".to_owned(),
        "--brokers".into(),
        brokers.to_owned(),
        "--topic".into(),
        topic.clone(),
        "--messages".into(),
        messages.to_string(),
        "--per-test".into(),
        (messages_per_test.round().max(1.0) as u64).to_string(),
        "--rate".into(),
        rate.to_string(),
    ];
    args.extend(
        config
            .properties
            .iter()
            .flat_map(|(k, v)| ["-X".to_owned(), format!("{k}={v}")]),
    );
    let wrap = callgrind.map_or_else(Vec::new, |dir| callgrind::wrap(dir, "floor"));
    let mut child = ChildProcess::spawn("floor", &wrap, &args)?;
    child.expect("READY", Duration::from_secs(300)).await?;
    let pid = child.pid().ok_or("the floor process is gone")?;
    if callgrind.is_some() {
        callgrind::zero(pid).await?;
    }
    let broker_cpu = CpuMeter::start(broker_pid);
    let started = Instant::now();
    child.send("START").await?;
    let within = Duration::from_secs(600) + Duration::from_secs_f64(messages as f64 / rate);
    let end = child.expect("END", within).await?;
    let elapsed = started.elapsed();
    let broker_cpu = broker_cpu.seconds();
    let instructions = match callgrind {
        Some(dir) => Some(callgrind::dump(dir, "floor", pid).await?),
        None => None,
    };
    child.finish(Duration::from_secs(60)).await?;
    // The broker's count, to be sure the floor moved what it says.
    let stored = count_messages(brokers, &[topic], COUNT_IDLE).await?[0];
    if stored != messages || end.u64("received")? != messages {
        return Err(format!(
            "the floor moved {} of {messages} messages (the topic holds {stored})",
            end.u64("received")?
        ));
    }
    Ok(FloorLoad {
        tests,
        messages,
        rate,
        cpu: end.cpu()?,
        elapsed,
        broker_cpu,
        instructions,
    })
}

/// The child.
pub(crate) async fn load(args: LoadArgs) -> Result<(), String> {
    let mut config = KafkaConfig::new(&args.brokers);
    config.properties = args.property;
    let producer: ThreadedProducer<DefaultProducerContext> = config
        .producer_config()
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let consumer: StreamConsumer = config
        .consumer_config(&format!("{}-group", args.topic))
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions
            .add_partition_offset(&args.topic, partition, Offset::Offset(0))
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&partitions).map_err(|e| e.to_string())?;
    // The bytes of a signal of `bench.throughput`.
    let payload = Codec::Bincode.encode_signal(&SignalEvent {
        signal_name: "step_1".into(),
        case_name: "bench.throughput".into(),
        key: "throughput-0000000".into(),
        value: serde_json::Value::from(1_000_000u64),
    });
    let total = args.messages;
    let (parent, cpu_start) = Parent::ready().await?;

    let reader = async {
        let mut received = 0u64;
        while received < total {
            consumer.recv().await.map_err(|e| format!("consume: {e}"))?;
            received += 1;
        }
        Ok::<u64, String>(received)
    };
    let writer = async {
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sent = 0u64;
        while sent < total {
            tick.tick().await;
            let due = ((started.elapsed().as_secs_f64() * args.rate) as u64).min(total);
            while sent < due {
                let key = format!("floor-{}", sent / args.per_test.max(1));
                match producer.send(BaseRecord::to(&args.topic).key(&key).payload(&payload)) {
                    Ok(()) => sent += 1,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        break; // the next tick tries again
                    }
                    Err((error, _)) => return Err(format!("produce: {error}")),
                }
            }
        }
        Ok::<(), String>(())
    };
    let (received, written) = tokio::join!(reader, writer);
    let cpu = crate::child::cpu_now()? - cpu_start;
    match received.and_then(|received| written.map(|()| received)) {
        Ok(received) => say(&format!(
            "END cpu_ns={} received={received}",
            cpu.as_nanos()
        )),
        Err(error) => say(&format!("FAILED {error}")),
    }
    parent.closed().await;
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| format!("flush: {e}"))
}
