//! Whether any of the brokers given answers, asked once at start with a bounded metadata
//! request, so that a wrong address or a broker that is down is one line naming the brokers and
//! the cause ("Connect to ipv4#127.0.0.1:1 failed: Connection refused"), not librdkafka's log of
//! every retry.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use super::kafka::KafkaConfig;
use crate::lock::lock;

/// No broker given answered a metadata request in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot reach the Kafka brokers {brokers} (waited {}): {cause}",
        crate::wire::duration::humanize(*waited))]
#[non_exhaustive]
pub struct Unreachable {
    /// The bootstrap servers tried.
    pub brokers: String,
    /// How long they were given.
    pub waited: Duration,
    /// The first reason librdkafka gave (e.g. a refused connection, a name that does not
    /// resolve, a TLS or SASL failure), else the metadata request's error.
    pub cause: String,
}

/// Keeps librdkafka's first error instead of logging every one.
#[derive(Default)]
struct FirstError(Mutex<Option<String>>);

impl FirstError {
    fn keep(&self, text: String) {
        let mut first = lock(&self.0);
        if first.is_none() {
            *first = Some(text);
        }
    }
}

impl ClientContext for FirstError {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
        ) {
            self.keep(message.to_owned());
        }
        tracing::debug!(target: "librdkafka", fac, "{message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // "AllBrokersDown" says less than the connection failure before it.
        if !matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown)
        ) {
            self.keep(reason.to_owned());
        }
        tracing::debug!(target: "librdkafka", %error, "{reason}");
    }
}

impl ConsumerContext for FirstError {}

/// Asks the brokers of `config` for the cluster's metadata, waiting at most `within`; Ok as
/// soon as one answers. A configuration librdkafka refuses is not checked here (Ok): creating
/// the transport reports it. The cause never repeats a property's value.
pub async fn check_reachable(config: &KafkaConfig, within: Duration) -> Result<(), Unreachable> {
    let brokers = config.brokers.clone();
    // librdkafka repeats values it rejects, and values hold passwords.
    let unreachable = |cause: String| Unreachable {
        brokers: brokers.clone(),
        waited: within,
        cause: config.hide_values(&cause),
    };
    let created = config
        .consumer_config("livecheck-reachability")
        .set("log_level", "3")
        .create_with_context(FirstError::default());
    let client: BaseConsumer<FirstError> = match created {
        Ok(client) => client,
        // A configuration mistake, not the brokers: the transport reports it, as it always has.
        Err(_) => return Ok(()),
    };
    let looked = tokio::task::spawn_blocking(move || {
        // librdkafka hands its log and errors to the context only when the client is polled:
        // ask in short steps, polling between them.
        let deadline = std::time::Instant::now() + within;
        let result = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let step = left.min(Duration::from_millis(500));
            match client.fetch_metadata(None, step) {
                Ok(_) => break Ok(()),
                Err(error) if left <= step => break Err(error),
                Err(_) => {
                    let _ = client.poll(Duration::from_millis(50));
                }
            }
        };
        let _ = client.poll(Duration::ZERO);
        let first = lock(&client.context().0).take();
        (result, first)
    })
    .await;
    match looked {
        Ok((Ok(()), _)) => Ok(()),
        Ok((Err(error), first)) => Err(unreachable(
            first.map_or_else(|| error.to_string(), |reason| clean(&reason)),
        )),
        Err(error) => Err(unreachable(format!("the metadata request failed: {error}"))),
    }
}

/// librdkafka's reason without its `host:port/bootstrap: ` prefix (the brokers are named
/// already) nor its "(after 0ms in state CONNECT)" detail.
fn clean(reason: &str) -> String {
    let reason = reason
        .split_once("/bootstrap: ")
        .map_or(reason, |(_, rest)| rest);
    let reason = match reason.find(" (after ") {
        Some(at) => &reason[..at],
        None => reason,
    };
    reason.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_to_the_cause() {
        assert_eq!(
            clean(
                "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused \
                 (after 0ms in state CONNECT)"
            ),
            "Connect to ipv4#127.0.0.1:1 failed: Connection refused"
        );
        assert_eq!(clean("Local: Timed out"), "Local: Timed out");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_port_is_one_error_naming_it() {
        // A port just freed by a listener of ours: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = KafkaConfig::new(format!("127.0.0.1:{port}"));
        let error = check_reachable(&config, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(error.brokers, format!("127.0.0.1:{port}"));
        assert!(error.cause.contains("Connection refused"), "{error}");
    }
}
