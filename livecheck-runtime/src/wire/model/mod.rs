//! The records that travel between services and workers: [`TestExecution`], [`SignalEvent`],
//! [`TestReport`] and the [`State`] of an outcome, with Faust LiveCheck's field names, and the four
//! `LiveCheck-Test-*` headers that carry a test across Kafka messages and HTTP requests.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::wire::trace::TraceParent;

/// One scheduled run of a case: who triggered it, with which arguments, until when it is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestExecution {
    /// Unique id of this test; the Kafka key of the execution and of every signal for it.
    pub id: String,
    /// Name of the case to run.
    pub case_name: String,
    /// When the test was triggered.
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    /// Positional arguments of the case fn.
    #[serde(default)]
    pub test_args: Vec<Value>,
    /// Named arguments of the case fn (Faust services may pass these instead of positional ones).
    #[serde(default)]
    pub test_kwargs: Map<String, Value>,
    /// After this instant the test is skipped instead of run, and its signals may be forgotten.
    #[serde(with = "timestamp")]
    pub expires: DateTime<Utc>,
    /// The trace the test belongs to (W3C `traceparent`, see [`crate::trace`]), also carried in
    /// the `traceparent` header of its Kafka records and HTTP requests. Not a field of Faust's
    /// record: written only when set; an invalid value read is dropped, not an error.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_traceparent"
    )]
    pub traceparent: Option<TraceParent>,
    /// Vendor trace data (`tracestate`) that came with `traceparent`, passed on as it came
    /// when it is valid W3C `tracestate` (an invalid value read is dropped).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_tracestate"
    )]
    pub tracestate: Option<Box<str>>,
    /// The test's signature where the deployment signs test context ([`crate::signing`]):
    /// HMAC-SHA256 of id, case, timestamp and expires, in hex, set by whoever triggered the
    /// test. Also the `LiveCheck-Test-Signature` header. Not a field of Faust's record: written
    /// only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Box<str>>,
}

/// A `tracestate` field that is not valid W3C `tracestate` is dropped: it would be copied into
/// the headers of every request the test makes.
fn lenient_tracestate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<str>>, D::Error> {
    let raw = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
    Ok(raw
        .filter(|text| crate::wire::trace::valid_tracestate(text))
        .map(|text| Box::from(&*text)))
}

/// A `traceparent` field that does not read is dropped (with a debug log): a test is not
/// refused for its trace.
fn lenient_traceparent<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TraceParent>, D::Error> {
    let raw = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
    Ok(raw.and_then(|text| match text.parse() {
        Ok(parent) => Some(parent),
        Err(error) => {
            tracing::debug!(%error, "traceparent field ignored");
            None
        }
    }))
}

impl TestExecution {
    /// The test `id` of the case `case_name`, triggered at `timestamp`, skipped from `expires`
    /// on, with no arguments, no trace and no signature (add any with struct update syntax).
    pub fn new(
        id: impl Into<String>,
        case_name: impl Into<String>,
        timestamp: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Self {
        TestExecution {
            id: id.into(),
            case_name: case_name.into(),
            timestamp,
            test_args: Vec::new(),
            test_kwargs: Map::new(),
            expires,
            traceparent: None,
            tracestate: None,
            signature: None,
        }
    }

    /// Whether the test is past its `expires` at `now`.
    pub(crate) fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires
    }

    /// The four `LiveCheck-Test-*` headers of this test, as `(name, value)` pairs.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (HEADER_TEST_ID, self.id.clone()),
            (HEADER_TEST_NAME, self.case_name.clone()),
            (HEADER_TEST_TIMESTAMP, header_time(self.timestamp)),
            (HEADER_TEST_EXPIRES, header_time(self.expires)),
        ]
    }

    /// Reads a test from `LiveCheck-Test-*` headers, looked up case-insensitively by `get`, with
    /// its trace from the `traceparent` and `tracestate` headers when they are valid.
    ///
    /// Returns `Ok(None)` when the message carries no test id (the common case: not a test), and
    /// an error when the headers are present but malformed.
    #[cfg_attr(not(any(feature = "http", feature = "kafka")), allow(dead_code))]
    pub(crate) fn from_headers<'a>(
        get: impl Fn(&str) -> Option<&'a [u8]>,
    ) -> Result<Option<TestExecution>, HeaderError> {
        let Some(id) = get(HEADER_TEST_ID) else {
            return Ok(None);
        };
        let text = |name: &'static str| -> Result<&'a str, HeaderError> {
            let raw = get(name).ok_or(HeaderError::Missing(name))?;
            std::str::from_utf8(raw).map_err(|_| HeaderError::NotUtf8(name))
        };
        let time = |name: &'static str| -> Result<DateTime<Utc>, HeaderError> {
            let raw = text(name)?;
            timestamp::parse(raw).ok_or_else(|| HeaderError::BadTimestamp(name, raw.to_owned()))
        };
        let id = std::str::from_utf8(id).map_err(|_| HeaderError::NotUtf8(HEADER_TEST_ID))?;
        let (traceparent, tracestate) = crate::wire::trace::from_headers(&get).unzip();
        // A signature that does not read is no signature: the test is then unsigned.
        let signature = get(HEADER_TEST_SIGNATURE)
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .filter(|text| text.len() <= 128)
            .map(Box::from);
        Ok(Some(TestExecution {
            traceparent,
            tracestate: tracestate.flatten(),
            signature,
            ..TestExecution::new(
                id,
                text(HEADER_TEST_NAME)?,
                time(HEADER_TEST_TIMESTAMP)?,
                time(HEADER_TEST_EXPIRES)?,
            )
        }))
    }
}

/// Header carrying the test id.
pub(crate) const HEADER_TEST_ID: &str = "LiveCheck-Test-Id";
/// Header carrying the case name.
pub(crate) const HEADER_TEST_NAME: &str = "LiveCheck-Test-Name";
/// Header carrying when the test was triggered (ISO 8601 with offset).
pub(crate) const HEADER_TEST_TIMESTAMP: &str = "LiveCheck-Test-Timestamp";
/// Header carrying when the test expires (ISO 8601 with offset).
pub(crate) const HEADER_TEST_EXPIRES: &str = "LiveCheck-Test-Expires";
/// Header carrying a test's signature, beside the `LiveCheck-Test-*` headers (HTTP and Kafka),
/// where the deployment signs test context ([`crate::signing`]).
#[cfg_attr(not(any(feature = "http", feature = "kafka")), allow(dead_code))]
pub(crate) const HEADER_TEST_SIGNATURE: &str = "LiveCheck-Test-Signature";

fn header_time(t: DateTime<Utc>) -> String {
    HeaderTime::new(t).as_str().to_owned()
}

/// A `LiveCheck-Test-*` timestamp: Python's `isoformat()` of an aware datetime, which Faust
/// sends and parses (`2026-11-24T22:11:29.940777+00:00`).
///
/// Written digit by digit on the stack: services attach these headers to every record they
/// send in a test, and chrono's `format` (which parses its pattern each time) made that cost
/// ~1.1 µs a record (docs/benchmarks.md).
pub(crate) enum HeaderTime {
    /// The usual 32 bytes.
    Fast([u8; 32]),
    /// A year outside 0..=9999 or a leap second: chrono writes those.
    Chrono(String),
}

impl HeaderTime {
    pub(crate) fn new(t: DateTime<Utc>) -> Self {
        use chrono::{Datelike, Timelike};
        let micros = t.nanosecond() / 1_000;
        if !(0..=9999).contains(&t.year()) || micros >= 1_000_000 {
            return HeaderTime::Chrono(t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string());
        }
        let mut out = *b"0000-00-00T00:00:00.000000+00:00";
        let mut put = |end: usize, mut value: u32, width: usize| {
            for at in (end - width..end).rev() {
                out[at] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(4, t.year() as u32, 4);
        put(7, t.month(), 2);
        put(10, t.day(), 2);
        put(13, t.hour(), 2);
        put(16, t.minute(), 2);
        put(19, t.second(), 2);
        put(26, micros, 6);
        HeaderTime::Fast(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits and punctuation were written.
            HeaderTime::Fast(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
            HeaderTime::Chrono(text) => text,
        }
    }
}

/// `LiveCheck-Test-*` headers that are present but cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum HeaderError {
    /// The test id is there but another header is missing.
    #[error("header {0} is missing")]
    Missing(&'static str),
    /// A header is not UTF-8.
    #[error("header {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A timestamp header does not parse as ISO 8601.
    #[error("header {0} is not an ISO 8601 timestamp: {1:?}")]
    BadTimestamp(&'static str, String),
}

/// A signal sent by a service for a test: "this stage happened, with this value".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEvent {
    /// The signal's name, as declared in `signal!` (lower case).
    pub signal_name: String,
    /// The case the signal belongs to.
    pub case_name: String,
    /// The test id the signal is for.
    pub key: String,
    /// The signal's value, JSON-encoded.
    #[serde(default)]
    pub value: Value,
}

/// The outcome of one test, or (with `test: None`) a suite-level event of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// The case reported on.
    pub case_name: String,
    /// The outcome.
    pub state: State,
    /// The test this report is for; `None` for suite reports (FAIL/STALL of the case, recovery).
    pub test: Option<TestExecution>,
    /// Seconds the test ran.
    pub runtime: Option<f64>,
    /// Seconds each signal took to arrive after its `wait` began (0 if it was already there).
    #[serde(default)]
    pub signal_latency: BTreeMap<String, f64>,
    /// Error text of a failing outcome.
    pub error: Option<String>,
    /// Backtrace or source location, where known.
    pub traceback: Option<String>,
    /// Which run of the test this is: 1 for the first; more when the test ran again because
    /// the worker running it died or lost its partition before the report was out. Not in
    /// Faust's record: written only when above 1, read as 1 when absent.
    #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
    /// The signal a TIMEOUT waited for in vain (its `wait` deadline passed, or the test
    /// reached `max_runtime` while waiting for it): what per-signal timeout counts are made of.
    /// Not in Faust's record: written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_signal: Option<String>,
    /// The trace id of the test (32 hex digits, from its `traceparent`): what to search the
    /// tracing backend for. Not in Faust's record: written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

fn first_attempt() -> u32 {
    1
}

// `&u32`: the signature serde's `skip_serializing_if` calls.
#[allow(clippy::trivially_copy_pass_by_ref)]
pub(crate) fn is_first_attempt(attempt: &u32) -> bool {
    *attempt <= 1
}

impl TestReport {
    /// Whether this report is about the case as a whole rather than one test.
    pub fn is_suite(&self) -> bool {
        self.test.is_none()
    }

    /// Shrinks the report until `size` of it is at most `limit` bytes, and says so in its
    /// error text; false if it already fit.
    ///
    /// A report must always get out: one larger than the broker's `message.max.bytes` was
    /// never published, its test never acknowledged, and after a restart every later test of
    /// its partition ran again. What goes first: the traceback and the error text
    /// (cut, with a marker), then large test arguments (replaced by a marker), then signal
    /// latencies beyond the first 100.
    ///
    /// Linear in the report's size: `size` is called twice (before, and to check the result)
    /// and each part is measured once; the size after each cut is reckoned from what the cut
    /// removed, not by serialising the report again (a report whose test id alone is too large
    /// kept a worker re-serialising it without end). What cannot be cut (the test id, the case
    /// name) may leave the result over `limit`: the caller then sends a minimal report.
    #[cfg_attr(not(feature = "worker"), allow(dead_code))]
    pub(crate) fn truncate_to(
        &mut self,
        limit: usize,
        size: impl Fn(&TestReport) -> usize,
    ) -> bool {
        let before = size(self);
        if before <= limit {
            return false;
        }
        let json = |text: &str| serde_json::to_string(text).map_or(text.len(), |j| j.len());
        // Room for the note and the markers; the rest is shared out.
        let budget = limit.saturating_sub(1024);
        let mut estimate = before;
        let mut latencies_cut = false;
        for pass in 0..3 {
            let text_budget = [budget / 4, budget / 16, 256][pass];
            for text in [&mut self.traceback, &mut self.error].into_iter().flatten() {
                if text.len() > text_budget {
                    let was = json(text);
                    cut(text, text_budget);
                    estimate = estimate.saturating_sub(was.saturating_sub(json(text)));
                }
            }
            if estimate <= limit {
                break;
            }
            let arg_budget = [budget / 8, budget / 64, 64][pass];
            if let Some(test) = &mut self.test {
                let removed = cut_arguments(test, arg_budget);
                estimate = estimate.saturating_sub(removed);
            }
            if estimate <= limit {
                break;
            }
            if !latencies_cut && self.signal_latency.len() > 100 {
                latencies_cut = true;
                let dropped: Vec<String> = self.signal_latency.keys().skip(100).cloned().collect();
                for name in &dropped {
                    if let Some(seconds) = self.signal_latency.remove(name) {
                        // "name":0.123, — the name, the colon, the number, the comma.
                        let number = serde_json::to_string(&seconds).map_or(24, |n| n.len());
                        estimate = estimate.saturating_sub(json(name) + number + 2);
                    }
                }
                tracing::debug!(
                    dropped = dropped.len(),
                    "signal latencies dropped from an oversized report"
                );
            }
            if estimate <= limit {
                break;
            }
        }
        let note = format!("[report truncated from {before} bytes to fit {limit}]");
        let error = self.error.take();
        self.error = Some(match &error {
            Some(error) => format!("{error} {note}"),
            None => note.clone(),
        });
        // The reckoning is close, not exact (escapes in markers): one look, and the last pass's
        // cuts on everything if it is still over.
        if size(self) > limit {
            let mut error = error;
            for text in [&mut self.traceback, &mut error].into_iter().flatten() {
                cut(text, 256);
            }
            self.error = Some(match error {
                Some(error) => format!("{error} {note}"),
                None => note,
            });
            if let Some(test) = &mut self.test {
                cut_arguments(test, 64);
            }
            let kept: BTreeMap<String, f64> = std::mem::take(&mut self.signal_latency)
                .into_iter()
                .take(100)
                .collect();
            self.signal_latency = kept;
        }
        true
    }
}

/// Replaces each argument of `test` whose JSON is larger than `budget` bytes by a marker;
/// returns about how many bytes of JSON that removed.
fn cut_arguments(test: &mut TestExecution, budget: usize) -> usize {
    let mut removed = 0;
    for value in test
        .test_args
        .iter_mut()
        .chain(test.test_kwargs.values_mut())
    {
        let len = value.to_string().len();
        if len > budget {
            *value = Value::String(format!("<truncated: {len} bytes of JSON>"));
            removed += len.saturating_sub(40);
        }
    }
    removed
}

/// Cuts `text` to about `budget` bytes (on a character boundary), with a marker.
fn cut(text: &mut String, budget: usize) {
    if text.len() <= budget {
        return;
    }
    let mut end = budget;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("… [{dropped} bytes cut]"));
}

/// The state of a test outcome or of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Nothing known yet.
    Init,
    /// The test returned `Ok`.
    Pass,
    /// A contract failed (`ensure!`, `fail!`, an assertion).
    Fail,
    /// Any other error or panic.
    Error,
    /// A signal did not arrive before its deadline.
    Timeout,
    /// The case received no test for `warn_stalled_after`.
    Stall,
    /// The test was not run: case inactive, or test expired.
    Skip,
}

impl State {
    /// Every state, in declaration order.
    pub(crate) const ALL: [State; 7] = [
        State::Init,
        State::Pass,
        State::Fail,
        State::Error,
        State::Timeout,
        State::Stall,
        State::Skip,
    ];

    /// The name used in our logs, API and metrics (`PASS`, `FAIL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Pass => "PASS",
            State::Fail => "FAIL",
            State::Error => "ERROR",
            State::Timeout => "TIMEOUT",
            State::Stall => "STALL",
            State::Skip => "SKIP",
        }
    }

    /// The string Faust writes on the wire: as [`as_str`](Self::as_str), except that a pass is
    /// `"111/***/111"` (Faust's `DO_NOT_SHARE`).
    pub(crate) fn wire_str(self) -> &'static str {
        match self {
            State::Pass => FAUST_PASS,
            other => other.as_str(),
        }
    }

    /// Whether this state counts as a failure for case health (FAIL, ERROR, TIMEOUT).
    pub(crate) fn is_failure(self) -> bool {
        matches!(self, State::Fail | State::Error | State::Timeout)
    }

    /// Whether this state is healthy (INIT, PASS, SKIP).
    pub fn is_ok(self) -> bool {
        matches!(self, State::Init | State::Pass | State::Skip)
    }
}

const FAUST_PASS: &str = "111/***/111";

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A string that names no [`State`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}")]
pub struct UnknownState(String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == FAUST_PASS {
            return Ok(State::Pass);
        }
        State::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.wire_str())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Timestamps as Faust writes them: `2026-11-24T22:11:29.940777Z`; reading accepts any RFC 3339
/// offset, and a naive time as UTC.
pub(crate) mod timestamp {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("bad timestamp {s:?}")))
    }

    pub(crate) fn parse(s: &str) -> Option<DateTime<Utc>> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(t.with_timezone(&Utc));
        }
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc())
    }
}

#[cfg(test)]
mod tests;
