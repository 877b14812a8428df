//! The [`Client`]: what services use to trigger tests and send signals.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::service::context::CLIENT;
use crate::transport::{Transport, TransportCounters, TransportError};

/// A handle on a transport, shared by `trigger`, `maybe_trigger` and `Signal::send`.
///
/// A service creates one at start-up and [`install`](Client::install)s it for the process; a
/// test harness or a worker instead runs code in [`scope`](Client::scope), which wins over the
/// installed one inside that scope.
///
/// # Never on the broker's time
///
/// `trigger`, `maybe_trigger` and [`Signal::send`](crate::Signal::send) serialize the message,
/// hand it to the transport's bounded queue and return: a service's request is never slowed by
/// livecheck, even with Kafka down. A message that does not fit in the queue is dropped,
/// counted ([`counters`](Client::counters)`().dropped`, and `livecheck_messages_dropped_total`
/// on a worker's `/metrics`) and logged at most once a minute. To wait until messages reached
/// the broker, await [`Signal::send`](crate::Signal::send)`(..).delivered()` for one signal, or
/// [`flush`](Client::flush) for everything queued so far (e.g. after a `trigger`, or before a
/// service exits).
#[derive(Clone)]
pub struct Client {
    transport: Arc<dyn Transport>,
}

static GLOBAL: RwLock<Option<Client>> = RwLock::new(None);

impl Client {
    /// A client publishing through `transport`.
    pub fn new(transport: impl Transport) -> Self {
        Self::from_arc(Arc::new(transport))
    }

    /// A client publishing through a shared transport.
    pub fn from_arc(transport: Arc<dyn Transport>) -> Self {
        Client { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Makes this the process-wide client, and returns the one it replaced, if any.
    ///
    /// Replacing a client of another transport is logged (at warn): two parts of a process each
    /// installing their own is usually a mistake, and every `trigger` and `send` outside a
    /// [`scope`](Client::scope) now goes through this one.
    pub fn install(&self) -> Option<Client> {
        let previous = GLOBAL
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(self.clone());
        if let Some(previous) = &previous {
            if !Arc::ptr_eq(&previous.transport, &self.transport) {
                tracing::warn!(
                    "a livecheck client was already installed: replaced by a client of another \
                     transport (Client::install)"
                );
            }
        }
        previous
    }

    /// Removes the process-wide client and returns it: `trigger` and `send` outside a
    /// [`scope`](Client::scope) then fail with `NoClient` (and signals are not sent).
    pub fn uninstall() -> Option<Client> {
        GLOBAL.write().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The client in effect here: the one of the enclosing [`scope`](Client::scope), else the
    /// installed one.
    pub fn current() -> Option<Client> {
        CLIENT
            .try_with(|transport| Client::from_arc(transport.clone()))
            .ok()
            .or_else(|| GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// What the transport dropped or could not deliver so far (see
    /// [`TransportCounters::dropped`] and [`TransportCounters::undelivered`]): the counters of
    /// its [`snapshot`](crate::transport::Introspect::snapshot).
    pub fn counters(&self) -> TransportCounters {
        self.transport.snapshot().counters
    }

    /// Waits until every message queued so far reached the broker or failed, for at most
    /// `timeout`.
    ///
    /// # Errors
    /// The timeout passed first, or the transport failed.
    pub async fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        self.transport.flush(timeout).await
    }

    /// Runs `fut` with this client in effect.
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        CLIENT.scope(self.transport.clone(), fut).await
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::MemoryTransport;

    #[test]
    fn install_says_what_it_replaced_and_uninstall_takes_it_back() {
        let first = Client::new(MemoryTransport::new());
        let second = Client::new(MemoryTransport::new());
        // The only test of this crate that installs a client: nothing else races on it.
        assert!(first.install().is_none());
        let replaced = second.install().expect("the first client was replaced");
        assert!(Arc::ptr_eq(replaced.transport(), first.transport()));
        let current = Client::current().expect("installed");
        assert!(Arc::ptr_eq(current.transport(), second.transport()));
        let removed = Client::uninstall().expect("installed");
        assert!(Arc::ptr_eq(removed.transport(), second.transport()));
        assert!(Client::current().is_none());
        assert!(Client::uninstall().is_none());
    }
}
