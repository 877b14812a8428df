//! The `livecheck` command line: [`main`] for a binary of your own, [`Options`] for its flags.
//!
//! Every flag can also be set by an environment variable (`LIVECHECK_*`, named in `--help`; its
//! value is never shown there, as it may be a secret). A bad value is a one-line error naming the
//! flag, with exit code 2; the value of `-X` and `--alert-webhook` is never repeated in an error.
//! `docs/operations.md` lists the flags, the status server's endpoints and the metrics.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::alerts::{redacted, AlertError, Webhook, WebhookConfig};
use crate::case::{registered_cases, CaseConfig, CaseDescriptor};
use crate::client::Client;
use crate::codec::Codec;
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::model::TestReport;
use crate::status::{StatusError, StatusServer};
use crate::transport::embedded::EmbeddedCluster;
use crate::transport::kafka::{KafkaConfig, KafkaTransport, Topics};
use crate::transport::TransportError;
use crate::worker::{Observer, Worker, WorkerSettings};

/// The default `--web-bind`: loopback only; expose it on purpose.
pub const DEFAULT_WEB_BIND: &str = "127.0.0.1:9999";

/// Flags of a `livecheck` binary; each can also be set by the environment variable shown.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "livecheck",
    version,
    about = "End-to-end tests of a live system: runs every livecheck case linked into this binary",
    after_help = "With no --brokers, an embedded in-process Kafka (librdkafka's mock cluster) is \
                  started, for demos and local runs.\n\
                  The status page (dashboard, /api/cases, /metrics, /healthz, /readyz) is on \
                  --web-bind unless --no-web is given."
)]
pub struct Options {
    /// Kafka bootstrap servers (host:port,...); none starts an embedded broker.
    #[arg(
        long,
        env = "LIVECHECK_BROKERS",
        help_heading = "Kafka",
        hide_env_values = true
    )]
    pub brokers: Option<String>,
    /// librdkafka property passed through unchanged, e.g. -X security.protocol=SSL (repeatable).
    ///
    /// One property per -X: the value is everything after the first '=', commas included.
    ///
    /// Environment: LIVECHECK_KAFKA_PROPERTIES, one KEY=VALUE per line; -X flags are applied
    /// after it.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property,
          action = clap::ArgAction::Append, help_heading = "Kafka")]
    pub properties: Vec<Property>,
    /// Consumer group of the workers.
    #[arg(
        long,
        env = "LIVECHECK_GROUP_ID",
        default_value = "livecheck",
        help_heading = "Kafka",
        hide_env_values = true
    )]
    pub group_id: String,
    /// Topic of test executions.
    #[arg(
        long,
        env = "LIVECHECK_TESTS_TOPIC",
        default_value = "livecheck",
        help_heading = "Kafka",
        hide_env_values = true
    )]
    pub tests_topic: String,
    /// Topic of signals.
    #[arg(
        long,
        env = "LIVECHECK_BUS_TOPIC",
        default_value = "livecheck-bus",
        help_heading = "Kafka",
        hide_env_values = true
    )]
    pub bus_topic: String,
    /// Topic of reports.
    #[arg(
        long,
        env = "LIVECHECK_REPORT_TOPIC",
        default_value = "livecheck-report",
        help_heading = "Kafka",
        hide_env_values = true
    )]
    pub report_topic: String,
    /// Partitions of topics created at start-up.
    #[arg(long, env = "LIVECHECK_PARTITIONS", default_value_t = 8,
          value_parser = clap::value_parser!(i32).range(1..), help_heading = "Kafka", hide_env_values = true)]
    pub partitions: i32,
    /// Replication factor of topics created at start-up.
    #[arg(long, env = "LIVECHECK_REPLICATION", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..), help_heading = "Kafka", hide_env_values = true)]
    pub replication: i32,
    /// Encoding of executions and signals written (both are read).
    #[arg(
        long,
        env = "LIVECHECK_CODEC",
        default_value = "bincode",
        value_enum,
        help_heading = "Kafka",
        hide_env_values = true
    )]
    pub codec: CodecArg,
    /// Run only the cases whose name matches this glob (`*` any text, `?` one character);
    /// repeatable, or comma-separated.
    #[arg(
        long = "case",
        value_name = "GLOB",
        env = "LIVECHECK_CASE",
        value_delimiter = ',',
        global = true,
        help_heading = "Worker",
        hide_env_values = true
    )]
    pub cases: Vec<String>,
    /// Tests running at once.
    #[arg(long, env = "LIVECHECK_TEST_CONCURRENCY", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Worker", hide_env_values = true)]
    pub test_concurrency: u32,
    /// Signals handled at once.
    #[arg(long, env = "LIVECHECK_BUS_CONCURRENCY", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Worker", hide_env_values = true)]
    pub bus_concurrency: u32,
    /// Don't publish reports to the report topic (they are still logged).
    #[arg(long, env = "LIVECHECK_NO_REPORTS",
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Worker", hide_env_values = true)]
    pub no_reports: bool,
    /// How far back a starting worker reads the report topic to rebuild the group's view
    /// (case health, suite state, tests already reported), e.g. "1h".
    #[arg(long, value_name = "DURATION", env = "LIVECHECK_REPORT_REPLAY", default_value = "1h",
          value_parser = parse_duration_arg, help_heading = "Worker", hide_env_values = true)]
    pub report_replay: Duration,
    /// Repeat a suite FAIL or STALL that lasts this long since its last report, e.g. "30m"
    /// (default: one report per transition).
    #[arg(long, value_name = "DURATION", env = "LIVECHECK_SUITE_REMINDER",
          value_parser = parse_duration_arg, help_heading = "Status page and alerts",
          hide_env_values = true)]
    pub suite_reminder: Option<Duration>,
    /// Address of the status page, API and metrics (loopback by default).
    #[arg(long, value_name = "ADDR", env = "LIVECHECK_WEB_BIND",
          default_value = DEFAULT_WEB_BIND, help_heading = "Status page and alerts", hide_env_values = true)]
    pub web_bind: SocketAddr,
    /// Don't start the status page (nor the metrics endpoint).
    #[arg(
        long,
        env = "LIVECHECK_NO_WEB",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Status page and alerts", hide_env_values = true)]
    pub no_web: bool,
    /// POST suite FAIL, STALL and recovery alerts as JSON to this URL (Slack-compatible `text`).
    #[arg(long, value_name = "URL", env = "LIVECHECK_ALERT_WEBHOOK",
          value_parser = parse_webhook, help_heading = "Status page and alerts", hide_env_values = true)]
    pub alert_webhook: Option<WebhookConfig>,
    /// Retries of an alert the webhook did not accept (backoff 1 s, doubling, at most 30 s).
    #[arg(
        long,
        value_name = "N",
        env = "LIVECHECK_ALERT_RETRIES",
        default_value_t = 5,
        help_heading = "Status page and alerts",
        hide_env_values = true
    )]
    pub alert_retries: u32,
    /// Log format on stderr (filter with RUST_LOG, e.g. RUST_LOG=livecheck=debug).
    #[arg(
        long,
        env = "LIVECHECK_LOG_FORMAT",
        default_value = "pretty",
        value_enum,
        help_heading = "Logging",
        hide_env_values = true
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
    /// List the registered cases (those --case selects) with their options.
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
    /// One JSON object per line, with the test's span (case, test id) on each event.
    Json,
}

/// The environment variable of `-X`: librdkafka properties, one `KEY=VALUE` per line (a value
/// may hold commas and `=`; blank lines and lines starting with `#` are skipped).
pub const PROPERTIES_ENV: &str = "LIVECHECK_KAFKA_PROPERTIES";

/// A librdkafka property given with `-X KEY=VALUE`. Its `Debug` hides the value: properties
/// carry passwords and keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Property {
    /// The property's name, e.g. `sasl.password`.
    pub key: String,
    /// Its value, unchanged.
    pub value: String,
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<hidden>", self.key)
    }
}

/// `KEY=VALUE`: the key trimmed, the value everything after the first `=`, unchanged. The error
/// never repeats the text: it may be (part of) a secret.
fn parse_property(s: &str) -> Result<Property, String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok(Property {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        }),
        Some(_) => Err("expected KEY=VALUE, the key is empty".to_owned()),
        None => Err("expected KEY=VALUE, there is no '='".to_owned()),
    }
}

/// The properties of [`PROPERTIES_ENV`]'s value: one `KEY=VALUE` per line.
pub fn parse_properties_env(text: &str) -> Result<Vec<Property>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(index, line)| {
            parse_property(line).map_err(|e| format!("{PROPERTIES_ENV}, line {}: {e}", index + 1))
        })
        .collect()
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::duration::parse_duration(s).map_err(|e| e.to_string())
}

fn parse_webhook(s: &str) -> Result<WebhookConfig, String> {
    WebhookConfig::new(s).map_err(|e| e.to_string())
}

impl Options {
    /// The Kafka settings these flags describe, for `brokers`.
    pub fn kafka_config(&self, brokers: &str) -> KafkaConfig {
        let mut config = KafkaConfig::new(brokers);
        config.properties = self
            .properties
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        config.group_id = self.group_id.clone();
        config.topics = self.topics();
        config.partitions = self.partitions;
        config.replication = self.replication;
        config.report_replay = self.report_replay;
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

    /// The registered cases that `--case` selects (all of them without it), sorted by name.
    pub fn selected_cases(&self) -> Result<Vec<&'static CaseDescriptor>, CliError> {
        let all = registered_cases()?;
        if self.cases.is_empty() {
            return Ok(all);
        }
        for glob in &self.cases {
            if !all.iter().any(|c| glob_match(glob, c.name)) {
                let names: Vec<_> = all.iter().map(|c| c.name).collect();
                return Err(CliError::Usage(format!(
                    "--case {glob:?} matches no registered case (there are: {})",
                    names.join(", ")
                )));
            }
        }
        Ok(all
            .into_iter()
            .filter(|c| self.cases.iter().any(|glob| glob_match(glob, c.name)))
            .collect())
    }
}

/// Whether `text` matches `glob`: `*` is any run of characters (`::` included), `?` is one
/// character, anything else matches itself.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut g, mut t) = (0, 0);
    // Where the last `*` was, and the text position it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((star_g, star_t)) => {
                    g = star_g + 1;
                    t = star_t + 1;
                    star = Some((star_g, star_t + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == '*')
}

/// Why the `livecheck` command stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A flag's value is wrong (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The cases are invalid (e.g. two with one name).
    #[error(transparent)]
    Cases(#[from] StartError),
    /// The transport could not start.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The status server could not start.
    #[error("--web-bind: {0}")]
    Status(#[from] StatusError),
    /// The alert webhook could not start.
    #[error("--alert-webhook: {0}")]
    Alerts(#[from] AlertError),
    /// The tokio runtime could not start.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl CliError {
    /// 2 for a bad flag value (as clap does), 1 for anything else.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Parses the flags as `livecheck` does: `--help` and `--version` print and exit 0; a mistake
/// is one line naming the flag, and exit code 2. The properties of [`PROPERTIES_ENV`] come first
/// in [`Options::properties`], the `-X` flags after them (a flag wins over the same key).
pub fn parse_options<I, T>(args: I) -> Result<Options, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut options = Options::try_parse_from(args).map_err(|error| {
        use clap::error::ErrorKind;
        match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = error.print();
                if error.exit_code() == 0 {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            _ => {
                eprintln!("livecheck: {} (see --help)", one_line(&error));
                ExitCode::from(2)
            }
        }
    })?;
    if let Some(text) = std::env::var_os(PROPERTIES_ENV) {
        let Some(text) = text.to_str() else {
            eprintln!("livecheck: {PROPERTIES_ENV} is not UTF-8");
            return Err(ExitCode::from(2));
        };
        let mut properties = parse_properties_env(text).map_err(|error| {
            eprintln!("livecheck: {error}");
            ExitCode::from(2)
        })?;
        properties.append(&mut options.properties);
        options.properties = properties;
    }
    Ok(options)
}

/// The first line of clap's message, without its `error: ` prefix: it names the flag and the
/// problem; the usage and tips that follow are what `--help` is for. What the user typed is left
/// out where it may be a secret: the value of `-X` or `--alert-webhook`, and a stray word (the
/// tail of a value split by the shell, as in `-X sasl.password=ab cd`).
fn one_line(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = error.to_string();
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut line = line
        .strip_prefix("error: ")
        .unwrap_or(line)
        .trim()
        .to_owned();
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let hidden = match error.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => context(ContextKind::InvalidArg)
            .filter(|arg| arg.starts_with("-X") || arg.starts_with("--alert-webhook"))
            .and(context(ContextKind::InvalidValue)),
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => {
            context(ContextKind::InvalidArg)
                .or(context(ContextKind::InvalidSubcommand))
                .filter(|word| !word.starts_with('-') || word.contains('='))
        }
        _ => None,
    };
    if let Some(secret) = hidden.filter(|s| !s.is_empty()) {
        line = line.replace(secret, "<not shown>");
    }
    line
}

/// What a binary's set-up hook gets once the worker's transport is up (see [`main_with`]).
#[derive(Debug, Clone)]
pub struct Started {
    /// The bootstrap servers in use (the embedded broker's, if it was started).
    pub brokers: String,
    /// The embedded broker, if it was started (e.g. to create the topics a demo's services use).
    pub embedded: Option<Arc<EmbeddedCluster>>,
    /// The Kafka settings in use.
    pub kafka: KafkaConfig,
    /// The worker's client (also installed for the process).
    pub client: Client,
    /// Where the status page listens, unless `--no-web`.
    pub status: Option<SocketAddr>,
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
    let options = match parse_options(std::env::args_os()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    init_tracing(options.log_format);
    let result = options.selected_cases().and_then(|cases| {
        if let Some(Command::Cases) = options.command {
            list_cases(&cases);
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        runtime.block_on(run(options, cases, setup))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("livecheck: {error}");
            error.exit_code()
        }
    }
}

async fn run<F, Fut>(
    options: Options,
    cases: Vec<&'static CaseDescriptor>,
    setup: F,
) -> Result<(), CliError>
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let shutdown = shutdown_signal();
    let cases: Vec<CaseConfig> = cases.into_iter().map(CaseConfig::from).collect();
    let (brokers, embedded) = match &options.brokers {
        Some(brokers) => (brokers.clone(), None),
        None => {
            let cluster = EmbeddedCluster::start(&options.topics(), options.partitions)?;
            eprintln!(
                "livecheck: no --brokers given: started an embedded Kafka (librdkafka mock \
                 cluster) at {}",
                cluster.bootstrap()
            );
            (cluster.bootstrap().to_owned(), Some(Arc::new(cluster)))
        }
    };
    let mut kafka = options.kafka_config(&brokers);
    kafka.signal_replay = cases
        .iter()
        .map(|c| c.options.test_expires)
        .max()
        .unwrap_or(Duration::from_secs(3 * 3600));
    let transport = Arc::new(KafkaTransport::new(kafka.clone())?);
    let settings = WorkerSettings {
        test_concurrency: options.test_concurrency as usize,
        bus_concurrency: options.bus_concurrency as usize,
        send_reports: !options.no_reports,
        suite_reminder: options.suite_reminder,
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
    let mut builder = Worker::builder_arc(transport.clone())
        .cases(cases)
        .settings(settings)
        .observer(ConsoleReports);
    if let Some(metrics) = &metrics {
        builder = builder.observer(metrics.clone());
    }
    if let Some(webhook) = &webhook {
        builder = builder.observer(webhook.clone());
        if let Some(metrics) = &metrics {
            metrics.track_alerts(webhook.stats());
        }
    }
    let worker = builder.build()?;
    // Up before the topics are checked, so /healthz answers and /readyz says "not yet" while a
    // slow broker is reached; a port in use fails the start at once.
    let status = match metrics {
        Some(metrics) => {
            let server = StatusServer::start(options.web_bind, worker.handle(), metrics).await?;
            eprintln!(
                "livecheck: status page at {} (JSON at api/cases, Prometheus at metrics)",
                server.url()
            );
            Some(server)
        }
        None => None,
    };
    if let Some(webhook) = &options.alert_webhook {
        eprintln!("livecheck: alerts go to {}", redacted(&webhook.url));
    }
    transport.ensure_topics().await?;
    let client = worker.client();
    client.install();
    for case in worker.handle().cases() {
        tracing::info!(case = case.name(), "case registered");
    }
    let hook = tokio::spawn(setup(Started {
        brokers,
        embedded: embedded.clone(),
        kafka,
        client,
        status: status.as_ref().map(StatusServer::local_addr),
    }));
    let result = worker.run(shutdown).await;
    hook.abort();
    if let Some(webhook) = webhook {
        // A last alert (e.g. a recovery) raised during shutdown still goes out.
        webhook.flush(Duration::from_secs(10)).await;
    }
    if let Some(status) = status {
        status.stop().await;
    }
    // Clients (the installed one among them) outlive this function; stopping the embedded broker
    // under them would only make them log "all brokers down". It goes with the process.
    std::mem::forget(embedded);
    Ok(result?)
}

fn list_cases(cases: &[&'static CaseDescriptor]) {
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn globs_match_case_names() {
        assert!(glob_match("orders::*", "orders::test_order"));
        assert!(glob_match("*order*", "orders::test_order"));
        assert!(glob_match("it.fl?w", "it.flow"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("orders::*", "payments::test_pay"));
        assert!(!glob_match("it.flow", "it.flows"));
        assert!(!glob_match("a*b*c", "a-b-b-d"));
    }

    #[test]
    fn every_flag_has_an_environment_variable_whose_value_help_hides() {
        let command = Options::command();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if id == "properties" {
                // Read by parse_options (one property per line, not clap's one value), and named
                // in the flag's help.
                let help = arg
                    .get_long_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                assert!(help.contains(PROPERTIES_ENV), "{help}");
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert!(
                env.as_deref().is_some_and(|e| e.starts_with("LIVECHECK_")),
                "--{id} has no LIVECHECK_* variable"
            );
            assert!(
                arg.is_hide_env_values_set(),
                "--{id} shows its variable's value"
            );
        }
        command.debug_assert();
    }

    #[test]
    fn one_property_per_flag_commas_and_equal_signs_included() {
        let options = Options::try_parse_from([
            "livecheck",
            "-X",
            "sasl.password=ab,cd=ef",
            "-X",
            " security.protocol =SASL_SSL",
        ])
        .unwrap();
        let pairs: Vec<_> = options
            .kafka_config("b:9092")
            .properties
            .into_iter()
            .collect();
        assert_eq!(
            pairs,
            [
                ("sasl.password".to_owned(), "ab,cd=ef".to_owned()),
                ("security.protocol".to_owned(), "SASL_SSL".to_owned())
            ]
        );
        assert_eq!(
            format!("{:?}", options.properties[0]),
            "sasl.password=<hidden>"
        );
    }

    #[test]
    fn the_environment_holds_one_property_per_line() {
        let properties =
            parse_properties_env("sasl.password=a,b\n\n# a comment\r\nsasl.username=u=v\n")
                .unwrap();
        let pairs: Vec<_> = properties
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(pairs, [("sasl.password", "a,b"), ("sasl.username", "u=v")]);
        let error = parse_properties_env("a=b\nhunter2").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn errors_never_repeat_a_secret() {
        for args in [
            &["livecheck", "-X", "hunter2"][..],
            &["livecheck", "-X", "=hunter2"],
            &["livecheck", "-X", "sasl.password=ab", "hunter2"],
            &["livecheck", "-X", "sasl.password=ab", "--", "hunter2"],
            &[
                "livecheck",
                "--alert-webhook",
                "ftp://hooks.example/T0/hunter2",
            ],
            &[
                "livecheck",
                "--alert-webhook",
                "https//hooks.example/T0/hunter2",
            ],
        ] {
            let error = Options::try_parse_from(args).unwrap_err();
            let line = one_line(&error);
            assert!(!line.contains("hunter2"), "{args:?}: {line}");
            assert!(!line.is_empty(), "{args:?}");
        }
        // Values that are no secret are still shown.
        let error = Options::try_parse_from(["livecheck", "--web-bind", "nowhere"]).unwrap_err();
        assert!(one_line(&error).contains("nowhere"));
    }

    #[test]
    fn mistakes_are_one_line_naming_the_flag() {
        let error = Options::try_parse_from(["livecheck", "--web-bind", "nowhere"]).unwrap_err();
        let line = one_line(&error);
        assert!(line.contains("--web-bind"), "{line}");
        assert!(!line.contains('\n'));
        let error =
            Options::try_parse_from(["livecheck", "--alert-webhook", "ftp://x/"]).unwrap_err();
        assert!(one_line(&error).contains("--alert-webhook"));
    }

    #[test]
    fn defaults_are_loopback_with_the_status_page_on() {
        let options = Options::try_parse_from(["livecheck"]).unwrap();
        assert_eq!(options.web_bind, DEFAULT_WEB_BIND.parse().unwrap());
        assert!(options.web_bind.ip().is_loopback());
        assert!(!options.no_web);
        assert!(options.alert_webhook.is_none());
    }
}
