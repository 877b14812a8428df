//! The `livecheck` command line: [`main`] for a binary of your own, [`Options`] for its flags.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::case::{registered_cases, CaseConfig};
use crate::client::Client;
use crate::codec::Codec;
use crate::model::TestReport;
use crate::transport::embedded::EmbeddedCluster;
use crate::transport::kafka::{KafkaConfig, KafkaTransport, Topics};
use crate::worker::{Observer, Worker, WorkerSettings};

/// Flags of a `livecheck` binary; each can also be set by the environment variable shown.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "livecheck",
    version,
    about = "End-to-end tests of a live system: runs every livecheck case linked into this binary",
    after_help = "With no --brokers, an embedded in-process Kafka (librdkafka's mock cluster) is \
                  started, for demos and local runs."
)]
pub struct Options {
    /// Kafka bootstrap servers (host:port,...); none starts an embedded broker.
    #[arg(long, env = "LIVECHECK_BROKERS")]
    pub brokers: Option<String>,
    /// librdkafka property passed through unchanged, e.g. -X security.protocol=SSL (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property,
          env = "LIVECHECK_KAFKA_PROPERTIES", value_delimiter = ',')]
    pub properties: Vec<(String, String)>,
    /// Consumer group of the workers.
    #[arg(long, env = "LIVECHECK_GROUP_ID", default_value = "livecheck")]
    pub group_id: String,
    /// Topic of test executions.
    #[arg(long, env = "LIVECHECK_TESTS_TOPIC", default_value = "livecheck")]
    pub tests_topic: String,
    /// Topic of signals.
    #[arg(long, env = "LIVECHECK_BUS_TOPIC", default_value = "livecheck-bus")]
    pub bus_topic: String,
    /// Topic of reports.
    #[arg(
        long,
        env = "LIVECHECK_REPORT_TOPIC",
        default_value = "livecheck-report"
    )]
    pub report_topic: String,
    /// Partitions of topics created at start-up.
    #[arg(long, env = "LIVECHECK_PARTITIONS", default_value_t = 8,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Replication factor of topics created at start-up.
    #[arg(long, env = "LIVECHECK_REPLICATION", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub replication: i32,
    /// Encoding of executions and signals written (both are read).
    #[arg(long, env = "LIVECHECK_CODEC", default_value = "bincode", value_enum)]
    pub codec: CodecArg,
    /// Tests running at once.
    #[arg(long, env = "LIVECHECK_TEST_CONCURRENCY", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub test_concurrency: u32,
    /// Signals handled at once.
    #[arg(long, env = "LIVECHECK_BUS_CONCURRENCY", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub bus_concurrency: u32,
    /// Don't publish reports to the report topic (they are still logged).
    #[arg(long, env = "LIVECHECK_NO_REPORTS")]
    pub no_reports: bool,
    /// Log format on stderr.
    #[arg(
        long,
        env = "LIVECHECK_LOG_FORMAT",
        default_value = "pretty",
        value_enum
    )]
    pub log_format: LogFormat,
    /// What to do (default: run the worker).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the worker (the default).
    Run,
    /// List the registered cases with their options.
    Cases,
}

/// `--codec` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    /// Compact binary.
    Bincode,
    /// Faust-compatible JSON.
    Json,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

impl Options {
    /// The Kafka settings these flags describe, for `brokers`.
    pub fn kafka_config(&self, brokers: &str) -> KafkaConfig {
        let mut config = KafkaConfig::new(brokers);
        config.properties = self.properties.clone();
        config.group_id = self.group_id.clone();
        config.topics = self.topics();
        config.partitions = self.partitions;
        config.replication = self.replication;
        config.codec = match self.codec {
            CodecArg::Bincode => Codec::Bincode,
            CodecArg::Json => Codec::Json,
        };
        config
    }

    fn topics(&self) -> Topics {
        Topics {
            tests: self.tests_topic.clone(),
            bus: self.bus_topic.clone(),
            reports: self.report_topic.clone(),
        }
    }
}

/// What a binary's set-up hook gets once the worker's transport is up (see [`main_with`]).
#[derive(Debug, Clone)]
pub struct Started {
    /// The bootstrap servers in use (the embedded broker's, if it was started).
    pub brokers: String,
    /// Whether the embedded broker was started.
    pub embedded: bool,
    /// The Kafka settings in use.
    pub kafka: KafkaConfig,
    /// The worker's client (also installed for the process).
    pub client: Client,
}

/// Runs a livecheck worker with every case linked into this binary, until Ctrl-C or SIGTERM.
///
/// A binary of your own is one line:
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     livecheck::main()
/// }
/// ```
/// Cases are found with `inventory`, which sees only what the linker keeps: if your cases live in
/// a library crate that the binary does not otherwise use, add `use my_cases as _;` to the
/// binary so the crate is linked in.
pub fn main() -> ExitCode {
    main_with(|_| async {})
}

/// [`main`], plus a set-up hook run once the transport is up (e.g. to start services in the same
/// process for a demo); the hook's future is stopped at shutdown.
pub fn main_with<F, Fut>(setup: F) -> ExitCode
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let options = Options::parse();
    init_tracing(options.log_format);
    if let Some(Command::Cases) = options.command {
        return list_cases();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("livecheck: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options, setup)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("livecheck: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run<F, Fut>(options: Options, setup: F) -> Result<(), Box<dyn std::error::Error>>
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let shutdown = shutdown_signal();
    let cases: Vec<CaseConfig> = registered_cases()?
        .into_iter()
        .map(CaseConfig::from)
        .collect();
    let (brokers, embedded) = match &options.brokers {
        Some(brokers) => (brokers.clone(), None),
        None => {
            let cluster = EmbeddedCluster::start(&options.topics(), options.partitions)?;
            eprintln!(
                "livecheck: no --brokers given: started an embedded Kafka (librdkafka mock \
                 cluster) at {}",
                cluster.bootstrap()
            );
            (cluster.bootstrap().to_owned(), Some(cluster))
        }
    };
    let mut kafka = options.kafka_config(&brokers);
    kafka.signal_replay = cases
        .iter()
        .map(|c| c.options.test_expires)
        .max()
        .unwrap_or(Duration::from_secs(3 * 3600));
    let transport = Arc::new(KafkaTransport::new(kafka.clone())?);
    transport.ensure_topics().await?;
    let settings = WorkerSettings {
        test_concurrency: options.test_concurrency as usize,
        bus_concurrency: options.bus_concurrency as usize,
        send_reports: !options.no_reports,
        ..WorkerSettings::default()
    };
    let worker = Worker::builder_arc(transport)
        .cases(cases)
        .settings(settings)
        .observer(ConsoleReports)
        .build()?;
    let client = worker.client();
    client.install();
    for case in worker.handle().cases() {
        tracing::info!(case = case.name(), "case registered");
    }
    let hook = tokio::spawn(setup(Started {
        brokers,
        embedded: embedded.is_some(),
        kafka,
        client,
    }));
    let result = worker.run(shutdown).await;
    hook.abort();
    // Clients (the installed one among them) outlive this function; stopping the embedded broker
    // under them would only make them log "all brokers down". It goes with the process.
    std::mem::forget(embedded);
    Ok(result?)
}

fn list_cases() -> ExitCode {
    match registered_cases() {
        Ok(cases) => {
            for case in cases {
                let o = &case.options;
                println!("{}", case.name);
                println!(
                    "    probability={} active={} frequency={} fake_request={} \
                     warn_stalled_after={:?} test_expires={:?}",
                    o.probability,
                    o.active,
                    o.frequency.map_or("none".into(), |f| format!("{f:?}")),
                    case.fake_request.is_some(),
                    o.warn_stalled_after,
                    o.test_expires,
                );
                println!(
                    "    max_consecutive_failures={} state_transition_delay={:?} \
                     max_history={} realtime_logs={} defined at {}:{}",
                    o.max_consecutive_failures,
                    o.state_transition_delay,
                    o.max_history,
                    o.realtime_logs,
                    case.file,
                    case.line
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("livecheck: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,livecheck=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal during start-up is not lost (nor fatal).
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Prints one line per outcome to stdout.
struct ConsoleReports;

impl Observer for ConsoleReports {
    fn on_report(&self, report: &TestReport) {
        println!("{}", format_report_line(report));
    }
}

/// `PASS     orders::test_order  id=...  1.23ms`, or a suite line.
pub(crate) fn format_report_line(report: &TestReport) -> String {
    let error = report
        .error
        .as_deref()
        .map(|e| format!("  {e}"))
        .unwrap_or_default();
    match &report.test {
        Some(test) => format!(
            "{:<8} {}  id={}  {}{}",
            report.state.as_str(),
            report.case_name,
            test.id,
            report
                .runtime
                .map(|r| crate::duration::humanize(Duration::from_secs_f64(r)))
                .unwrap_or_default(),
            error
        ),
        None => format!(
            "SUITE {:<8} {}{}",
            if report.state == crate::State::Pass {
                "RECOVER"
            } else {
                report.state.as_str()
            },
            report.case_name,
            error
        ),
    }
}
