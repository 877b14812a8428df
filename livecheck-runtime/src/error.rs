//! Errors: what a case returns ([`CaseError`]) and what the library's calls return.

use std::error::Error as StdError;
use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::duration::DurationError;
use crate::transport::TransportError;

/// The result of a case fn: `Ok(())` passes; see [`CaseError`] for how errors are classified.
pub type Result<T = (), E = CaseError> = std::result::Result<T, E>;

/// Why a test did not pass; decides the report's state.
///
/// Any `std::error::Error` converts into it with `?` (as with `anyhow`), so a case can use `?` on
/// whatever its code calls. A [`WaitError::Timeout`] converts into [`CaseError::Timeout`] even
/// through that generic conversion, so `SIGNAL.wait().await?` reports TIMEOUT, not ERROR.
pub enum CaseError {
    /// A contract did not hold (`ensure!`, `fail!`): the report is FAIL.
    Failed {
        /// What did not hold.
        message: String,
        /// Where in the case it was checked.
        location: Option<&'static Location<'static>>,
    },
    /// A signal did not arrive in time: the report is TIMEOUT.
    Timeout {
        /// The signal waited for.
        signal: String,
        /// How long the wait lasted.
        waited: Duration,
    },
    /// Any other error: the report is ERROR.
    Error(Box<dyn StdError + Send + Sync + 'static>),
}

impl CaseError {
    /// A failed contract with this message (what `ensure!` and `fail!` build), located at the
    /// caller.
    #[track_caller]
    pub fn failed(message: impl fmt::Display) -> Self {
        CaseError::Failed {
            message: message.to_string(),
            location: Some(Location::caller()),
        }
    }

    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        CaseError::Error(message.to_string().into())
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for CaseError {
    fn from(error: E) -> Self {
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(error);
        match boxed.downcast::<WaitError>() {
            Ok(wait) => match *wait {
                WaitError::Timeout { signal, waited } => CaseError::Timeout { signal, waited },
                other => CaseError::Error(Box::new(other)),
            },
            Err(other) => CaseError::Error(other),
        }
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Failed { message, .. } => f.write_str(message),
            CaseError::Timeout { signal, waited } => write!(
                f,
                "signal {signal} did not arrive within {}",
                crate::duration::humanize(*waited)
            ),
            CaseError::Error(error) => {
                write!(f, "{error}")?;
                let mut source = error.source();
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Failed { message, location } => f
                .debug_struct("Failed")
                .field("message", message)
                .field("location", location)
                .finish(),
            CaseError::Timeout { signal, waited } => f
                .debug_struct("Timeout")
                .field("signal", signal)
                .field("waited", waited)
                .finish(),
            CaseError::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

/// What a case fn may return: `()` or `Result<(), E>` with `E` convertible into [`CaseError`].
pub trait IntoCaseResult {
    /// Converts into the runtime's result.
    fn into_case_result(self) -> Result;
}

impl IntoCaseResult for () {
    fn into_case_result(self) -> Result {
        Ok(())
    }
}

impl<E: Into<CaseError>> IntoCaseResult for std::result::Result<(), E> {
    fn into_case_result(self) -> Result {
        self.map_err(Into::into)
    }
}

/// Why [`Signal::wait`](crate::Signal::wait) returned without a value.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed first.
    #[error("signal {signal} did not arrive within {}", crate::duration::humanize(*waited))]
    Timeout {
        /// The signal waited for.
        signal: String,
        /// How long the wait lasted.
        waited: Duration,
    },
    /// `wait` was called outside a running test and with no explicit key.
    #[error("signal {0}: wait() outside a test needs an explicit key")]
    NoTest(String),
    /// The signal arrived but its value is not of the declared type.
    #[error("signal {signal}: value does not decode: {source}")]
    Decode {
        /// The signal.
        signal: String,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// The timeout string does not parse.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// The worker's signal store is gone (the worker is shutting down).
    #[error("signal {0}: the worker is shutting down")]
    Closed(String),
}

/// Why [`Signal::send`](crate::Signal::send) failed.
///
/// A plain `.await` of `send` fails only on a mistake in the program (a value that does not
/// serialize, no client): a signal the transport cannot take is dropped and counted, never an
/// error on the service's path. [`Sending::delivered`](crate::signal::Sending::delivered) also
/// returns [`SendError::Transport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The value does not serialize.
    #[error("signal {signal}: value does not serialize: {source}")]
    Encode {
        /// The signal.
        signal: String,
        /// The encoding error.
        source: serde_json::Error,
    },
    /// No client is set up in this process (see [`Client::install`](crate::Client::install)).
    #[error("no livecheck client is installed in this process")]
    NoClient,
    /// The signal could not be queued or delivered (only when delivery is awaited).
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Why a `trigger` failed.
///
/// `trigger` and `maybe_trigger` fail only on a mistake in the program (an argument that does
/// not serialize, no client): a test the transport cannot take is dropped and counted, never an
/// error on the service's path (see [`Client`](crate::Client)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// An argument does not serialize.
    #[error("case {case}: argument {param} does not serialize: {source}")]
    Encode {
        /// The case.
        case: &'static str,
        /// The parameter.
        param: &'static str,
        /// The encoding error.
        source: serde_json::Error,
    },
    /// No client is set up in this process.
    #[error("no livecheck client is installed in this process")]
    NoClient,
}

/// An argument of a test execution that does not fit the case fn's parameter.
#[derive(Debug, thiserror::Error)]
pub enum ArgumentError {
    /// Neither a positional nor a named argument is there.
    #[error("argument {name} (#{index}) is missing")]
    Missing {
        /// Position of the parameter.
        index: usize,
        /// Name of the parameter.
        name: &'static str,
    },
    /// The argument does not decode as the parameter's type.
    #[error("argument {name} (#{index}) does not decode: {source}")]
    Decode {
        /// Position of the parameter.
        index: usize,
        /// Name of the parameter.
        name: &'static str,
        /// The decoding error.
        source: serde_json::Error,
    },
}

/// Start-up errors of a worker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Two registered cases share a name.
    #[error(
        "two cases are named {name:?}: at {first} and at {second}; give one a `name = \"...\"`"
    )]
    DuplicateCase {
        /// The name.
        name: String,
        /// Where the first is defined.
        first: String,
        /// Where the second is defined.
        second: String,
    },
    /// No case is registered or selected.
    #[error("no case to run: {0}")]
    NoCases(String),
    /// The transport could not start.
    #[error(transparent)]
    Transport(#[from] TransportError),
}
