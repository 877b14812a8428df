//! The [`Client`]: what services use to trigger tests and send signals.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};

use crate::context::CLIENT;
use crate::transport::Transport;

/// A handle on a transport, shared by `trigger`, `maybe_trigger` and `Signal::send`.
///
/// A service creates one at start-up and [`install`](Client::install)s it for the process; a
/// test harness or a worker instead runs code in [`scope`](Client::scope), which wins over the
/// installed one inside that scope.
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

    /// Makes this the process-wide client (replacing any earlier one).
    pub fn install(&self) {
        *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(self.clone());
    }

    /// The client in effect here: the one of the enclosing [`scope`](Client::scope), else the
    /// installed one.
    pub fn current() -> Option<Client> {
        CLIENT
            .try_with(Clone::clone)
            .ok()
            .or_else(|| GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Runs `fut` with this client in effect.
    pub async fn scope<F: Future>(&self, fut: F) -> F::Output {
        CLIENT.scope(self.clone(), fut).await
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.transport)
            .finish()
    }
}
