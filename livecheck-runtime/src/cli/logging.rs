//! The log on stderr: its default filter, its format, its colours.

use super::flags::LogFormat;

/// The log filter without `RUST_LOG`: livecheck at INFO, others at WARN, librdkafka's own log
/// off — it repeats every failed connection attempt of every client (30 lines in 10 s for one
/// unreachable broker); livecheck says what matters in its own words (`docs/operations.md`).
pub(crate) const DEFAULT_LOG_FILTER: &str =
    "warn,livecheck=info,librdkafka=off,rdkafka::client=off";

/// Logs to stderr, filtered by `RUST_LOG` (else [`DEFAULT_LOG_FILTER`]), in `format`.
pub(super) fn init_tracing(format: LogFormat) {
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
pub(super) fn use_colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}
