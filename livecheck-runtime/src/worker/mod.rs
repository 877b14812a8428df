//! The worker: consumes test executions and signals, runs tests with bounded concurrency,
//! publishes reports, keeps each case's health, and runs the fake-request timers.
//!
//! The group judges as one: every worker reads the group's reports back from the transport
//! ([`Subscription::reports`](crate::transport::Subscription::reports)) and feeds each test's report, once, into its case health, so
//! every worker shows the group's view; the leader alone publishes suite reports (one ordered
//! queue per worker, so a case's reports leave in the order of its transitions), and every
//! worker adopts the suite reports it reads, so a new leader does not publish a transition
//! again. A test whose report the group has published is not run again.
//!
//! Its parts, one file each: what it is told ([`WorkerSettings`]) and built from
//! ([`WorkerBuilder`]); what it shows ([`Observer`], [`WorkerStats`], [`WorkerHandle`]); the
//! state its tasks share (`shared`); [`Worker::run`] taking tests (`run`) and a test's life on it
//! (`lifecycle`) up to its published report (`publish`); the group's reports read back
//! (`group`); the other background loops — signals, suite reports, maintenance, fake requests
//! (`loops`); a case's HTTP helpers reporting a service down (`case_link`); and
//! [`Worker::spawn`], a worker in a task of its own ([`SpawnedWorker`]).

mod builder;
mod case_link;
mod group;
mod handle;
pub mod health;
mod lifecycle;
mod loops;
mod observer;
pub mod once;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
mod publish;
mod run;
mod settings;
mod shared;
mod spawn;
mod stats;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use crate::service::client::Client;

pub use builder::WorkerBuilder;
pub use handle::WorkerHandle;
pub use observer::Observer;
pub use settings::WorkerSettings;
pub use spawn::SpawnedWorker;
pub use stats::WorkerStats;

use shared::Shared;

/// A livecheck worker.
///
/// # Process-wide effects
///
/// A worker touches two things that belong to the whole process, both documented and
/// bounded: on its first test it installs a panic hook (once per process) that puts the
/// location of a panic *inside a test* into that test's report instead of stderr, and runs the
/// previous hook for every other panic (so a panic outside a test prints as before); and after
/// a burst it may return the allocator's free memory to the system
/// ([`WorkerSettings::release_memory`], on by default).
///
/// # Examples
/// ```no_run
/// # async fn run() -> Result<(), livecheck::StartError> {
/// let worker = livecheck::Worker::builder(livecheck::MemoryTransport::new()).build()?;
/// worker.run(async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
///
/// To run it beside other work and stop it later, [`spawn`](Worker::spawn) it.
pub struct Worker {
    shared: Arc<Shared>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("cases", &self.shared.cases.len())
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A view of this worker that stays valid while it runs.
    pub fn handle(&self) -> WorkerHandle {
        WorkerHandle(self.shared.clone())
    }

    /// The client publishing through this worker's transport.
    pub fn client(&self) -> Client {
        self.shared.client.clone()
    }
}
