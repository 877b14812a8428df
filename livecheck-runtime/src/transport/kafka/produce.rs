//! The producer: its delivery reports, and how a record is queued without waiting.

use std::sync::Arc;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use super::headers::{HEADER_GROUP, HEADER_MEMBER, HEADER_PUBLISHER, REPORT_KIND};
use super::stats::{broker_error, KafkaStats};
use super::KafkaTransport;
use crate::lock::lock;
use crate::transport::{Acknowledger, Queued, TransportError, QUEUE_FULL, UNDELIVERED};
use crate::wire::signing::{self, HEADER_RECORD_SIGNATURE};

/// The producer's delivery reports: each goes to the [`Queued`] of its message (if anybody
/// awaits it), and failures are counted, for fire-and-forget messages too.
pub(super) struct ProduceContext {
    pub(super) stats: Arc<KafkaStats>,
}

impl ClientContext for ProduceContext {}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = Box<Acknowledger>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        match result {
            Ok(_) => ack.acknowledge(Ok(())),
            Err((error, message)) => {
                let topic = message.topic();
                self.stats.undelivered.count(UNDELIVERED, topic, error);
                ack.acknowledge(Err(produce_error(
                    format!("deliver to {topic}"),
                    error.clone(),
                )));
            }
        }
    }
}

/// A producer's error: [`TransportError::TooLarge`] for a message larger than the client or the
/// broker accepts (the worker then truncates its report), else a broker error.
pub(super) fn produce_error(context: String, error: KafkaError) -> TransportError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
            TransportError::TooLarge
        }
        _ => broker_error(context, error),
    }
}

/// A record to produce.
pub(super) struct Outgoing<'a> {
    pub(super) topic: &'a str,
    pub(super) key: &'a str,
    pub(super) payload: &'a [u8],
    pub(super) headers: Option<OwnedHeaders>,
    /// Its timestamp (ms since the epoch); `None`: when it is queued (librdkafka's default).
    pub(super) timestamp: Option<i64>,
}

impl KafkaTransport {
    /// Hands a record to librdkafka's queue, never waiting: the returned [`Queued`] resolves
    /// with its delivery report.
    pub(super) fn enqueue(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<Queued, KafkaError> {
        self.enqueue_record(Outgoing {
            topic,
            key,
            payload,
            headers,
            timestamp: None,
        })
    }

    /// [`enqueue`](Self::enqueue), with the record's timestamp where the caller sets it.
    pub(super) fn enqueue_record(&self, outgoing: Outgoing<'_>) -> Result<Queued, KafkaError> {
        let (ack, queued) = Queued::pending();
        let mut record = BaseRecord::with_opaque_to(outgoing.topic, Box::new(ack))
            .key(outgoing.key)
            .payload(outgoing.payload);
        if let Some(headers) = outgoing.headers {
            record = record.headers(headers);
        }
        if let Some(timestamp) = outgoing.timestamp {
            record = record.timestamp(timestamp);
        }
        self.producer
            .send(record)
            .map(|()| queued)
            .map_err(|(error, _)| error)
    }

    /// The headers of a report: who wrote it (this transport, its group and member id) and,
    /// where the deployment has a key, its signature.
    pub(super) fn report_headers(&self, key: &str, payload: &[u8]) -> OwnedHeaders {
        let member = lock(&self.membership).as_ref().map(|m| m.member.clone());
        let signature = signing::key().map(|k| k.sign_record(REPORT_KIND, key.as_bytes(), payload));
        [
            (HEADER_PUBLISHER, Some(self.publisher.as_str())),
            (HEADER_GROUP, Some(self.config.group_id.as_str())),
            (HEADER_MEMBER, member.as_deref()),
            (HEADER_RECORD_SIGNATURE, signature.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
        .fold(
            OwnedHeaders::new_with_capacity(4),
            |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            },
        )
    }

    /// A message of a service that could not be queued: dropped, counted, logged (rarely).
    pub(super) fn refused(&self, topic: &str, error: KafkaError) -> TransportError {
        self.stats.dropped.count(QUEUE_FULL, topic, &error);
        broker_error(format!("queue a message for {topic}"), error)
    }
}
