//! The embedded broker: librdkafka's in-process mock cluster, so a worker runs on a bare machine
//! with no broker configured. For demos and quick tests; not a substitute for a real broker.

use std::sync::{mpsc, Mutex};
use std::thread;

use rdkafka::mocking::MockCluster;

use super::kafka::Topics;
use super::TransportError;
use crate::lock::lock;

/// A request to the thread that owns the mock cluster.
enum Request {
    CreateTopic {
        name: String,
        partitions: i32,
        done: mpsc::Sender<rdkafka::error::KafkaResult<()>>,
    },
}

/// A running mock cluster; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedCluster {
    bootstrap: String,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
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
        let (requests_tx, requests_rx) = mpsc::channel::<Request>();
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
                        // Serve requests until the handle is dropped.
                        while let Ok(request) = requests_rx.recv() {
                            match request {
                                Request::CreateTopic {
                                    name,
                                    partitions,
                                    done,
                                } => {
                                    let _ = done.send(cluster.create_topic(&name, partitions, 1));
                                }
                            }
                        }
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
                cause: Box::new(e),
            })?;
        Ok(EmbeddedCluster {
            bootstrap,
            requests: Mutex::new(Some(requests_tx)),
            thread: Some(thread),
        })
    }

    /// Creates a topic (e.g. one the services of a demo use); creating an existing topic is fine.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), TransportError> {
        let (done, result) = mpsc::channel();
        let sent = lock(&self.requests).as_ref().map(|requests| {
            requests.send(Request::CreateTopic {
                name: name.to_owned(),
                partitions,
                done,
            })
        });
        let closed = || TransportError::Config("the embedded broker is stopped".into());
        sent.ok_or_else(closed)?.map_err(|_| closed())?;
        result
            .recv()
            .map_err(|_| closed())?
            .map_err(|e| TransportError::Broker {
                context: format!("create topic {name} on the embedded broker"),
                cause: Box::new(e),
            })
    }

    /// `bootstrap.servers` of the cluster.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        drop(
            self.requests
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
