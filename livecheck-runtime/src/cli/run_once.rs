//! `livecheck run --once`: the one-shot run as the command line makes it — the broker (given,
//! or embedded), a consumer group of the run's own placed at the end of the tests topic, the
//! binary's set-up hook, the run ([`crate::once::OnceRun`]), its summary on stdout, its files
//! and its exit code. The flags are [`RunArgs`].

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::connect::{connect, keep_for_the_process, Connection};
use super::console::ConsoleReports;
use super::error::CliError;
use super::flags::{Options, RunArgs};
use super::setup::{spawn_setup, SetupReady, Started};
use super::signals::Signals;
use crate::service::case::{CaseConfig, CaseDescriptor};
use crate::service::client::Client;
use crate::transport::kafka::{KafkaConfig, KafkaTransport};
use crate::worker::once::{junit, OnceRun, OnceSettings, Summary, Verdict};
use crate::worker::WorkerSettings;

/// `livecheck run --once`: the broker (given, or embedded), a consumer group of the run's own
/// that starts at the end of the tests topic, the binary's set-up hook, the run, its summary on
/// stdout and its files; the exit code is 0 only if the run passed.
pub(crate) async fn main<F, Fut>(
    options: Options,
    args: RunArgs,
    cases: Vec<&'static CaseDescriptor>,
    setup: F,
) -> Result<ExitCode, CliError>
where
    F: FnOnce(Started) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let mut signals = Signals::install();
    let cases: Vec<CaseConfig> = cases.into_iter().map(CaseConfig::from).collect();
    let Connection { brokers, embedded } = connect(&options).await?;
    let mut kafka = options.kafka_config(&brokers);
    // A group of the run's own: it sees every partition, and no live worker's offsets move.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    kafka.group_id = format!("{}-once-{}", options.group_id, &run_id[..12]);
    // The run's tests are triggered after it starts; their signals are not older.
    kafka.signal_replay = args.timeout;
    let transport = Arc::new(KafkaTransport::new(kafka.clone())?);
    transport.ensure_topics().await?;
    if let Err(error) = start_at_end(&kafka).await {
        tracing::warn!(%error, group = %kafka.group_id,
            "could not place the run's group at the end of the tests topic: it reads the \
             topic from its start, and runs none of the older tests");
    }
    let client = Client::from_arc(transport.clone());
    client.install();
    let (ready, mut setup_watch) = SetupReady::new();
    let hook = spawn_setup(
        setup,
        Started {
            brokers,
            embedded: embedded.clone(),
            kafka: kafka.clone(),
            client,
            status: None,
            ready,
        },
    );
    let deadline = start + args.timeout;
    let result = tokio::select! {
        () = signals.next() => {
            eprintln!("livecheck: interrupted: no verdict");
            return Ok(ExitCode::from(130));
        }
        result = async {
            match tokio::time::timeout_at(deadline, setup_watch.outcome()).await {
                Ok(Err(message)) => return Err(CliError::Setup(message)),
                Ok(Ok(())) => {}
                Err(_) => tracing::warn!("the set-up is not done within --timeout: running anyway"),
            }
            let settings = OnceSettings {
                timeout: deadline.saturating_duration_since(Instant::now()),
                retries: args.retries,
            };
            let worker = WorkerSettings {
                test_concurrency: options.test_concurrency as usize,
                send_reports: !options.no_reports,
                shutdown_grace: Duration::from_secs(2),
                ..WorkerSettings::default()
            };
            let run = OnceRun::new(transport.clone(), cases)
                .settings(settings)
                .worker_settings(worker)
                .observer(ConsoleReports);
            #[cfg(feature = "otel")]
            let run = match options.otlp_export() {
                Some(export) => run.otlp(export),
                None => run,
            };
            run.run().await.map_err(CliError::from)
        } => result,
    };
    hook.abort();
    let mut summary = result?;
    // The whole run, broker start and set-up included.
    summary.elapsed = start.elapsed();
    if options.brokers.is_some() {
        delete_groups(&kafka).await;
    }
    keep_for_the_process(embedded);
    finish(&summary, &args)
}

/// The summary on stdout, the files asked for, a word on stderr about flaky cases or a run of
/// nothing, and the exit code: 0 if the run passed ([`Summary::passed`]), else 1.
fn finish(summary: &Summary, args: &RunArgs) -> Result<ExitCode, CliError> {
    println!("{}", summary.render());
    if let Some(path) = &args.junit {
        write_file(path, junit::to_xml(summary))?;
    }
    if let Some(path) = &args.json {
        let json = summary.to_json(args.fail_on_flaky);
        write_file(path, format!("{json:#}\n"))?;
    }
    let flaky = summary.count(Verdict::Flaky);
    if flaky > 0 && !args.fail_on_flaky {
        eprintln!(
            "livecheck: warning: {flaky} flaky case(s) passed only on a retry; \
             --fail-on-flaky makes that a failure"
        );
    }
    if !summary.cases.iter().any(|c| c.verdict != Verdict::Skip) {
        eprintln!("livecheck: no case could be run: the run fails");
    }
    Ok(if summary.passed(args.fail_on_flaky) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_file(path: &std::path::Path, text: String) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|cause| CliError::Output {
        path: path.to_owned(),
        cause,
    })
}

/// Commits, for the run's new group, the end of every partition of the tests topic: the group
/// starts there, so the run reads only tests written after it began (a new group would
/// otherwise start at the beginning, and read every old test to skip it).
async fn start_at_end(config: &KafkaConfig) -> Result<(), String> {
    let consumer: BaseConsumer = config
        .consumer_config(&config.group_id)
        .create()
        .map_err(|e| e.to_string())?;
    let topic = config.topics.tests.clone();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .map_err(|e| e.to_string())?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        let mut ends = TopicPartitionList::new();
        for partition in 0..count as i32 {
            let (_, high) = consumer
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(|e| e.to_string())?;
            ends.add_partition_offset(&topic, partition, Offset::Offset(high))
                .map_err(|e| e.to_string())?;
        }
        consumer
            .commit(&ends, CommitMode::Sync)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Deletes the run's groups from the broker (best effort: they would expire anyway).
async fn delete_groups(config: &KafkaConfig) {
    let admin: Result<AdminClient<DefaultClientContext>, _> = config.producer_config().create();
    let Ok(admin) = admin else { return };
    let bus = format!("{}-bus", config.group_id);
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    match tokio::time::timeout(
        Duration::from_secs(6),
        admin.delete_groups(&[config.group_id.as_str(), bus.as_str()], &options),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::debug!(%error, "the run's groups were not deleted"),
        Err(_) => tracing::debug!("the run's groups were not deleted in time"),
    }
}
