//! What a service links: cases and their handles (trigger, `maybe_trigger`), signals, the
//! client, the current test of a task ([`context`]), how a test travels over Kafka and HTTP
//! ([`propagation`]), and Faust's URL helpers ([`http`]). A case's body compiles into the
//! services that trigger it, so what runs it — its execution context, the signal store its
//! waits read, the runner — lives here too, though only a worker calls it.

pub mod case;
pub mod client;
pub mod context;
pub(crate) mod execution;
pub mod hooks;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
pub mod propagation;
pub(crate) mod runner;
pub mod signal;
pub(crate) mod store;
