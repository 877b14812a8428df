//! [`CliError`]: why the `livecheck` command stopped, and its exit code.

use std::process::ExitCode;

use crate::ops::alerts::AlertError;
use crate::ops::status::StatusError;
use crate::transport::TransportError;
use crate::wire::error::StartError;

/// Why the `livecheck` command stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
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
    /// The binary's set-up hook failed ([`SetupReady::fail`](super::SetupReady::fail)).
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
    Key(crate::wire::signing::KeyError),
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
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}
