//! The `livecheck` command line: [`main`] for a binary of your own, [`Options`] for its flags.
//!
//! Every flag can also be set by an environment variable (`LIVECHECK_*`, named in `--help`; its
//! value is never shown there, as it may be a secret). A bad value is a one-line error naming the
//! flag, with exit code 2; the value of `-X`, `--alert-webhook` and `--otlp-endpoint` is never
//! repeated in an error.
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
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::model::TestReport;
use crate::status::{StatusError, StatusOptions, StatusServer};
use crate::transport::embedded::EmbeddedCluster;
use crate::transport::kafka::{KafkaConfig, KafkaTransport, Topics};
use crate::transport::TransportError;
use crate::worker::{Observer, Worker, WorkerSettings};

mod run_once;
pub use run_once::RunArgs;

/// The default `--web-bind`: loopback only; expose it on purpose.
pub const DEFAULT_WEB_BIND: &str = "127.0.0.1:9999";

/// Flags of a `livecheck` binary; each can also be set by the environment variable shown.
///
/// Its `Debug` hides what may be a secret: the value of each `-X` property, the webhook URL's
/// path, and the user, password, query and fragment of every other URL (`?<hidden>`).
#[derive(Clone, Parser)]
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
    /// How long the brokers given have to answer at start; then the error names them and why.
    #[arg(long, value_name = "DURATION", env = "LIVECHECK_CONNECT_TIMEOUT", default_value = "10s",
          value_parser = parse_positive_duration, help_heading = "Kafka", hide_env_values = true)]
    pub connect_timeout: Duration,
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
    /// Leave out the cases whose name matches this glob (after --case); repeatable, or
    /// comma-separated.
    #[arg(
        long,
        value_name = "GLOB",
        env = "LIVECHECK_EXCLUDE",
        value_delimiter = ',',
        global = true,
        help_heading = "Worker",
        hide_env_values = true
    )]
    pub exclude: Vec<String>,
    /// Tests older than this when they arrive are reported SKIP, not run: a backlog (a new
    /// --group-id on old topics, a long outage) says nothing about now. `off` runs them all.
    #[arg(long, value_name = "DURATION", env = "LIVECHECK_MAX_TEST_AGE", default_value = "10m",
          value_parser = parse_max_age, help_heading = "Worker", hide_env_values = true)]
    pub max_test_age: MaxTestAge,
    /// Tests running at once.
    #[arg(long, env = "LIVECHECK_TEST_CONCURRENCY", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Worker", hide_env_values = true)]
    pub test_concurrency: u32,
    /// Don't publish reports to the report topic (they are still logged).
    #[arg(long, env = "LIVECHECK_NO_REPORTS",
        value_parser = clap::builder::BoolishValueParser::new(), help_heading = "Worker", hide_env_values = true)]
    pub no_reports: bool,
    /// How far back a starting worker reads the report topic to rebuild the group's view
    /// (case health, suite state, tests already reported), e.g. "1h".
    #[arg(long, value_name = "DURATION", env = "LIVECHECK_REPORT_REPLAY", default_value = "1h",
          value_parser = parse_duration_arg, help_heading = "Worker", hide_env_values = true)]
    pub report_replay: Duration,
    /// Largest test id read from the topics, in bytes: a record with a longer one is skipped,
    /// counted and acknowledged (untrusted input).
    #[arg(long, value_name = "BYTES", env = "LIVECHECK_MAX_ID_BYTES", default_value_t = Limits::DEFAULT.max_id_bytes as u32,
          value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Worker", hide_env_values = true)]
    pub max_id_bytes: u32,
    /// Largest case or signal name read from the topics, in bytes (longer: skipped).
    #[arg(long, value_name = "BYTES", env = "LIVECHECK_MAX_NAME_BYTES", default_value_t = Limits::DEFAULT.max_name_bytes as u32,
          value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Worker", hide_env_values = true)]
    pub max_name_bytes: u32,
    /// Largest record read from the three topics, in bytes (larger: skipped before decoding).
    #[arg(long, value_name = "BYTES", env = "LIVECHECK_MAX_RECORD_BYTES", default_value_t = Limits::DEFAULT.max_record_bytes as u32,
          value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Worker", hide_env_values = true)]
    pub max_record_bytes: u32,
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
    /// Link each test on the status page to its trace: the tracing backend's URL of a trace,
    /// with `{trace_id}` where the id goes (e.g. `https://jaeger.example.com/trace/{trace_id}`).
    #[arg(long, value_name = "URL", env = "LIVECHECK_TRACE_URL", value_parser = parse_trace_url,
          help_heading = "Status page and alerts", hide_env_values = true)]
    pub trace_url: Option<String>,
    /// Export a span per test to this OpenTelemetry collector (OTLP/HTTP, protobuf): its base
    /// URL, e.g. http://otel-collector:4318 (spans go to /v1/traces under it). Without it, the
    /// standard OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT turn the
    /// export on; headers come from OTEL_EXPORTER_OTLP_HEADERS.
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    #[arg(long, value_name = "URL", env = "LIVECHECK_OTLP_ENDPOINT", value_parser = parse_otlp_endpoint,
          help_heading = "Status page and alerts", hide_env_values = true)]
    pub otlp_endpoint: Option<String>,
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

// By hand, to hide secrets: a new field goes here too (a test checks that every flag is shown).
impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::text::hide_url_secrets as shown;
        let mut d = f.debug_struct("Options");
        d.field("brokers", &self.brokers.as_deref().map(shown))
            // `Property`'s Debug shows its key only.
            .field("properties", &self.properties)
            .field("group_id", &self.group_id)
            .field("tests_topic", &self.tests_topic)
            .field("bus_topic", &self.bus_topic)
            .field("report_topic", &self.report_topic)
            .field("connect_timeout", &self.connect_timeout)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("codec", &self.codec)
            .field("cases", &self.cases)
            .field("exclude", &self.exclude)
            .field("max_test_age", &self.max_test_age)
            .field("test_concurrency", &self.test_concurrency)
            .field("no_reports", &self.no_reports)
            .field("report_replay", &self.report_replay)
            .field("max_id_bytes", &self.max_id_bytes)
            .field("max_name_bytes", &self.max_name_bytes)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("suite_reminder", &self.suite_reminder)
            .field("web_bind", &self.web_bind)
            .field("trace_url", &self.trace_url.as_deref().map(shown));
        #[cfg(feature = "otel")]
        d.field("otlp_endpoint", &self.otlp_endpoint.as_deref().map(shown));
        d.field("no_web", &self.no_web)
            // `WebhookConfig`'s Debug shows the URL without its path (`alerts::redacted`).
            .field("alert_webhook", &self.alert_webhook)
            .field("alert_retries", &self.alert_retries)
            .field("log_format", &self.log_format)
            .field("command", &self.command)
            .finish()
    }
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the worker (the default); with --once, run each selected case once and exit (CI).
    Run(RunArgs),
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

/// `--max-test-age`: a duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxTestAge(pub Option<Duration>);

fn parse_max_age(s: &str) -> Result<MaxTestAge, String> {
    if matches!(s.trim(), "off" | "none") {
        return Ok(MaxTestAge(None));
    }
    parse_positive_duration(s).map(|d| MaxTestAge(Some(d)))
}

pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match crate::duration::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
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

/// `--trace-url`: an http(s) URL with `{trace_id}` in it.
fn parse_trace_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    if !text.contains("{trace_id}") {
        return Err(format!(
            "{text:?} has no {{trace_id}} where the trace id goes, e.g. \
             https://jaeger.example.com/trace/{{trace_id}}"
        ));
    }
    Ok(text.to_owned())
}

/// `--otlp-endpoint`: an http(s) URL. The error does not repeat it (it may hold a password).
#[cfg(feature = "otel")]
fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid = (text.starts_with("http://") || text.starts_with("https://"))
        && text
            .parse::<http::Uri>()
            .is_ok_and(|uri| uri.host().is_some());
    if !valid {
        return Err("not an http(s) URL with a host, e.g. http://otel-collector:4318".to_owned());
    }
    Ok(text.to_owned())
}

fn parse_webhook(s: &str) -> Result<WebhookConfig, String> {
    WebhookConfig::new(s).map_err(|e| e.to_string())
}

impl Options {
    /// The OpenTelemetry export `--otlp-endpoint` asks for, else the one the `OTEL_*`
    /// variables name, if any.
    #[cfg(feature = "otel")]
    pub(crate) fn otlp_export(&self) -> Option<crate::otel::OtlpExport> {
        match &self.otlp_endpoint {
            Some(endpoint) => Some(crate::otel::OtlpExport::endpoint(endpoint)),
            None => crate::otel::OtlpExport::from_env(),
        }
    }

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
        config.limits = self.limits();
        config.codec = match self.codec {
            CodecArg::Bincode => Codec::Bincode,
            CodecArg::Json => Codec::Json,
        };
        config
    }

    /// The limits on what records may hold (`--max-id-bytes`, ...).
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::DEFAULT;
        limits.max_id_bytes = self.max_id_bytes as usize;
        limits.max_name_bytes = self.max_name_bytes as usize;
        limits.max_record_bytes = self.max_record_bytes as usize;
        limits
    }

    fn topics(&self) -> Topics {
        Topics {
            tests: self.tests_topic.clone(),
            bus: self.bus_topic.clone(),
            reports: self.report_topic.clone(),
        }
    }

    /// The registered cases that `--case` selects (all of them without it) and `--exclude`
    /// does not leave out, sorted by name. A glob that matches no case is an error (a typo
    /// would otherwise select nothing, or everything).
    pub fn selected_cases(&self) -> Result<Vec<&'static CaseDescriptor>, CliError> {
        let all = registered_cases()?;
        for (flag, globs) in [("--case", &self.cases), ("--exclude", &self.exclude)] {
            for glob in globs {
                if !all.iter().any(|c| glob_match(glob, c.name)) {
                    let names: Vec<_> = all.iter().map(|c| c.name).collect();
                    return Err(CliError::Usage(format!(
                        "{flag} {glob:?} matches no registered case (there are: {})",
                        names.join(", ")
                    )));
                }
            }
        }
        let selected: Vec<_> = all
            .into_iter()
            .filter(|c| self.cases.is_empty() || self.cases.iter().any(|g| glob_match(g, c.name)))
            .filter(|c| !self.exclude.iter().any(|g| glob_match(g, c.name)))
            .collect();
        if selected.is_empty() && !self.exclude.is_empty() {
            return Err(CliError::Usage(
                "--exclude leaves out every selected case".into(),
            ));
        }
        Ok(selected)
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
    Status(StatusError),
    /// The alert webhook could not start.
    #[error("--alert-webhook: {0}")]
    Alerts(AlertError),
    /// The tokio runtime could not start.
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(std::io::Error),
    /// No broker given answered at start.
    #[error(transparent)]
    Unreachable(#[from] crate::transport::reach::Unreachable),
    /// The binary's set-up hook failed ([`SetupReady::fail`]).
    #[error("{0}")]
    Setup(String),
    /// A `run --once` output file could not be written.
    #[error("cannot write {path}: {cause}")]
    Output {
        /// The file.
        path: std::path::PathBuf,
        /// Why (in the message; not a `source()`).
        cause: std::io::Error,
    },
    /// The test key (`LIVECHECK_TEST_KEY` / `LIVECHECK_TEST_KEY_FILE`) cannot be read.
    #[error("{0}")]
    Key(crate::signing::KeyError),
}

// By hand, not `#[from]`: the message carries the cause, so it is not also a `source()`.
impl From<StatusError> for CliError {
    fn from(error: StatusError) -> Self {
        CliError::Status(error)
    }
}

impl From<AlertError> for CliError {
    fn from(error: AlertError) -> Self {
        CliError::Alerts(error)
    }
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
/// is one line naming the flag — or the environment variable, when the bad value came from one
/// — and exit code 2. The properties of [`PROPERTIES_ENV`] come first in
/// [`Options::properties`], the `-X` flags after them (a flag wins over the same key).
pub fn parse_options<I, T>(args: I) -> Result<Options, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut options = Options::try_parse_from(&args).map_err(|error| {
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
                eprintln!("livecheck: {} (see --help)", describe(&error, &args));
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

/// The one line of a parse error; when the bad value came from an environment variable (its
/// flag is not on the command line), the variable leads, since that is what to fix.
fn describe(error: &clap::Error, args: &[std::ffi::OsString]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let line = one_line(error);
    let Some(ContextValue::String(invalid)) = error.get(ContextKind::InvalidArg) else {
        return line;
    };
    let flag = invalid.split_whitespace().next().unwrap_or_default();
    let command = <Options as clap::CommandFactory>::command();
    let all_args = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()));
    let found = all_args.into_iter().find(|arg| {
        arg.get_long().is_some_and(|l| flag == format!("--{l}"))
            || arg.get_short().is_some_and(|c| flag == format!("-{c}"))
    });
    let Some(arg) = found else { return line };
    let Some(variable) = arg.get_env() else {
        return line;
    };
    let on_command_line = args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&format!("{flag}=")) || (flag.len() == 2 && a.starts_with(flag))
    });
    if on_command_line || std::env::var_os(variable).is_none() {
        return line;
    }
    // `one_line` has already left out the values that may be secrets.
    format!("{}: {line}", variable.to_string_lossy())
}

/// The first line of clap's message, without its `error: ` prefix: it names the flag and the
/// problem; the usage and tips that follow are what `--help` is for. What the user typed is left
/// out where it may be a secret: the value of `-X`, `--alert-webhook` or `--otlp-endpoint`, and
/// a stray word (the tail of a value split by the shell, as in `-X sasl.password=ab cd`).
fn one_line(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = error.to_string();
    // The first paragraph: one line, or a line ending in ':' and the list under it (e.g. the
    // required flags missing).
    let paragraph: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    let mut line = line
        .strip_prefix("error: ")
        .unwrap_or(&line)
        .trim()
        .to_owned();
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let hidden = match error.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => context(ContextKind::InvalidArg)
            .filter(|arg| {
                arg.starts_with("-X")
                    || arg.starts_with("--alert-webhook")
                    || arg.starts_with("--otlp-endpoint")
            })
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
#[non_exhaustive]
pub struct Started {
    /// The bootstrap servers in use (the embedded broker's, if it was started).
    pub brokers: String,
    /// The embedded broker, if it was started (e.g. to create the topics a demo's services use).
    pub embedded: Option<Arc<EmbeddedCluster>>,
    /// The Kafka settings in use.
    pub kafka: KafkaConfig,
    /// The worker's client (also installed for the process).
    pub client: Client,
    /// Where the status page listens, unless `--no-web` (or `run --once`).
    pub status: Option<SocketAddr>,
    /// Hold the start of `run --once` until services are up, or fail the start (see
    /// [`SetupReady`]).
    pub ready: SetupReady,
}

/// How a set-up hook holds `run --once` until it is ready ([`SetupReady::defer`]), or fails
/// the start ([`SetupReady::fail`]: livecheck stops with the message and exit code 1).
///
/// The set-up counts as done once the hook's future has been polled once with no
/// [`SetupGuard`] held: a hook that does not defer is done at once. A hook that starts
/// services takes a guard before its first `.await`, and drops it (or calls
/// [`SetupGuard::done`]) once they listen:
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     livecheck::main_with(|started| async move {
///         let ready = started.ready.defer();
///         let listener = match tokio::net::TcpListener::bind("127.0.0.1:8080").await {
///             Ok(listener) => listener,
///             Err(error) => return ready.fail(format!("cannot listen on 127.0.0.1:8080: {error}")),
///         };
///         ready.done();
///         // serve on `listener`...
/// #       drop(listener);
///     })
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SetupReady(Arc<tokio::sync::watch::Sender<SetupState>>);

/// Where a set-up stands.
#[derive(Debug, Default)]
pub(crate) struct SetupState {
    polled: bool,
    guards: usize,
    failure: Option<String>,
}

/// Holds the set-up as not done while it lives (see [`SetupReady::defer`]).
#[derive(Debug)]
#[must_use = "the set-up is done when the guard is dropped"]
pub struct SetupGuard(Option<SetupReady>);

impl SetupReady {
    pub(crate) fn new() -> (SetupReady, SetupWatch) {
        let (tx, rx) = tokio::sync::watch::channel(SetupState::default());
        (SetupReady(Arc::new(tx)), SetupWatch(rx))
    }

    /// The set-up is not done until the guard is dropped (or [`SetupGuard::done`]); take it
    /// before the hook's first `.await`.
    pub fn defer(&self) -> SetupGuard {
        self.0.send_modify(|state| state.guards += 1);
        SetupGuard(Some(self.clone()))
    }

    /// The set-up failed: livecheck stops, printing `message`, with exit code 1.
    pub fn fail(&self, message: impl fmt::Display) {
        let message = message.to_string();
        self.0.send_modify(|state| {
            state.failure.get_or_insert(message);
        });
    }

    fn polled(&self) {
        self.0.send_modify(|state| state.polled = true);
    }
}

impl SetupGuard {
    /// The set-up is done (as dropping the guard says).
    pub fn done(self) {}

    /// The set-up failed ([`SetupReady::fail`]).
    pub fn fail(mut self, message: impl fmt::Display) {
        if let Some(ready) = self.0.take() {
            ready.fail(message);
            ready.0.send_modify(|state| state.guards -= 1);
        }
    }
}

impl Drop for SetupGuard {
    fn drop(&mut self) {
        if let Some(ready) = self.0.take() {
            ready.0.send_modify(|state| state.guards -= 1);
        }
    }
}

/// The other end of [`SetupReady`].
pub(crate) struct SetupWatch(tokio::sync::watch::Receiver<SetupState>);

impl SetupWatch {
    /// Done (Ok) or failed (Err).
    pub(crate) async fn outcome(&mut self) -> Result<(), String> {
        let state = self
            .0
            .wait_for(|s| s.failure.is_some() || (s.polled && s.guards == 0))
            .await;
        match state {
            Ok(state) => state.failure.clone().map_or(Ok(()), Err),
            Err(_) => Ok(()),
        }
    }

    /// Completes only if the set-up fails, with its message.
    async fn failure(mut self) -> String {
        match self.0.wait_for(|s| s.failure.is_some()).await {
            Ok(state) => state.failure.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }
}

/// Spawns the set-up hook; its first poll is noted (a hook that took no guard by then is done).
pub(crate) fn spawn_setup<F, Fut>(setup: F, started: Started) -> tokio::task::JoinHandle<()>
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ready = started.ready.clone();
    let mut hook = Box::pin(setup(started));
    let mut first = Some(ready);
    tokio::spawn(std::future::poll_fn(move |cx| {
        let poll = hook.as_mut().poll(cx);
        if let Some(ready) = first.take() {
            ready.polled();
        }
        poll
    }))
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
/// process for a demo); the hook's future is stopped at shutdown. With [`Started::ready`] the
/// hook holds `run --once` until its services are up, or fails the start.
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
        let once = match &options.command {
            Some(Command::Cases) => {
                list_cases(&cases);
                return Ok(ExitCode::SUCCESS);
            }
            Some(Command::Run(args)) if args.once => Some(args.clone()),
            _ => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        let result = match once {
            Some(args) => runtime.block_on(run_once::main(options, args, cases, setup)),
            None => runtime
                .block_on(run(options, cases, setup))
                .map(|()| ExitCode::SUCCESS),
        };
        // Tasks still running (a set-up hook's services) are not waited for.
        runtime.shutdown_timeout(Duration::from_secs(1));
        result
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("livecheck: {error}");
            error.exit_code()
        }
    }
}

/// Keeps the embedded broker, if one was started, until the process exits or the next run in
/// the same process replaces it (which stops this one): clients of the set-up hook's services
/// and the installed client outlive the run, and stopping the broker under them would only make
/// them log "all brokers down" on the way out. Held, not leaked: at most one at a time.
pub(crate) fn keep_for_the_process(embedded: Option<Arc<EmbeddedCluster>>) {
    static KEPT: std::sync::Mutex<Option<Arc<EmbeddedCluster>>> = std::sync::Mutex::new(None);
    if embedded.is_some() {
        let previous = std::mem::replace(
            &mut *KEPT.lock().unwrap_or_else(|e| e.into_inner()),
            embedded,
        );
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

async fn run<F, Fut>(
    options: Options,
    cases: Vec<&'static CaseDescriptor>,
    setup: F,
) -> Result<(), CliError>
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut signals = Signals::install();
    // A key that cannot be read stops the worker at start, not at its first test.
    crate::signing::TestKey::from_env().map_err(CliError::Key)?;
    let cases: Vec<CaseConfig> = cases.into_iter().map(CaseConfig::from).collect();
    let Connection { brokers, embedded } = connect(&options).await?;
    let mut kafka = options.kafka_config(&brokers);
    kafka.signal_replay = cases
        .iter()
        .map(|c| c.options.test_expires)
        .max()
        .unwrap_or(Duration::from_secs(3 * 3600));
    let transport = Arc::new(KafkaTransport::new(kafka.clone())?);
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
            metrics.track_alerts(webhook);
        }
    }
    #[cfg(feature = "otel")]
    if let Some(export) = options.otlp_export() {
        builder = builder.otlp(export);
    }
    let worker = builder.build()?;
    // Up before the topics are checked, so /healthz answers and /readyz says "not yet" while a
    // slow broker is reached; a port in use fails the start at once.
    let status = match metrics {
        Some(metrics) => {
            let mut status_options = StatusOptions::default();
            if let Some(template) = &options.trace_url {
                status_options = status_options.trace_url(template);
            }
            let server = StatusServer::start_with(
                options.web_bind,
                worker.handle(),
                metrics,
                status_options,
            )
            .await?;
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
    let setup_failed = Arc::new(std::sync::Mutex::new(None));
    let shutdown = {
        let setup_failed = setup_failed.clone();
        async move {
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
                    *setup_failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                }
            }
        }
    };
    let result = worker.run(shutdown).await;
    hook.abort();
    if let Some(webhook) = webhook {
        // A last alert (e.g. a recovery) raised during shutdown still goes out.
        tracing::info!("sending the alerts still queued (up to 10 s)");
        webhook.flush(Duration::from_secs(10)).await;
    }
    if let Some(status) = status {
        status.stop().await;
    }
    keep_for_the_process(embedded);
    result?;
    let failed = setup_failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match failed {
        Some(message) => Err(CliError::Setup(message)),
        None => Ok(()),
    }
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

/// The log filter without `RUST_LOG`: livecheck at INFO, others at WARN, librdkafka's own log
/// off — it repeats every failed connection attempt of every client (30 lines in 10 s for one
/// unreachable broker); livecheck says what matters in its own words (`docs/operations.md`).
pub const DEFAULT_LOG_FILTER: &str = "warn,livecheck=info,librdkafka=off,rdkafka::client=off";

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(use_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Colours only on a terminal, and not when `NO_COLOR` is set to anything but "" (no-color.org).
fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Ctrl-C (SIGINT) and SIGTERM, each one seen by [`Signals::next`]. The handlers are installed
/// when this is made, not when first awaited, so a signal during start-up is not lost (nor
/// fatal), and a second signal is seen however soon it follows the first.
pub(crate) struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(crate) fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal.
    pub(crate) async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn wait(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = wait(&mut self.term) => {}
                () = wait(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Prints one line per outcome to stdout.
pub(crate) struct ConsoleReports;

impl Observer for ConsoleReports {
    fn on_report(&self, report: &TestReport) {
        println!("{}", format_report_line(report));
    }
}

/// `PASS     orders::test_order  id=...  1.23ms`, or a suite line: always one line. The case
/// name, the test id and the error come from records (anyone may write them), so their control
/// characters are escaped (`\n`, `\u{1b}`): they cannot start a line of their own nor drive the
/// terminal.
pub(crate) fn format_report_line(report: &TestReport) -> String {
    use crate::text::Escaped;
    let error = report
        .error
        .as_deref()
        .map(|e| format!("  {}", Escaped(e)))
        .unwrap_or_default();
    match &report.test {
        Some(test) => format!(
            "{:<8} {}  id={}  {}{}",
            report.state.as_str(),
            Escaped(&report.case_name),
            Escaped(&test.id),
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
            Escaped(&report.case_name),
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
        let subcommands = command.get_subcommands().flat_map(|c| c.get_arguments());
        for arg in command.get_arguments().chain(subcommands) {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" || arg.is_global_set() {
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
        #[cfg(feature = "otel")]
        for args in [
            &["livecheck", "--otlp-endpoint", "ftp://me:hunter2@collector"][..],
            &["livecheck", "--otlp-endpoint", "hunter2"],
        ] {
            let error = Options::try_parse_from(args).unwrap_err();
            let line = one_line(&error);
            assert!(!line.contains("hunter2"), "{args:?}: {line}");
            assert!(line.contains("--otlp-endpoint"), "{args:?}: {line}");
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

    fn started(ready: SetupReady) -> Started {
        let kafka = KafkaConfig::new("127.0.0.1:1");
        Started {
            brokers: kafka.brokers.clone(),
            embedded: None,
            client: Client::new(crate::MemoryTransport::new()),
            kafka,
            status: None,
            ready,
        }
    }

    #[tokio::test]
    async fn a_set_up_is_done_after_its_first_poll_unless_it_defers_or_fails() {
        let within = Duration::from_secs(5);
        // A hook that holds `Started` for ever without deferring: done at once.
        let (ready, mut watch) = SetupReady::new();
        let hook = spawn_setup(
            |started| async move {
                let _kept = started;
                std::future::pending::<()>().await
            },
            started(ready),
        );
        let outcome = tokio::time::timeout(within, watch.outcome()).await;
        assert_eq!(outcome.expect("done at once"), Ok(()));
        hook.abort();

        // A hook that defers: done once it says so.
        let (ready, mut watch) = SetupReady::new();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let hook = spawn_setup(
            |started| async move {
                let guard = started.ready.defer();
                let _ = wait.await;
                guard.done();
                std::future::pending::<()>().await
            },
            started(ready),
        );
        let early = tokio::time::timeout(Duration::from_millis(200), watch.outcome()).await;
        assert!(early.is_err(), "not done while deferred");
        go.send(()).unwrap();
        let outcome = tokio::time::timeout(within, watch.outcome()).await;
        assert_eq!(outcome.expect("done"), Ok(()));
        hook.abort();

        // A hook that fails.
        let (ready, mut watch) = SetupReady::new();
        let hook = spawn_setup(
            |started| async move { started.ready.defer().fail("port taken") },
            started(ready),
        );
        let outcome = tokio::time::timeout(within, watch.outcome()).await;
        assert_eq!(outcome.expect("failed"), Err("port taken".to_owned()));
        let _ = hook.await;
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn once_flags_need_once_and_parse_durations() {
        let options =
            Options::try_parse_from(["livecheck", "run", "--once", "--timeout", "90s"]).unwrap();
        match options.command {
            Some(Command::Run(args)) => {
                assert!(args.once);
                assert_eq!(args.timeout, Duration::from_secs(90));
                assert_eq!(args.retries, 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(Options::try_parse_from(["livecheck", "run", "--junit", "x.xml"]).is_err());
        assert!(Options::try_parse_from(["livecheck", "run", "--once", "--timeout", "0"]).is_err());
        let options = Options::try_parse_from(["livecheck", "--max-test-age", "off"]).unwrap();
        assert_eq!(options.max_test_age, MaxTestAge(None));
        let options = Options::try_parse_from(["livecheck"]).unwrap();
        assert_eq!(
            options.max_test_age,
            MaxTestAge(Some(Duration::from_secs(600)))
        );
    }

    /// Every duration flag reads the one duration grammar (`livecheck-duration`).
    #[test]
    fn duration_flags_use_the_one_grammar() {
        let options = Options::try_parse_from([
            "livecheck",
            "--connect-timeout",
            "1 minute",
            "--max-test-age",
            "1h 30m",
            "--report-replay",
            "2 hours",
            "--suite-reminder",
            "0.5",
        ])
        .unwrap();
        assert_eq!(options.connect_timeout, Duration::from_secs(60));
        assert_eq!(
            options.max_test_age,
            MaxTestAge(Some(Duration::from_secs(5400)))
        );
        assert_eq!(options.report_replay, Duration::from_secs(7200));
        assert_eq!(options.suite_reminder, Some(Duration::from_millis(500)));
        for flag in [
            "--connect-timeout",
            "--max-test-age",
            "--report-replay",
            "--suite-reminder",
        ] {
            let error = Options::try_parse_from(["livecheck", flag, "1e3"]).unwrap_err();
            assert!(
                error.to_string().contains("invalid duration \"1e3\""),
                "{flag}: {error}"
            );
        }
        let options =
            Options::try_parse_from(["livecheck", "run", "--once", "--timeout", "3 mins"]).unwrap();
        match options.command {
            Some(Command::Run(args)) => assert_eq!(args.timeout, Duration::from_secs(180)),
            other => panic!("{other:?}"),
        }
    }

    /// A test from a record: anyone may write one, with any id.
    fn hostile_report(id: &str, error: &str) -> TestReport {
        let test: crate::TestExecution = serde_json::from_value(serde_json::json!({
            "id": id,
            "case_name": "orders::test_order",
            "timestamp": "2026-12-07T00:00:00Z",
            "expires": "2026-12-07T03:00:00Z",
        }))
        .unwrap();
        let mut report: TestReport = serde_json::from_value(serde_json::json!({
            "case_name": "orders::test_order",
            "state": "FAIL",
            "test": null,
            "runtime": 0.5,
            "error": error,
            "traceback": null,
        }))
        .unwrap();
        report.test = Some(test);
        report
    }

    #[test]
    fn a_report_line_stays_one_line_whatever_the_record_holds() {
        let report = hostile_report("x\n\x1b[31m", "lost\nPASS     orders::x  id=1\r\u{2028}");
        let line = format_report_line(&report);
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(
            line,
            "FAIL     orders::test_order  id=x\\n\\u{1b}[31m  500ms  \
             lost\\nPASS     orders::x  id=1\\r\\u{2028}"
        );
        let mut suite = hostile_report("t", "3 failures; last: a\x1b]0;title\x07");
        suite.test = None;
        let line = format_report_line(&suite);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.ends_with("last: a\\u{1b}]0;title\\u{7}"), "{line}");
    }

    /// `Debug` of the options hides secrets (issue 9, point 7) and shows every other field.
    #[test]
    fn the_options_debug_hides_secrets_and_shows_every_field() {
        #[allow(unused_mut)]
        let mut args = vec![
            "livecheck",
            "--brokers",
            "SASL_SSL://me:hunter2@broker:9092",
            "-X",
            "sasl.password=hunter2",
            "--alert-webhook",
            "http://hooks.example/services/T0/hunter2",
            "--trace-url",
            "https://jaeger.example/trace/{trace_id}?token=hunter2",
        ];
        #[cfg(feature = "otel")]
        args.extend([
            "--otlp-endpoint",
            "https://otel:hunter2@collector:4318/?api_key=hunter2",
        ]);
        let options = Options::try_parse_from(args).unwrap();
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sasl.password=<hidden>"), "{shown}");
        assert!(
            shown.contains("https://jaeger.example/trace/{trace_id}?<hidden>"),
            "{shown}"
        );
        #[cfg(feature = "otel")]
        assert!(
            shown.contains("https://collector:4318/?<hidden>"),
            "{shown}"
        );
        for arg in Options::command().get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(shown.contains(&format!("{id}: ")), "no {id} in {shown}");
        }
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
