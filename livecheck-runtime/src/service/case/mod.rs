//! Cases: their options, the descriptor `#[case]` registers, discovery of every registered
//! case at start-up (`registry`), triggering (`trigger`), and the fake requests a case's timer
//! sends ([`FakeRequest`]).

use std::fmt;
use std::time::Duration;

use crate::wire::error::ArgumentError;
use crate::wire::model::TestExecution;

mod fake;
pub(crate) mod registry;
pub(crate) mod trigger;

pub use fake::FakeRequest;
pub(crate) use registry::{FakeRequestFn, HooksFn, RunFn};

/// The bound on a test's run time when the case sets no `max_runtime`, unless `test_expires`
/// is shorter.
pub(crate) const DEFAULT_MAX_RUNTIME_BOUND: Duration = Duration::from_secs(3600);

/// Options of a case, with Faust LiveCheck's defaults ([`CaseOptions::DEFAULT`]).
///
/// `#[non_exhaustive]`: start from [`CaseOptions::DEFAULT`] (or a case's options) and set
/// fields, so a new option is not a breaking change.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CaseOptions {
    /// Probability that `maybe_trigger` schedules a test (0.5).
    pub probability: f64,
    /// Raise a STALL suite report when no test arrived for this long (30 min).
    pub warn_stalled_after: Duration,
    /// Inactive cases skip every test (true).
    pub active: bool,
    /// How long a test stays valid, and how long its signals are kept (3 h).
    pub test_expires: Duration,
    /// How often the fake request runs, if any (none).
    pub frequency: Option<Duration>,
    /// Write a test's log lines as they happen instead of as one block at its end (false).
    pub realtime_logs: bool,
    /// How many runtimes/latencies/intervals the medians are taken over (100).
    pub max_history: usize,
    /// Consecutive failures that make the case as a whole FAIL (30).
    pub max_consecutive_failures: u32,
    /// Total timeout of one HTTP request of the case's helpers (300 s).
    pub url_timeout_total: Option<Duration>,
    /// Connect timeout of the case's HTTP helpers (none).
    pub url_timeout_connect: Option<Duration>,
    /// Retries of a failing HTTP request before the service counts as down (10).
    pub url_error_retries: u32,
    /// First retry delay (0.5 s).
    pub url_error_delay_min: Duration,
    /// Factor the retry delay grows by (1.5).
    pub url_error_delay_backoff: f64,
    /// Largest retry delay (5 s).
    pub url_error_delay_max: Duration,
    /// After a suite FAIL or STALL report, the case's next suite report (its recovery) waits at
    /// least this long (60 s).
    pub state_transition_delay: Duration,
    /// Longest a test may run before it is stopped and reported TIMEOUT; `None` (the default)
    /// means `min(test_expires, 1 h)`: see [`CaseOptions::max_runtime`].
    pub max_runtime: Option<Duration>,
    /// Write a passing test's log at INFO when it ends, as Faust does (true); false writes it at
    /// DEBUG, for cases with high rates. A failing test's log is written at WARN either way.
    pub log_passes: bool,
}

impl CaseOptions {
    /// Faust LiveCheck's defaults.
    pub const DEFAULT: CaseOptions = CaseOptions {
        probability: 0.5,
        warn_stalled_after: Duration::from_secs(1800),
        active: true,
        test_expires: Duration::from_secs(3 * 3600),
        frequency: None,
        realtime_logs: false,
        max_history: 100,
        max_consecutive_failures: 30,
        url_timeout_total: Some(Duration::from_secs(300)),
        url_timeout_connect: None,
        url_error_retries: 10,
        url_error_delay_min: Duration::from_millis(500),
        url_error_delay_backoff: 1.5,
        url_error_delay_max: Duration::from_secs(5),
        state_transition_delay: Duration::from_secs(60),
        max_runtime: None,
        log_passes: true,
    };

    /// How long a test may run: the `max_runtime` option, or by default `test_expires` bounded
    /// by an hour (`DEFAULT_MAX_RUNTIME_BOUND`).
    ///
    /// A wait with no timeout lasts until its test expires, so `test_expires` is what a case
    /// written for Faust could take; past an hour a test is hung in practice, and holds one of
    /// the worker's `test_concurrency` slots (8 hung tests once held all 8 slots for ever).
    pub fn max_runtime(&self) -> Duration {
        self.max_runtime
            .unwrap_or_else(|| self.test_expires.min(DEFAULT_MAX_RUNTIME_BOUND))
    }
}

impl Default for CaseOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Everything the runtime knows about a case; `#[case]` builds one as a `static`.
#[derive(Clone, Copy)]
pub struct CaseDescriptor {
    /// Unique name (default `module_path::fn_name`).
    pub name: &'static str,
    /// Options.
    pub options: CaseOptions,
    /// Names of the case fn's parameters, in order (to read named arguments).
    pub params: &'static [&'static str],
    /// Runs one test.
    #[doc(hidden)]
    pub run: RunFn,
    /// Sends a fake request, every `frequency`.
    #[doc(hidden)]
    pub fake_request: Option<FakeRequestFn>,
    /// The case's hooks, if any.
    #[doc(hidden)]
    pub hooks: Option<HooksFn>,
    /// Source file of the definition.
    pub file: &'static str,
    /// Source line of the definition.
    pub line: u32,
}

impl fmt::Debug for CaseDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaseDescriptor")
            .field("name", &self.name)
            .field("options", &self.options)
            .field("params", &self.params)
            .field("fake_request", &self.fake_request.is_some())
            .field("hooks", &self.hooks.is_some())
            .field("at", &format_args!("{}:{}", self.file, self.line))
            .finish()
    }
}

/// A case as a worker runs it: its descriptor, with options possibly overridden at start-up
/// (e.g. by a test harness).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CaseConfig {
    /// What `#[case]` registered.
    pub descriptor: &'static CaseDescriptor,
    /// The options in effect.
    pub options: CaseOptions,
}

impl CaseConfig {
    /// The case's name.
    pub fn name(&self) -> &'static str {
        self.descriptor.name
    }
}

impl From<&'static CaseDescriptor> for CaseConfig {
    fn from(descriptor: &'static CaseDescriptor) -> Self {
        CaseConfig {
            descriptor,
            options: descriptor.options,
        }
    }
}

/// A test id generated on triggering: a new UUID (v4), as Faust's `trigger` makes one when it
/// is given no id (faust/livecheck/case.py, `trigger`: `id = id or uuid()`).
///
/// ```no_run
/// # #[livecheck::case] async fn test_order(side: String) {}
/// # async fn place() -> Result<(), livecheck::TriggerError> {
/// let test = test_order.trigger(livecheck::AutoId, "sell".to_owned()).await?;
/// assert_eq!(test.id.len(), 36);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AutoId;

/// What the `id` of a case's `trigger`, `maybe_trigger` and `maybe_trigger_scope` accepts: a
/// string (`&str`, `String`, ...), a UUID, or [`AutoId`] for a generated one. The id is made
/// only when a test is triggered (not when `maybe_trigger` draws no test).
pub trait IntoTestId {
    /// The id.
    fn into_test_id(self) -> String;
}

impl IntoTestId for AutoId {
    fn into_test_id(self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

impl IntoTestId for String {
    fn into_test_id(self) -> String {
        self
    }
}

impl IntoTestId for &str {
    fn into_test_id(self) -> String {
        self.to_owned()
    }
}

impl IntoTestId for &String {
    fn into_test_id(self) -> String {
        self.clone()
    }
}

impl IntoTestId for &mut str {
    fn into_test_id(self) -> String {
        (*self).to_owned()
    }
}

impl IntoTestId for Box<str> {
    fn into_test_id(self) -> String {
        self.into()
    }
}

impl IntoTestId for std::borrow::Cow<'_, str> {
    fn into_test_id(self) -> String {
        self.into_owned()
    }
}

impl IntoTestId for std::sync::Arc<str> {
    fn into_test_id(self) -> String {
        self.to_string()
    }
}

impl IntoTestId for uuid::Uuid {
    fn into_test_id(self) -> String {
        self.to_string()
    }
}

impl IntoTestId for &uuid::Uuid {
    fn into_test_id(self) -> String {
        self.to_string()
    }
}

/// Implemented by the handle `#[case]` generates; names the case and reaches its descriptor.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a livecheck case",
    label = "not a `#[livecheck::case]`",
    note = "signals are bound to an async fn marked `#[livecheck::case]`"
)]
pub trait Case {
    /// The case's name.
    const NAME: &'static str;
    /// The case's descriptor.
    fn descriptor(&self) -> &'static CaseDescriptor;
}

/// Reads parameter `index` (named `name`) of a test: the positional argument if there is one,
/// else the named one.
pub(crate) fn argument<T: serde::de::DeserializeOwned>(
    test: &TestExecution,
    index: usize,
    name: &'static str,
) -> Result<T, ArgumentError> {
    let value = test
        .test_args
        .get(index)
        .or_else(|| test.test_kwargs.get(name))
        .ok_or(ArgumentError::Missing { index, name })?;
    T::deserialize(value).map_err(|cause| ArgumentError::Decode { index, name, cause })
}
