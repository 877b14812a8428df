//! The settings of the Kafka transport ([`KafkaConfig`], [`Topics`]) and the client settings
//! livecheck derives from them. A config's `Debug` and the errors it makes hide the values of
//! its properties (passwords, keys).

use std::fmt;
use std::time::Duration;

use rdkafka::config::ClientConfig;

use crate::wire::codec::Codec;
use crate::wire::limits::Limits;

/// Topic names (`#[non_exhaustive]`: [`Topics::new`] or [`Topics::default`], then fields set).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Topics {
    /// Test executions (`livecheck`).
    pub tests: String,
    /// Signals (`livecheck-bus`).
    pub bus: String,
    /// Reports (`livecheck-report`).
    pub reports: String,
}

impl Topics {
    /// The three topics by name: tests, bus (signals), reports.
    pub fn new(
        tests: impl Into<String>,
        bus: impl Into<String>,
        reports: impl Into<String>,
    ) -> Self {
        Topics {
            tests: tests.into(),
            bus: bus.into(),
            reports: reports.into(),
        }
    }
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            tests: "livecheck".into(),
            bus: "livecheck-bus".into(),
            reports: "livecheck-report".into(),
        }
    }
}

/// Settings of the Kafka transport. Its `Debug` shows the properties' names, not their values
/// (passwords, keys). `#[non_exhaustive]`: made by [`KafkaConfig::new`], then fields set.
#[derive(Clone)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// librdkafka properties, applied last, unchanged (`-X key=value`): TLS, SASL, tuning.
    pub properties: Vec<(String, String)>,
    /// Consumer group of the workers (`livecheck`).
    pub group_id: String,
    /// Topic names.
    pub topics: Topics,
    /// Partitions of topics created at start-up (8).
    pub partitions: i32,
    /// Replication factor of topics created at start-up (1).
    pub replication: i32,
    /// Encoding of executions and signals written (bincode); both are read. A service whose
    /// tests are run by Faust workers, or whose signals Faust cases wait for, must write
    /// [`Codec::Json`]: see [`with_codec`](Self::with_codec).
    pub codec: Codec,
    /// How often the group is looked at for partitions nobody consumes (10 s; see
    /// [`GroupView`](crate::transport::GroupView)).
    pub group_check_interval: Duration,
    /// How far back the bus is read on a new assignment (3 h, Faust's `test_expires`; a worker
    /// sets it to the largest `test_expires` of its cases).
    pub signal_replay: Duration,
    /// How far back a starting worker reads the report topic to rebuild the group's view: case
    /// health, suite state, tests already reported (1 h).
    pub report_replay: Duration,
    /// The largest id, name and record read from the three topics ([`Limits::DEFAULT`]); what
    /// is over a limit is skipped, counted and acknowledged.
    pub limits: Limits,
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|(key, _)| format!("{key}=<hidden>"))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("properties", &properties)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("codec", &self.codec)
            .field("signal_replay", &self.signal_replay)
            .field("limits", &self.limits)
            .finish()
    }
}

impl KafkaConfig {
    /// Defaults for these brokers.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            properties: Vec::new(),
            group_id: "livecheck".into(),
            topics: Topics::default(),
            partitions: 8,
            replication: 1,
            codec: Codec::default(),
            signal_replay: Duration::from_secs(3 * 3600),
            report_replay: Duration::from_secs(3600),
            group_check_interval: Duration::from_secs(10),
            limits: Limits::DEFAULT,
        }
    }

    /// `text` (a client's error) with the value of every property replaced by `<hidden>`:
    /// librdkafka repeats a value it rejects, and values hold passwords. Values of one or two
    /// characters are left (no secret, and replacing them would garble the message).
    pub(crate) fn hide_values(&self, text: &str) -> String {
        let mut values: Vec<&str> = self
            .properties
            .iter()
            .map(|(_, value)| value.as_str())
            .filter(|value| value.chars().count() > 2)
            .collect();
        // Longest first: a value that contains another is hidden whole.
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        values.into_iter().fold(text.to_owned(), |text, value| {
            text.replace(value, "<hidden>")
        })
    }

    /// Writes executions and signals in `codec`.
    ///
    /// Faust reads only [`Codec::Json`]: a Faust worker fails on the first bincode message. So a
    /// service in a mixed deployment (docs/kafka.md, "Mixed deployments with Faust") sets it on
    /// its client:
    ///
    /// ```no_run
    /// use livecheck::codec::Codec;
    /// use livecheck::transport::kafka::{KafkaConfig, KafkaTransport};
    ///
    /// let config = KafkaConfig::new("kafka:9092").with_codec(Codec::Json);
    /// livecheck::Client::new(KafkaTransport::new(config)?).install();
    /// # Ok::<(), livecheck::transport::TransportError>(())
    /// ```
    ///
    /// Workers take it from `--codec json` (`LIVECHECK_CODEC=json`).
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The settings of livecheck's producers (ours for low latency, then
    /// [`properties`](Self::properties) on top): for code that must produce exactly as livecheck
    /// does, such as a service's own producer or the benchmark's bare-Kafka floor.
    pub fn producer_config(&self) -> ClientConfig {
        self.client_config(Role::Producer)
    }

    /// The settings of a worker's consumers, in consumer group `group` (ours, then
    /// [`properties`](Self::properties) on top).
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        self.client_config(Role::Consumer { group })
    }

    /// How long a worker holds the tests it reads after a partition assignment before it runs
    /// them: the consumer's `session.timeout.ms`, and at least twice its
    /// `heartbeat.interval.ms` (6 s by default) — time for an earlier owner the broker did not
    /// fence to hear of the rebalance and stop (see [`Handover`](super::handover::Handover)).
    /// A member that has not heard from the coordinator for a session is out of the group by
    /// then; two heartbeats (3 s) proved too short on tansu (an old owner still ran tests 3.6 s
    /// on).
    pub(super) fn handover(&self) -> Duration {
        let config = self.client_config(Role::Consumer { group: "" });
        let ms = |key: &str, default: u64| {
            config
                .get(key)
                .and_then(|ms| ms.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let heartbeat = ms("heartbeat.interval.ms", 3000);
        let session = ms("session.timeout.ms", 45_000);
        Duration::from_millis(session.max(2 * heartbeat))
    }

    /// The client settings we choose for low latency, then the user's properties on top.
    pub(super) fn client_config(&self, role: Role<'_>) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "livecheck")
            // Signals are small and latency is what we measure: no Nagle, no batching delay.
            .set("socket.nagle.disable", "true")
            // After a broker outage, librdkafka's default backoff (up to 10 s between
            // reconnects) left the bus consumer seconds behind the tests consumer: tests then
            // timed out waiting for signals already on the bus (the fault test's broker restart).
            .set("reconnect.backoff.max.ms", "1000");
        match role {
            Role::Producer => {
                config
                    .set("linger.ms", "0")
                    // librdkafka's default (1,000,000) sends a request per message under load:
                    // a broker then sees thousands of one-message batches a second (on tansu,
                    // whose fetches cost O(stored batches), one worker did 373 tests/s instead
                    // of 9,498; docs/benchmarks.md). With Java's default of 5 in flight,
                    // messages queued behind them share the next request, and a lone message
                    // still goes out at once: no latency is added.
                    .set("max.in.flight.requests.per.connection", "5")
                    // Java's (and Faust's) partitioner, on every producer: a test and its
                    // signals land on the same partition number.
                    .set("partitioner", "murmur2_random")
                    // The bound of the queue that services publish into without waiting
                    // (a service never waits on the broker): librdkafka's 100,000 messages,
                    // and 64 MiB instead of its 1 GiB, so a broker outage costs a service little memory. What
                    // does not fit is dropped and counted. -X overrides both.
                    .set("queue.buffering.max.messages", "100000")
                    .set("queue.buffering.max.kbytes", "65536");
            }
            Role::Consumer { group } => {
                config
                    .set("group.id", group)
                    .set("enable.auto.commit", "false")
                    .set("enable.auto.offset.store", "false")
                    .set("auto.offset.reset", "earliest")
                    // Brokers that hold a fetch until fetch.wait.max.ms (tansu) add it to every
                    // hop; Apache Kafka answers as soon as data is there. 5 ms bounds both.
                    .set("fetch.wait.max.ms", "5")
                    .set("session.timeout.ms", "6000")
                    .set("heartbeat.interval.ms", "1500")
                    .set("partition.assignment.strategy", "range");
            }
            Role::Admin => {}
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

pub(super) enum Role<'a> {
    Producer,
    Consumer { group: &'a str },
    Admin,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::kafka::KafkaTransport;

    #[test]
    fn property_values_are_hidden_from_debug_and_errors() {
        let mut config = KafkaConfig::new("b:9092");
        config.properties = vec![
            ("sasl.password".into(), "hunter2,tail".into()),
            ("acks".into(), "1".into()),
        ];
        let debug = format!("{config:?}");
        assert!(debug.contains("sasl.password=<hidden>"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let text = config.hide_values(r#"Invalid value "hunter2,tail" for "sasl.password": 1"#);
        assert_eq!(text, r#"Invalid value "<hidden>" for "sasl.password": 1"#);

        config.properties = vec![("security.protocol".into(), "hunter2".into())];
        let error = KafkaTransport::new(config).unwrap_err().to_string();
        assert!(error.contains("security.protocol"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
