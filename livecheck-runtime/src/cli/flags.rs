//! The flags of a `livecheck` binary: [`Options`], its subcommands ([`Command`]) and the flags
//! of `run` ([`RunArgs`]), as clap structs, each flag with its environment variable; and what
//! they describe (the Kafka settings, the limits on records).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[cfg(feature = "otel")]
use super::values::parse_otlp_endpoint;
use super::values::{
    parse_duration_arg, parse_max_age, parse_positive_duration, parse_property, parse_timeout,
    parse_trace_url, parse_webhook, MaxTestAge, Property,
};
use crate::ops::alerts::WebhookConfig;
use crate::transport::kafka::{KafkaConfig, Topics};
use crate::wire::codec::Codec;
use crate::wire::limits::Limits;

/// The default `--web-bind`: loopback only; expose it on purpose.
pub(crate) const DEFAULT_WEB_BIND: &str = "127.0.0.1:9999";

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

/// Flags of `livecheck run`.
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct RunArgs {
    /// Trigger each selected case once, wait for its report, print a summary and exit: 0 if
    /// every case passed, 1 otherwise (for CI).
    ///
    /// LIVECHECK_ONCE=true also makes `livecheck` with no subcommand a `run --once`.
    #[arg(long, env = "LIVECHECK_ONCE",
          value_parser = clap::builder::BoolishValueParser::new(), hide_env_values = true)]
    pub once: bool,
    /// With --once: write a JUnit XML report here.
    #[arg(
        long,
        value_name = "FILE",
        env = "LIVECHECK_JUNIT",
        requires = "once",
        hide_env_values = true
    )]
    pub junit: Option<PathBuf>,
    /// With --once: write the verdicts and every report (JSON, as on the report topic) here.
    #[arg(
        long,
        value_name = "FILE",
        env = "LIVECHECK_JSON",
        requires = "once",
        hide_env_values = true
    )]
    pub json: Option<PathBuf>,
    /// With --once: the whole run's time limit; cases without a verdict by then are TIMEOUT.
    #[arg(long, value_name = "DURATION", env = "LIVECHECK_TIMEOUT", default_value = "5m",
          value_parser = parse_timeout, requires = "once", hide_env_values = true)]
    pub timeout: Duration,
    /// With --once: run a failed case again up to N times; a case that passes on a retry is
    /// FLAKY.
    #[arg(
        long,
        value_name = "N",
        env = "LIVECHECK_RETRIES",
        default_value_t = 0,
        requires = "once",
        hide_env_values = true
    )]
    pub retries: u32,
    /// With --once: a FLAKY case fails the run (exit code 1) instead of a warning.
    #[arg(long, env = "LIVECHECK_FAIL_ON_FLAKY",
          value_parser = clap::builder::BoolishValueParser::new(), requires = "once", hide_env_values = true)]
    pub fail_on_flaky: bool,
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

impl Options {
    /// The OpenTelemetry export `--otlp-endpoint` asks for, else the one the `OTEL_*`
    /// variables name, if any.
    #[cfg(feature = "otel")]
    pub(crate) fn otlp_export(&self) -> Option<crate::worker::otel::OtlpExport> {
        match &self.otlp_endpoint {
            Some(endpoint) => Some(crate::worker::otel::OtlpExport::endpoint(endpoint)),
            None => crate::worker::otel::OtlpExport::from_env(),
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

    pub(crate) fn topics(&self) -> Topics {
        Topics {
            tests: self.tests_topic.clone(),
            bus: self.bus_topic.clone(),
            reports: self.report_topic.clone(),
        }
    }
}
