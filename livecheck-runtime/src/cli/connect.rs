//! The broker a run uses: the brokers given, once one answers, or an embedded one, kept for the
//! process.

use std::sync::Arc;

use super::error::CliError;
use super::flags::Options;
use crate::lock::lock;
use crate::transport::embedded::EmbeddedCluster;

/// Keeps the embedded broker, if one was started, until the process exits or the next run in
/// the same process replaces it (which stops this one): clients of the set-up hook's services
/// and the installed client outlive the run, and stopping the broker under them would only make
/// them log "all brokers down" on the way out. Held, not leaked: at most one at a time.
pub(crate) fn keep_for_the_process(embedded: Option<Arc<EmbeddedCluster>>) {
    static KEPT: std::sync::Mutex<Option<Arc<EmbeddedCluster>>> = std::sync::Mutex::new(None);
    if embedded.is_some() {
        let previous = std::mem::replace(&mut *lock(&KEPT), embedded);
        drop(previous);
    }
}

/// The broker a run uses: the one given, once reached, or an embedded one.
pub(crate) struct Connection {
    pub(crate) brokers: String,
    pub(crate) embedded: Option<Arc<EmbeddedCluster>>,
}

/// Reaches the brokers given (a bounded metadata request: one line naming them and the cause
/// if none answers), or starts the embedded broker.
pub(crate) async fn connect(options: &Options) -> Result<Connection, CliError> {
    match &options.brokers {
        Some(brokers) => {
            let kafka = options.kafka_config(brokers);
            crate::transport::reach::check_reachable(&kafka, options.connect_timeout).await?;
            Ok(Connection {
                brokers: brokers.clone(),
                embedded: None,
            })
        }
        None => {
            let cluster = EmbeddedCluster::start(&options.topics(), options.partitions)?;
            eprintln!(
                "livecheck: no --brokers given: started an embedded Kafka (librdkafka mock \
                 cluster) at {}",
                cluster.bootstrap()
            );
            Ok(Connection {
                brokers: cluster.bootstrap().to_owned(),
                embedded: Some(Arc::new(cluster)),
            })
        }
    }
}
