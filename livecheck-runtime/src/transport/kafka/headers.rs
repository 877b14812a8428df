//! Kafka headers: a test as `LiveCheck-Test-*` headers and back ([`test_headers`],
//! [`test_from_message`]; services use them through [`crate::propagation::kafka`]), and the
//! headers livecheck's own records carry.

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

use crate::wire::model::{
    HeaderTime, TestExecution, HEADER_TEST_EXPIRES, HEADER_TEST_ID, HEADER_TEST_NAME,
    HEADER_TEST_TIMESTAMP,
};
use crate::wire::signing::{self, Source, HEADER_TEST_SIGNATURE};
use crate::wire::trace::{TraceParent, TRACEPARENT, TRACESTATE};

/// Header naming the transport that published a report.
pub(super) const HEADER_PUBLISHER: &str = "livecheck-publisher";
/// Header naming the consumer group of the worker that published a report.
pub(super) const HEADER_GROUP: &str = "livecheck-group";
/// Header naming the member id (in its group) of the worker that published a report.
pub(super) const HEADER_MEMBER: &str = "livecheck-member";
/// What a signature of a signal signs (see [`signing`]).
pub(super) const SIGNAL_KIND: &str = "signal";
/// What a signature of a marker signs.
pub(super) const MARKER_KIND: &str = "marker";
/// What a signature of a report signs.
pub(super) const REPORT_KIND: &str = "report";

/// The value of header `name` of `message` (case-insensitive), if any.
pub(super) fn header<'a, M: Message>(message: &'a M, name: &str) -> Option<&'a [u8]> {
    message
        .headers()?
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .and_then(|h| h.value)
}

/// The `LiveCheck-Test-*` headers of `test`, and its `traceparent` / `tracestate`, as Kafka
/// headers.
pub fn test_headers(test: &TestExecution) -> OwnedHeaders {
    insert_test_headers(OwnedHeaders::new_with_capacity(7), test)
}

/// Adds the four headers of `test` and its signature (if signed), borrowing its fields: no
/// `String` is built (this runs for every record a service sends in a test), then its trace's.
pub(crate) fn insert_test_headers(headers: OwnedHeaders, test: &TestExecution) -> OwnedHeaders {
    let timestamp = HeaderTime::new(test.timestamp);
    let expires = HeaderTime::new(test.expires);
    let headers = [
        (HEADER_TEST_ID, test.id.as_str()),
        (HEADER_TEST_NAME, test.case_name.as_str()),
        (HEADER_TEST_TIMESTAMP, timestamp.as_str()),
        (HEADER_TEST_EXPIRES, expires.as_str()),
    ]
    .into_iter()
    .chain(
        test.signature
            .as_deref()
            .map(|signature| (HEADER_TEST_SIGNATURE, signature)),
    )
    .fold(headers, |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        })
    });
    insert_trace_headers(headers, test)
}

/// Adds `traceparent` (and `tracestate`) of `test`, when it has a trace (crate::trace).
pub(super) fn insert_trace_headers(
    mut headers: OwnedHeaders,
    test: &TestExecution,
) -> OwnedHeaders {
    if let Some(parent) = test.traceparent {
        headers = headers.insert(Header {
            key: TRACEPARENT,
            value: Some(parent.to_string().as_bytes()),
        });
        if let Some(state) = &test.tracestate {
            headers = headers.insert(Header {
                key: TRACESTATE,
                value: Some(state.as_bytes()),
            });
        }
    }
    headers
}

/// The trace a message carries in its `traceparent` / `tracestate` headers, if valid.
pub(super) fn trace_of<M: Message>(message: &M) -> Option<(TraceParent, Option<Box<str>>)> {
    let headers = message.headers()?;
    crate::wire::trace::from_headers(|name| {
        headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .and_then(|h| h.value)
    })
}

/// The test an incoming message is part of, read from its `LiveCheck-Test-*` headers; malformed
/// headers are ignored with a debug log. Where the deployment signs test context
/// ([`crate::signing`]), a test whose signature is missing or wrong is no test (counted).
pub fn test_from_message<M: Message>(message: &M) -> Option<TestExecution> {
    let headers = message.headers()?;
    let get = |name: &str| {
        headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .and_then(|h| h.value)
    };
    match TestExecution::from_headers(get) {
        // With a key, only signed test context is honoured (crate::signing).
        Ok(test) => test.filter(|test| signing::admit(Source::KafkaHeaders, test)),
        Err(error) => {
            tracing::debug!(%error, topic = message.topic(), "malformed livecheck headers ignored");
            None
        }
    }
}
