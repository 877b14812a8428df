//! The broker a scenario runs on: tansu as a child process, or a mock cluster hosted by this
//! process (it outlives the killed workers, which are pointed at its port).

use std::sync::mpsc;

use rdkafka::mocking::MockCluster;

use crate::broker::Broker;

/// Which broker a suite runs on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// tansu, as a child process ([`Broker`]).
    Tansu,
    /// librdkafka's mock cluster, hosted by this process ([`MockHost`]).
    Mock,
}

impl Kind {
    /// Its name in `LIVECHECK_FAULTS_BROKERS` and in the names of kept logs.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Tansu => "tansu",
            Kind::Mock => "mock",
        }
    }

    /// Its name in the printed tables.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Tansu => "tansu 0.6.0",
            Kind::Mock => "librdkafka mock cluster",
        }
    }
}

/// The broker of one scenario.
#[derive(Debug)]
pub enum Host {
    /// tansu, as a child process.
    Tansu(Broker),
    /// A mock cluster on a thread of this process.
    Mock(MockHost),
}

impl Host {
    /// Starts a broker of `kind`; a `persistent` tansu keeps its data across [`Host::down`].
    pub fn start(kind: Kind, persistent: bool) -> Host {
        match kind {
            Kind::Tansu if persistent => Host::Tansu(Broker::start_persistent()),
            Kind::Tansu => Host::Tansu(Broker::start()),
            Kind::Mock => Host::Mock(MockHost::start()),
        }
    }

    /// Its bootstrap servers.
    pub fn bootstrap(&self) -> String {
        match self {
            Host::Tansu(broker) => broker.bootstrap(),
            Host::Mock(mock) => mock.bootstrap.clone(),
        }
    }

    /// Creates topic `name` with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        match self {
            Host::Tansu(broker) => broker.create_topic(name, partitions as u32),
            Host::Mock(mock) => mock.create_topic(name, partitions),
        }
    }

    /// Stops tansu; its sqlite storage keeps everything for [`Host::up`].
    pub fn down(&mut self) {
        match self {
            Host::Tansu(broker) => broker.stop(),
            Host::Mock(_) => unreachable!("the mock cluster is not restarted"),
        }
    }

    /// Starts tansu again on the storage [`Host::down`] kept.
    pub fn up(&mut self) {
        match self {
            Host::Tansu(broker) => broker.restart(),
            Host::Mock(_) => unreachable!("the mock cluster is not restarted"),
        }
    }
}

/// A topic to create, and where to say how it went.
#[derive(Debug)]
struct CreateTopic {
    name: String,
    partitions: i32,
    done: mpsc::Sender<Result<(), String>>,
}

/// A one-broker mock cluster on a thread of its own (it is not `Send`), until dropped.
#[derive(Debug)]
pub struct MockHost {
    bootstrap: String,
    requests: Option<mpsc::Sender<CreateTopic>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockHost {
    fn start() -> MockHost {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (requests, requests_rx) = mpsc::channel::<CreateTopic>();
        let thread = std::thread::spawn(move || {
            let cluster = MockCluster::new(1).expect("start a mock cluster");
            ready_tx.send(cluster.bootstrap_servers()).unwrap();
            while let Ok(request) = requests_rx.recv() {
                let result = cluster.create_topic(&request.name, request.partitions, 1);
                let _ = request.done.send(result.map_err(|e| e.to_string()));
            }
        });
        MockHost {
            bootstrap: ready_rx.recv().expect("the mock cluster started"),
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        let (done, result) = mpsc::channel();
        self.requests
            .as_ref()
            .expect("mock cluster running")
            .send(CreateTopic {
                name: name.to_owned(),
                partitions,
                done,
            })
            .expect("mock cluster thread alive");
        result
            .recv()
            .expect("mock cluster answered")
            .expect("create a topic on the mock cluster");
    }
}

impl Drop for MockHost {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
