//! [`WorkerBuilder`]: the cases, settings and observers of a worker, checked into a [`Worker`].

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::service::case::registry::registered_cases;
use crate::service::case::CaseConfig;
use crate::service::client::Client;
use crate::service::http::UrlClient;
use crate::service::store::SignalStore;
use crate::transport::{Consume, Transport};
use crate::wire::error::StartError;
use crate::worker::health::{CaseHealth, ReportedTests};

use super::case_link::CaseLink;
use super::shared::Shared;
use super::stats::Counters;
use super::{Observer, Worker, WorkerSettings};

/// Builds a [`Worker`].
pub struct WorkerBuilder {
    transport: Arc<dyn Transport>,
    /// What the worker consumes, when not `transport` (a one-shot run filters its tests).
    consume: Option<Arc<dyn Consume>>,
    cases: Option<Vec<CaseConfig>>,
    settings: WorkerSettings,
    observers: Vec<Arc<dyn Observer>>,
    #[cfg(feature = "otel")]
    otlp: Option<crate::worker::otel::OtlpExport>,
}

impl fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("transport", &self.transport)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A builder running every registered case on `transport`.
    pub fn builder(transport: impl Transport) -> WorkerBuilder {
        Self::builder_arc(Arc::new(transport))
    }

    /// A builder on a shared transport.
    pub fn builder_arc(transport: Arc<dyn Transport>) -> WorkerBuilder {
        WorkerBuilder {
            transport,
            consume: None,
            cases: None,
            settings: WorkerSettings::default(),
            observers: Vec::new(),
            #[cfg(feature = "otel")]
            otlp: None,
        }
    }
}

impl WorkerBuilder {
    /// Runs these cases (with their options, possibly changed) instead of every registered one.
    pub fn cases(mut self, cases: impl IntoIterator<Item = CaseConfig>) -> Self {
        self.cases = Some(cases.into_iter().collect());
        self
    }

    /// Consumes (and publishes reports) through `consume` instead of the transport, which
    /// still publishes tests and signals and is what the status page reads.
    pub(crate) fn consume(mut self, consume: Arc<dyn Consume>) -> Self {
        self.consume = Some(consume);
        self
    }

    /// Worker settings.
    pub fn settings(mut self, settings: WorkerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Adds an observer.
    pub fn observer(mut self, observer: impl Observer) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Exports a span per test run to an OpenTelemetry collector (OTLP/HTTP), in the trace of
    /// the request that triggered the test; see [`crate::otel`]. Without this call nothing is
    /// exported, whatever the environment says: `OtlpExport::from_env()` reads it.
    ///
    /// ```no_run
    /// # fn build() -> Result<livecheck::Worker, livecheck::StartError> {
    /// use livecheck::otel::OtlpExport;
    /// let mut builder = livecheck::Worker::builder(livecheck::MemoryTransport::new());
    /// if let Some(export) = OtlpExport::from_env() {
    ///     builder = builder.otlp(export);
    /// }
    /// builder.build()
    /// # }
    /// ```
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    pub fn otlp(mut self, export: crate::worker::otel::OtlpExport) -> Self {
        self.otlp = Some(export);
        self
    }

    /// Checks the cases (unique names, at least one) and builds the worker.
    pub fn build(self) -> Result<Worker, StartError> {
        let cases = match self.cases {
            Some(cases) => {
                crate::service::case::registry::check_unique(cases.iter().map(|c| c.descriptor))?;
                cases
            }
            None => registered_cases()?
                .into_iter()
                .map(CaseConfig::from)
                .collect(),
        };
        #[cfg(feature = "otel")]
        let otel = self
            .otlp
            .as_ref()
            .map(crate::worker::otel::Export::new)
            .transpose()
            .map_err(StartError::Otel)?;
        if cases.is_empty() {
            return Err(StartError::NoCases(
                "no #[livecheck::case] is linked into this binary or selected".into(),
            ));
        }
        let health = cases
            .iter()
            .map(|c| (c.name(), Mutex::new(CaseHealth::new(c.name(), c.options))))
            .collect();
        let (suites, suites_rx) = mpsc::unbounded_channel();
        let shared = Arc::new_cyclic(|weak| Shared {
            http: cases
                .iter()
                .map(|c| {
                    (
                        c.name(),
                        Arc::new(UrlClient::with_health(
                            c.options,
                            Some(CaseLink::link(weak, *c)),
                        )),
                    )
                })
                .collect(),
            cases: cases.iter().map(|c| (c.name(), *c)).collect(),
            health,
            store: Arc::new(SignalStore::default()),
            stats: Counters::default(),
            ready: AtomicBool::new(false),
            leader: Mutex::new(None),
            consume: self.consume.unwrap_or_else(|| self.transport.clone()),
            introspect: self.transport.clone(),
            client: Client::from_arc(self.transport),
            observers: self.observers,
            reported: Mutex::new(ReportedTests::new(self.settings.reported_tests)),
            suites,
            suites_rx: Mutex::new(Some(suites_rx)),
            replayed: watch::channel(false).0,
            settings: self.settings,
            #[cfg(feature = "otel")]
            otel,
        });
        Ok(Worker { shared })
    }
}
