//! How the current test travels between services: in `LiveCheck-Test-*` headers (and the W3C
//! `traceparent` / `tracestate` beside them), over Kafka records and over HTTP requests alike.
//! A service that forwards them lets the test follow its request; a worker or service that
//! reads them runs the handler with that test as the current one ([`crate::context`]).

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub mod kafka;
