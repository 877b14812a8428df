//! Test context over Kafka: a service forwards the current test on the records it writes
//! ([`attach_test_headers`]) and runs its handler of a record in the record's test
//! ([`handle_message`]). The headers are those of the transport ([`test_headers`],
//! [`test_from_message`]), beside the test's W3C `traceparent` / `tracestate`.

use std::future::Future;

use rdkafka::message::{Message, OwnedHeaders};

use crate::service::context::{current_test, with_test};
pub use crate::transport::kafka::headers::{test_from_message, test_headers};
use crate::transport::kafka::insert_test_headers;

/// Adds the current test's headers (if the task is working for a test) to an outgoing record's
/// headers, so the next service sees the test too.
///
/// ```no_run
/// # use rdkafka::message::OwnedHeaders;
/// # use rdkafka::producer::FutureRecord;
/// let headers = livecheck::propagation::kafka::attach_test_headers(OwnedHeaders::new());
/// let record: FutureRecord<'_, str, str> =
///     FutureRecord::to("orders").key("o1").payload("...").headers(headers);
/// ```
pub fn attach_test_headers(headers: OwnedHeaders) -> OwnedHeaders {
    match current_test() {
        Some(test) => insert_test_headers(headers, &test),
        None => headers,
    }
}

/// Runs `handler` with the test of `message` (if it carries one) as the current test: signals
/// sent in it are keyed by that test, and records built with [`attach_test_headers`] carry it on.
pub async fn handle_message<M: Message, F: Future>(message: &M, handler: F) -> F::Output {
    match test_from_message(message) {
        Some(test) => with_test(test, handler).await,
        None => handler.await,
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;

    #[test]
    fn headers_attach_only_inside_a_test() {
        let headers = attach_test_headers(OwnedHeaders::new());
        assert_eq!(headers.count(), 0);
    }
}
