//! Who owns a running test: a [`Lease`] on its partition, settled by the transport.
//!
//! A transport with partitions (Kafka) hands each test a lease; a rebalance makes it pending,
//! then owned again or lost (see the Kafka transport's offset tracking). The worker stops a
//! test whose lease is lost and publishes nothing for it: its new owner runs it and reports it
//! once.

use tokio::sync::watch;

/// Who owns a running test's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// This worker owns it: the test's report is to be published.
    Owned,
    /// A rebalance is under way: whether the partition stays here is not known yet.
    Pending,
    /// Another worker owns it now: the test stops, its report is not published.
    Lost,
}

/// A running test's hold on its partition of the tests topic; see [`Ownership`].
#[derive(Debug, Clone)]
pub struct Lease(pub(crate) watch::Receiver<Ownership>);

impl Lease {
    /// A lease that is always owned (transports without partitions).
    pub fn owned() -> Self {
        // The sender is dropped: `changed` then never resolves, and the value stays `Owned`.
        Lease(watch::channel(Ownership::Owned).1)
    }

    /// The ownership now.
    pub fn now(&self) -> Ownership {
        *self.0.borrow()
    }

    /// Resolves when the partition is lost (never, while it stays owned).
    pub async fn lost(&mut self) {
        if self.0.wait_for(|o| *o == Ownership::Lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until a rebalance under way has settled; true if the partition is still this
    /// worker's. (The worker bounds the wait by its shutdown.)
    pub async fn settled(&mut self) -> bool {
        let settled = self
            .0
            .wait_for(|o| *o != Ownership::Pending)
            .await
            .map(|o| *o);
        match settled {
            Ok(ownership) => ownership == Ownership::Owned,
            // The tracker is gone (the transport closed): nobody can say otherwise.
            Err(_) => self.now() == Ownership::Owned,
        }
    }
}
