//! Reading back what was triggered and reported: plain consumers of the tests, report and bus
//! topics of a scenario.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livecheck::codec::{decode_report, Codec};
use livecheck::transport::kafka::Topics;
use livecheck::State;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;

use super::now_ms;
use crate::support::{plain_consumer_at, Tasks};

/// What the readers saw of one scenario's topics.
#[derive(Debug, Default)]
pub struct Observed {
    /// Test id → (partition, timestamp of the first copy, copies on the tests topic).
    pub tests: HashMap<String, (i32, i64, usize)>,
    /// Test id → its reports.
    pub reports: HashMap<String, Vec<SeenReport>>,
    /// Suite reports: "STATE case (error)".
    pub suite: Vec<String>,
    /// (Test id, signal name) → when this process first read it from the bus (ms).
    pub signals: HashMap<(String, String), i64>,
    /// Messages read from the tests, report and bus topics, and consumer errors seen.
    pub read: [usize; 3],
    /// Consumer errors seen.
    pub errors: Vec<String>,
}

/// One report of a test, as read.
#[derive(Debug, Clone)]
pub struct SeenReport {
    /// Its verdict.
    pub state: State,
    /// Its Kafka timestamp (ms since the epoch).
    pub at: i64,
    /// Its `attempt`, where it carries one.
    pub attempt: Option<u64>,
    /// Its error.
    pub error: Option<String>,
}

/// Plain consumers of the tests, report and bus topics, filling [`Observed`].
#[derive(Debug)]
pub struct Readers {
    observed: Arc<Mutex<Observed>>,
    tasks: Tasks,
}

impl Readers {
    /// Starts reading `topics` from their beginning.
    pub fn start(bootstrap: &str, topics: &Topics) -> Readers {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let tests = plain_consumer_at(bootstrap, &topics.tests);
        let reports = plain_consumer_at(bootstrap, &topics.reports);
        let bus = plain_consumer_at(bootstrap, &topics.bus);
        let tasks = Tasks::new(vec![
            tokio::spawn(read_tests(tests, observed.clone())),
            tokio::spawn(read_reports(reports, observed.clone())),
            tokio::spawn(read_bus(bus, observed.clone())),
        ]);
        Readers { observed, tasks }
    }

    /// What was seen so far.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        lock(&self.observed)
    }

    /// Whether every test triggered by `cutoff` (ms) has a report.
    pub fn all_reported(&self, cutoff: i64) -> bool {
        let observed = self.lock();
        observed
            .tests
            .iter()
            .filter(|(_, (_, at, _))| *at <= cutoff)
            .all(|(id, _)| observed.reports.contains_key(id))
    }
}

fn lock(observed: &Mutex<Observed>) -> std::sync::MutexGuard<'_, Observed> {
    observed.lock().unwrap_or_else(|e| e.into_inner())
}

impl Readers {
    /// Stops both consumers and waits until they are gone: a consumer closes on drop, which
    /// needs its broker, so this must run before the broker is stopped.
    pub async fn stop(mut self) {
        self.tasks.stop().await;
    }
}

async fn read_tests(consumer: StreamConsumer, observed: Arc<Mutex<Observed>>) {
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                // The client reconnects by itself (e.g. across a broker restart).
                lock(&observed).errors.push(format!("tests: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        lock(&observed).read[0] += 1;
        let Ok(test) = Codec::decode_test(message.payload().unwrap_or_default()) else {
            continue;
        };
        let at = message.timestamp().to_millis().unwrap_or_else(now_ms);
        let mut observed = lock(&observed);
        let entry = observed
            .tests
            .entry(test.id)
            .or_insert((message.partition(), at, 0));
        entry.2 += 1;
    }
}

async fn read_bus(consumer: StreamConsumer, observed: Arc<Mutex<Observed>>) {
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                lock(&observed).errors.push(format!("bus: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // When it was there for anyone to read: this reader's clock, not the producer's.
        let at = now_ms();
        let mut observed = lock(&observed);
        observed.read[2] += 1;
        if let Ok(signal) = Codec::decode_signal(message.payload().unwrap_or_default()) {
            observed
                .signals
                .entry((signal.key, signal.signal_name))
                .or_insert(at);
        }
    }
}

async fn read_reports(consumer: StreamConsumer, observed: Arc<Mutex<Observed>>) {
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                lock(&observed).errors.push(format!("reports: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        lock(&observed).read[1] += 1;
        let payload = message.payload().unwrap_or_default();
        let Ok(report) = decode_report(payload) else {
            continue;
        };
        // The re-run marker, wherever the report carries it (read raw: older reports lack it).
        let raw: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let attempt = raw["attempt"]
            .as_u64()
            .or_else(|| raw["test"]["attempt"].as_u64());
        let at = message.timestamp().to_millis().unwrap_or_else(now_ms);
        let mut observed = lock(&observed);
        match report.test {
            Some(test) => observed
                .reports
                .entry(test.id)
                .or_default()
                .push(SeenReport {
                    state: report.state,
                    at,
                    attempt,
                    error: report.error,
                }),
            None => {
                let line = format!(
                    "{} {} ({})",
                    report.state.as_str(),
                    report.case_name,
                    report.error.unwrap_or_default()
                );
                observed.suite.push(line);
            }
        }
    }
}
