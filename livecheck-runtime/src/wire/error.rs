//! Errors: what a case returns ([`CaseError`]) and what the library's calls return.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::panic::Location;
use std::time::Duration;

use crate::wire::duration::DurationError;

/// The result of a case fn: `Ok(())` passes; see [`CaseError`] for how errors are classified.
pub type Result<T = (), E = CaseError> = std::result::Result<T, E>;

/// Why a test did not pass; decides the report's state.
///
/// Any `std::error::Error` converts into it with `?` (as with `anyhow`), so a case can use `?` on
/// whatever its code calls; the conversion records where the `?` is (and a backtrace when
/// `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` enables them), for the report's traceback. A
/// [`WaitError::Timeout`] converts into [`CaseError::Timeout`] even through that generic
/// conversion, so `SIGNAL.wait().await?` reports TIMEOUT, not ERROR.
#[non_exhaustive]
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
        /// Where the case waited (its `wait()` call).
        location: Option<&'static Location<'static>>,
    },
    /// The case skipped its test ([`skip!`](crate::skip!)): the report is SKIP.
    Skipped {
        /// Why.
        reason: String,
        /// Where the case skipped.
        location: Option<&'static Location<'static>>,
    },
    /// Any other error: the report is ERROR.
    Error {
        /// The error.
        source: Box<dyn StdError + Send + Sync + 'static>,
        /// Where it became the case's error (the `?` that returned it), where known.
        location: Option<&'static Location<'static>>,
        /// A backtrace of that place, when `RUST_BACKTRACE`/`RUST_LIB_BACKTRACE` enable them.
        backtrace: Option<Box<Backtrace>>,
    },
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

    /// The case skips its test, for this reason (what [`skip!`](crate::skip!) builds).
    #[track_caller]
    pub fn skipped(reason: impl fmt::Display) -> Self {
        CaseError::Skipped {
            reason: reason.to_string(),
            location: Some(Location::caller()),
        }
    }

    /// An error with this message, located at the caller.
    #[track_caller]
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::error(message.to_string().into(), Location::caller())
    }

    fn error(
        source: Box<dyn StdError + Send + Sync + 'static>,
        location: &'static Location<'static>,
    ) -> Self {
        let backtrace = Backtrace::capture();
        CaseError::Error {
            source,
            location: Some(location),
            backtrace: (backtrace.status() == BacktraceStatus::Captured)
                .then(|| Box::new(backtrace)),
        }
    }

    /// Where the error arose, where known.
    pub fn location(&self) -> Option<&'static Location<'static>> {
        match self {
            CaseError::Failed { location, .. }
            | CaseError::Timeout { location, .. }
            | CaseError::Skipped { location, .. }
            | CaseError::Error { location, .. } => *location,
        }
    }

    /// The traceback a report carries: where the error arose, its chain of causes, and a
    /// backtrace when one was captured.
    pub(crate) fn traceback(&self) -> Option<String> {
        let mut text = String::new();
        if let Some(location) = self.location() {
            let _ = write!(
                text,
                "at {}:{}:{}",
                location.file(),
                location.line(),
                location.column()
            );
        }
        if let CaseError::Error {
            source, backtrace, ..
        } = self
        {
            let _ = write!(text, "\nerror: {source}");
            let mut cause = source.source();
            while let Some(error) = cause {
                let _ = write!(text, "\ncaused by: {error}");
                cause = error.source();
            }
            if let Some(backtrace) = backtrace {
                let _ = write!(text, "\nbacktrace:\n{backtrace}");
            }
        }
        let text = text.trim_start_matches('\n');
        (!text.is_empty()).then(|| text.to_owned())
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for CaseError {
    /// Located at the caller: with `?`, the `?` itself.
    #[track_caller]
    fn from(error: E) -> Self {
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(error);
        match boxed.downcast::<WaitError>() {
            Ok(wait) => match *wait {
                WaitError::Timeout {
                    signal,
                    waited,
                    location,
                } => CaseError::Timeout {
                    signal,
                    waited,
                    location: Some(location),
                },
                other => Self::error(Box::new(other), Location::caller()),
            },
            Err(other) => Self::error(other, Location::caller()),
        }
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Failed { message, .. } => f.write_str(message),
            CaseError::Timeout { signal, waited, .. } => write!(
                f,
                "signal {signal} did not arrive within {}",
                crate::wire::duration::humanize(*waited)
            ),
            CaseError::Skipped { reason, .. } => f.write_str(reason),
            CaseError::Error { source, .. } => {
                write!(f, "{source}")?;
                let mut cause = source.source();
                while let Some(error) = cause {
                    write!(f, ": {error}")?;
                    cause = error.source();
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
            CaseError::Timeout {
                signal,
                waited,
                location,
            } => f
                .debug_struct("Timeout")
                .field("signal", signal)
                .field("waited", waited)
                .field("location", location)
                .finish(),
            CaseError::Skipped { reason, location } => f
                .debug_struct("Skipped")
                .field("reason", reason)
                .field("location", location)
                .finish(),
            CaseError::Error {
                source, location, ..
            } => f
                .debug_struct("Error")
                .field("source", source)
                .field("location", location)
                .finish_non_exhaustive(),
        }
    }
}

/// The panic payload of livecheck's [`assert!`](crate::assertions::assert!),
/// [`assert_eq!`](crate::assertions::assert_eq!) and
/// [`assert_ne!`](crate::assertions::assert_ne!): a failed assertion, which the runner reports
/// FAIL.
///
/// A panic with any other payload is reported ERROR, whatever its message: the kind of the
/// failure decides, not its text. `#[livecheck::case]` rewrites the std assertion macros in a
/// case's body to livecheck's; helpers outside the body call `livecheck::assertions::assert!`
/// and friends themselves (docs/guide.md, "How an outcome is decided").
#[derive(Debug)]
pub struct AssertionFailed {
    message: String,
    location: &'static Location<'static>,
}

impl AssertionFailed {
    /// A failed assertion with this message, located at the caller.
    #[track_caller]
    pub fn new(message: String) -> Self {
        AssertionFailed {
            message,
            location: Location::caller(),
        }
    }

    /// What failed, as the std macro would say it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the assertion is.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    pub(crate) fn into_message(self) -> String {
        self.message
    }
}

impl fmt::Display for AssertionFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
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
#[non_exhaustive]
pub enum WaitError {
    /// The deadline passed first.
    #[error("signal {signal} did not arrive within {}", crate::wire::duration::humanize(*waited))]
    Timeout {
        /// The signal waited for.
        signal: String,
        /// How long the wait lasted.
        waited: Duration,
        /// Where the case waited (its `wait()` call).
        location: &'static Location<'static>,
    },
    /// `wait` was called outside a running test and with no explicit key.
    #[error("signal {0}: wait() outside a test needs an explicit key")]
    NoTest(String),
    /// The signal arrived but its value is not of the declared type.
    #[error("signal {signal}: value does not decode: {cause}")]
    Decode {
        /// The signal.
        signal: String,
        /// The decoding error (in the message; not a `source()`).
        cause: serde_json::Error,
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
    #[error("signal {signal}: value does not serialize: {cause}")]
    Encode {
        /// The signal.
        signal: String,
        /// The encoding error (in the message; not a `source()`).
        cause: serde_json::Error,
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
    #[error("case {case}: argument {param} does not serialize: {cause}")]
    Encode {
        /// The case.
        case: &'static str,
        /// The parameter.
        param: &'static str,
        /// The encoding error.
        cause: serde_json::Error,
    },
    /// No client is set up in this process.
    #[error("no livecheck client is installed in this process")]
    NoClient,
}

/// An argument of a test execution that does not fit the case fn's parameter. Plumbing: what
/// `livecheck::__private::argument` returns, turned into a [`CaseError`] by the case's run.
#[doc(hidden)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error("argument {name} (#{index}) does not decode: {cause}")]
    Decode {
        /// Position of the parameter.
        index: usize,
        /// Name of the parameter.
        name: &'static str,
        /// The decoding error.
        cause: serde_json::Error,
    },
}

/// Start-up errors of a worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The OpenTelemetry export is misconfigured (e.g. an endpoint that is not a URL).
    #[cfg(feature = "otel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
    #[error("OpenTelemetry export: {0}")]
    Otel(String),
}

/// The text of a panic's payload (a string, or livecheck's [`AssertionFailed`]).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(failed) = payload.downcast_ref::<AssertionFailed>() {
        failed.to_string()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// A transport failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The transport is shut down.
    #[error("transport closed")]
    Closed,
    /// Subscribed twice where only one subscription is allowed.
    #[error("transport already has a subscriber")]
    AlreadySubscribed,
    /// A value does not encode.
    #[error("encode: {0}")]
    Encode(String),
    /// The broker or client failed.
    #[error("{context}: {cause}")]
    Broker {
        /// What was being done.
        context: String,
        /// The client's error (in the message; not a `source()`).
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The broker refused a message larger than it accepts (`message.max.bytes`).
    #[error("message too large for the broker")]
    TooLarge,
    /// A configuration mistake found at start-up.
    #[error("configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the order does not decode")]
    struct Outer(#[source] std::num::ParseIntError);

    /// An ERROR's traceback has where the error arose, its chain of
    /// causes, and the backtrace when one was captured (`RUST_BACKTRACE`), as Faust's report
    /// carries `traceback.format_tb` (runners.py:202-206).
    #[test]
    fn an_error_s_traceback_has_its_place_its_causes_and_its_backtrace() {
        let cause = "x".parse::<u32>().unwrap_err();
        let line = line!() + 1;
        let error: CaseError = Outer(cause).into();
        let Some(traceback) = error.traceback() else {
            panic!("no traceback: {error:?}");
        };
        assert!(
            traceback.starts_with(&format!("at livecheck-runtime/src/wire/error.rs:{line}:")),
            "{traceback}"
        );
        assert!(traceback.contains(
            "\nerror: the order does not decode\ncaused by: invalid digit found in string"
        ));
        assert_eq!(
            error.to_string(),
            "the order does not decode: invalid digit found in string"
        );
        // Whatever the environment says here, a captured backtrace is written out.
        let with_backtrace = CaseError::Error {
            source: "x".into(),
            location: None,
            backtrace: Some(Box::new(Backtrace::force_capture())),
        };
        let traceback = with_backtrace.traceback().unwrap();
        assert!(
            traceback.starts_with("error: x\nbacktrace:\n"),
            "{traceback}"
        );
    }

    /// An error prints its cause or returns it as `source()`, never both (a report
    /// or a log that walks the chain would say it twice).
    #[test]
    fn no_error_prints_the_cause_it_also_returns_as_source() {
        fn check(error: &(dyn StdError + 'static)) {
            let text = error.to_string();
            if let Some(source) = error.source() {
                assert!(
                    !text.contains(&source.to_string()),
                    "{text:?} prints its source {source}"
                );
            }
        }
        let json = || serde_json::from_str::<u32>("x").unwrap_err();
        check(&WaitError::Decode {
            signal: "s".into(),
            cause: json(),
        });
        check(&SendError::Encode {
            signal: "s".into(),
            cause: json(),
        });
        check(&ArgumentError::Decode {
            index: 0,
            name: "a",
            cause: json(),
        });
        let broker = TransportError::Broker {
            context: "produce".into(),
            cause: "all brokers down".into(),
        };
        check(&broker);
        check(&SendError::Transport(TransportError::Closed));
        check(&StartError::Transport(broker));
        check(&crate::wire::codec::DecodeError::from(json()));
        check(&WaitError::from(
            crate::wire::duration::parse_duration("soon").unwrap_err(),
        ));
    }

    #[test]
    fn skips_timeouts_and_failures_say_where() {
        let failed = CaseError::failed("no");
        let skipped = CaseError::skipped("not today");
        for error in [failed, skipped] {
            let traceback = error.traceback().unwrap();
            assert!(
                traceback.starts_with("at livecheck-runtime/src/wire/error.rs:"),
                "{traceback}"
            );
        }
    }
}
