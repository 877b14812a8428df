//! `livecheck` (or `livecheck run`): a worker that runs the cases until Ctrl-C or SIGTERM — the
//! broker (given, or embedded), the worker with its observers (stdout, metrics, alerts), the
//! status server, the binary's set-up hook, then a graceful stop.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::connect::{connect, keep_for_the_process, Connection};
use super::console::ConsoleReports;
use super::error::CliError;
use super::flags::Options;
use super::setup::{spawn_setup, SetupReady, SetupWatch, Started};
use super::signals::Signals;
use crate::lock::lock;
use crate::ops::alerts::{redacted, Webhook};
use crate::ops::metrics::Metrics;
use crate::ops::status::{StatusOptions, StatusServer};
use crate::service::case::{CaseConfig, CaseDescriptor};
use crate::transport::kafka::{KafkaConfig, KafkaTransport};
use crate::worker::{Worker, WorkerSettings};

/// What the worker is built with, beside the worker: its metrics (for the status page) and its
/// alert webhook, if any.
struct Built {
    worker: Worker,
    metrics: Option<Metrics>,
    webhook: Option<Webhook>,
}

/// The message of a set-up hook that failed while the worker ran.
type SetupFailure = Arc<Mutex<Option<String>>>;

/// Runs the worker until a signal (or a failed set-up) stops it.
pub(super) async fn main<F, Fut>(
    options: Options,
    cases: Vec<&'static CaseDescriptor>,
    setup: F,
) -> Result<(), CliError>
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let signals = Signals::install();
    // A key that cannot be read stops the worker at start, not at its first test.
    crate::wire::signing::TestKey::from_env().map_err(CliError::Key)?;
    let cases: Vec<CaseConfig> = cases.into_iter().map(CaseConfig::from).collect();
    let Connection { brokers, embedded } = connect(&options).await?;
    let kafka = kafka_config(&options, &brokers, &cases);
    let transport = Arc::new(KafkaTransport::new(kafka.clone())?);
    let Built {
        worker,
        metrics,
        webhook,
    } = build_worker(&options, transport.clone(), cases)?;
    // Up before the topics are checked, so /healthz answers and /readyz says "not yet" while a
    // slow broker is reached; a port in use fails the start at once.
    let status = start_status(&options, &worker, metrics).await?;
    if let Some(webhook) = &options.alert_webhook {
        eprintln!("livecheck: alerts go to {}", redacted(&webhook.url));
    }
    transport.ensure_topics().await?;
    let client = worker.client();
    client.install();
    for case in worker.handle().cases() {
        tracing::info!(case = case.name(), "case registered");
    }
    let (ready, setup_watch) = SetupReady::new();
    let hook = spawn_setup(
        setup,
        Started {
            brokers,
            embedded: embedded.clone(),
            kafka,
            client,
            status: status.as_ref().map(StatusServer::local_addr),
            ready,
        },
    );
    let setup_failed = SetupFailure::default();
    let result = worker
        .run(shutdown(signals, setup_watch, setup_failed.clone()))
        .await;
    hook.abort();
    wind_down(webhook, status).await;
    keep_for_the_process(embedded);
    result?;
    let failed = lock(&setup_failed).take();
    match failed {
        Some(message) => Err(CliError::Setup(message)),
        None => Ok(()),
    }
}

/// The Kafka settings of the flags, with signals replayed as far back as the longest-lived test
/// of `cases` (3 h if none says).
fn kafka_config(options: &Options, brokers: &str, cases: &[CaseConfig]) -> KafkaConfig {
    let mut kafka = options.kafka_config(brokers);
    kafka.signal_replay = cases
        .iter()
        .map(|c| c.options.test_expires)
        .max()
        .unwrap_or(Duration::from_secs(3 * 3600));
    kafka
}

/// The worker of `cases`, its settings from the flags, with its observers: each report on
/// stdout, the metrics (unless `--no-web`), the alert webhook (if `--alert-webhook`), and the
/// OpenTelemetry export (if one is configured).
fn build_worker(
    options: &Options,
    transport: Arc<KafkaTransport>,
    cases: Vec<CaseConfig>,
) -> Result<Built, CliError> {
    let settings = WorkerSettings {
        test_concurrency: options.test_concurrency as usize,
        send_reports: !options.no_reports,
        suite_reminder: options.suite_reminder,
        max_test_age: options.max_test_age.0,
        ..WorkerSettings::default()
    };
    let metrics = (!options.no_web).then(Metrics::new);
    let webhook = match options.alert_webhook.clone() {
        Some(mut config) => {
            config.retries = options.alert_retries;
            Some(Webhook::start(config)?)
        }
        None => None,
    };
    let mut builder = Worker::builder_arc(transport)
        .cases(cases)
        .settings(settings)
        .observer(ConsoleReports);
    if let Some(metrics) = &metrics {
        builder = builder.observer(metrics.clone());
    }
    if let Some(webhook) = &webhook {
        builder = builder.observer(webhook.clone());
        if let Some(metrics) = &metrics {
            metrics.track_alerts(webhook);
        }
    }
    #[cfg(feature = "otel")]
    if let Some(export) = options.otlp_export() {
        builder = builder.otlp(export);
    }
    Ok(Built {
        worker: builder.build()?,
        metrics,
        webhook,
    })
}

/// The status server on `--web-bind`, when there are metrics (no `--no-web`).
async fn start_status(
    options: &Options,
    worker: &Worker,
    metrics: Option<Metrics>,
) -> Result<Option<StatusServer>, CliError> {
    let Some(metrics) = metrics else {
        return Ok(None);
    };
    let mut status_options = StatusOptions::default();
    if let Some(template) = &options.trace_url {
        status_options = status_options.trace_url(template);
    }
    let server =
        StatusServer::start_with(options.web_bind, worker.handle(), metrics, status_options)
            .await?;
    eprintln!(
        "livecheck: status page at {} (JSON at api/cases, Prometheus at metrics)",
        server.url()
    );
    Ok(Some(server))
}

/// Completes when the worker is to stop: at the first signal (a second one exits at once, with
/// code 130), or when the set-up hook fails (its message kept in `setup_failed`).
async fn shutdown(mut signals: Signals, setup_watch: SetupWatch, setup_failed: SetupFailure) {
    tokio::select! {
        () = signals.next() => {
            eprintln!(
                "livecheck: stopping (fake requests first, then the running tests); \
                 press Ctrl-C again to exit at once"
            );
            tokio::spawn(async move {
                signals.next().await;
                eprintln!("livecheck: second signal: exiting at once");
                std::process::exit(130);
            });
        }
        message = setup_watch.failure() => {
            *lock(&setup_failed) = Some(message);
        }
    }
}

/// After the worker stopped: the alerts still queued go out, the status server stops.
async fn wind_down(webhook: Option<Webhook>, status: Option<StatusServer>) {
    if let Some(webhook) = webhook {
        // A last alert (e.g. a recovery) raised during shutdown still goes out.
        tracing::info!("sending the alerts still queued (up to 10 s)");
        webhook.flush(Duration::from_secs(10)).await;
    }
    if let Some(status) = status {
        status.stop().await;
    }
}
