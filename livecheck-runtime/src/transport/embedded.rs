//! The embedded broker: librdkafka's in-process mock cluster, so a worker runs on a bare machine
//! with no broker configured. For demos and quick tests; not a substitute for a real broker.

use std::sync::mpsc;
use std::thread;

use rdkafka::mocking::MockCluster;

use super::kafka::Topics;
use super::TransportError;

/// A running mock cluster; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedCluster {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EmbeddedCluster {
    /// Starts a one-broker mock cluster listening on 127.0.0.1 and creates the topics (the mock
    /// does not support the CreateTopics admin call).
    pub fn start(topics: &Topics, partitions: i32) -> Result<Self, TransportError> {
        let names = [
            topics.tests.clone(),
            topics.bus.clone(),
            topics.reports.clone(),
        ];
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        // The mock cluster is not Send: it lives on a thread of its own until stopped.
        let thread = thread::Builder::new()
            .name("livecheck-embedded-kafka".into())
            .spawn(move || {
                let started = MockCluster::new(1).and_then(|cluster| {
                    for name in &names {
                        cluster.create_topic(name, partitions, 1)?;
                    }
                    Ok(cluster)
                });
                match started {
                    Ok(cluster) => {
                        let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                        let _ = stop_rx.recv();
                        drop(cluster);
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            })
            .map_err(|e| {
                TransportError::Config(format!("cannot start the embedded broker: {e}"))
            })?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| TransportError::Config("the embedded broker thread died".into()))?
            .map_err(|e| TransportError::Broker {
                context: "start the embedded broker".into(),
                source: Box::new(e),
            })?;
        Ok(EmbeddedCluster {
            bootstrap,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `bootstrap.servers` of the cluster.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
