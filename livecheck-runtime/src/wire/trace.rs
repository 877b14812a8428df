//! W3C Trace Context: the trace a test belongs to, so a failed test links to the traces the
//! services it passed through already emit.
//!
//! Every test carries a [`TraceParent`] (and the vendor `tracestate` beside it when
//! one came in): in the `traceparent` / `tracestate` headers of its Kafka records and HTTP
//! requests, beside the `LiveCheck-Test-*` headers, and in its record and report
//! (`TestExecution::traceparent`, `TestReport::trace_id`).
//!
//! - **Where a trace starts.** A test triggered while a request with a `traceparent` is being
//!   handled (inside [`TestContextLayer`](crate::propagation::http::TestContextLayer) or
//!   [`with_trace`](crate::with_trace)) joins that trace: the test's parent is the request's
//!   span. Otherwise the trigger starts a new trace (random ids, sampled).
//! - **Read.** A Kafka record or HTTP request that carries a test carries its trace: the test
//!   read from its headers has it, and so does every signal, record and request sent for it.
//!   A header that is not a valid version-00 `traceparent` is ignored (logged at debug), as the
//!   specification asks.
//! - **Written unchanged.** livecheck passes the parent id on as it came: the spans of the next
//!   service become children of the last span that was exported, and the trace stays whole.
//!   With the `otel` feature and an endpoint configured, the worker also exports a span of its
//!   own per test run (`livecheck::otel`), a child of that same parent: a sibling of the
//!   services' spans, not their parent, since the test's records and requests were sent before
//!   the test ran.
//!
//! The format (<https://www.w3.org/TR/trace-context/#traceparent-header>):
//! `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase, ids not all zero.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The header carrying the trace and the parent span (`traceparent`).
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The header carrying vendor-specific trace data (`tracestate`), passed on as it came when it
/// is valid (see `valid_tracestate`).
pub(crate) const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` passed on (the specification's 32 members of ≤ 256 bytes could be
/// more, but "vendors SHOULD propagate at least 512 characters").
const MAX_TRACESTATE: usize = 512;

/// A W3C `traceparent`: trace id, parent (span) id and flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// A new trace: random trace and parent ids, sampled.
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        // Ids must not be all zero; a random draw of that is a 2^-64 event, redrawn anyway.
        while trace_id == [0; 16] {
            trace_id = rand::random();
        }
        while parent_id == [0; 8] {
            parent_id = rand::random();
        }
        TraceParent {
            trace_id,
            parent_id,
            flags: 0x01,
        }
    }

    /// The trace id, as 32 lowercase hex digits (what tracing backends search by).
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The parent (span) id, as 16 lowercase hex digits.
    pub fn parent_id(&self) -> String {
        hex(&self.parent_id)
    }

    /// Whether the caller sampled the trace (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The trace id and the parent id, as bytes.
    #[cfg(feature = "otel")]
    pub(crate) fn ids(&self) -> ([u8; 16], [u8; 8]) {
        (self.trace_id, self.parent_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// Why a `traceparent` value was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traceparent {value:?}: {why}")]
pub struct InvalidTraceParent {
    value: String,
    why: &'static str,
}

impl FromStr for TraceParent {
    type Err = InvalidTraceParent;

    /// Reads a `traceparent` as the specification says a receiver must: version `00` exactly as
    /// specified; a later version by its first four fields (it may append more after a `-`);
    /// version `ff`, uppercase hex and all-zero ids are invalid.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = |why| InvalidTraceParent {
            value: value.chars().take(80).collect(),
            why,
        };
        let bytes = value.trim().as_bytes();
        if bytes.len() < 55 {
            return Err(invalid("shorter than 55 characters"));
        }
        let version = parse_hex::<1>(&bytes[0..2]).ok_or_else(|| invalid("bad version"))?[0];
        match version {
            0xff => return Err(invalid("version ff is forbidden")),
            0x00 if bytes.len() != 55 => return Err(invalid("version 00 is 55 characters")),
            0x00 => {}
            _ if bytes.len() > 55 && bytes[55] != b'-' => {
                return Err(invalid("unknown version with a malformed tail"))
            }
            _ => {}
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(invalid("fields are not separated by '-'"));
        }
        let trace_id = parse_hex::<16>(&bytes[3..35]).ok_or_else(|| invalid("bad trace id"))?;
        let parent_id = parse_hex::<8>(&bytes[36..52]).ok_or_else(|| invalid("bad parent id"))?;
        let flags = parse_hex::<1>(&bytes[53..55]).ok_or_else(|| invalid("bad flags"))?[0];
        if trace_id == [0; 16] {
            return Err(invalid("the trace id is all zeros"));
        }
        if parent_id == [0; 8] {
            return Err(invalid("the parent id is all zeros"));
        }
        Ok(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }
}

impl Serialize for TraceParent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceParent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `value` is a `tracestate` worth passing on: a valid W3C list
/// (<https://www.w3.org/TR/trace-context-2/#tracestate-header>) with at least one member, and
/// at most `MAX_TRACESTATE` bytes (512, what the specification asks vendors to propagate).
///
/// - printable ASCII only (`0x20..=0x7e`): no tab, newline or other control character, nothing
///   beyond ASCII;
/// - at most 32 list-members separated by `,`, with optional spaces around each; empty members
///   are allowed (and not counted), as the specification says;
/// - each member `key=value`: the key a lowercase letter or a digit, then up to 255 of
///   `a-z 0-9 _ - * / @`; the value 1 to 256 characters of `0x20..=0x7e` but `,` and `=`, not
///   ending in a space;
/// - each key once.
///
/// A `tracestate` is another party's text carried on by every worker and service of a test:
/// what is not valid is dropped, never passed on (the `traceparent` beside it is kept).
pub(crate) fn valid_tracestate(value: &str) -> bool {
    if value.len() > MAX_TRACESTATE || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return false;
    }
    let mut keys: Vec<&str> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches(' ');
        if member.is_empty() {
            continue;
        }
        let Some((key, value)) = member.split_once('=') else {
            return false;
        };
        if !valid_key(key) || !valid_value(value) || keys.contains(&key) || keys.len() == 32 {
            return false;
        }
        keys.push(key);
    }
    !keys.is_empty()
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`,
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let first = bytes.first().copied();
    first.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.len() <= 256
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
        })
}

/// `value = 0*255(chr) nblk-chr`, `chr = %x20 / nblk-chr`,
/// `nblk-chr = %x21-2B / %x2D-3C / %x3E-7E` (printable ASCII but `,` and `=`).
fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes.last() != Some(&b' ')
        && bytes
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b',' && b != b'=')
}

/// Reads the trace of an incoming record or request from its headers (looked up
/// case-insensitively by `get`): `None` when it has no valid `traceparent`.
#[cfg_attr(not(any(feature = "http", feature = "kafka")), allow(dead_code))]
pub(crate) fn from_headers<'a>(
    get: impl Fn(&str) -> Option<&'a [u8]>,
) -> Option<(TraceParent, Option<Box<str>>)> {
    let raw = get(TRACEPARENT)?;
    let parsed = std::str::from_utf8(raw)
        .map_err(|_| "not UTF-8".to_owned())
        .and_then(|text| text.parse::<TraceParent>().map_err(|e| e.to_string()));
    match parsed {
        Ok(parent) => {
            // Not valid: dropped, the traceparent kept (W3C: "failure to parse tracestate MUST
            // NOT affect the parsing of traceparent").
            let state = get(TRACESTATE)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .map(|text| text.trim_matches(' '))
                .filter(|text| valid_tracestate(text))
                .map(Box::from);
            Some((parent, state))
        }
        Err(error) => {
            tracing::debug!(%error, "traceparent ignored");
            None
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// `N` bytes from `2 * N` lowercase hex digits.
fn parse_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_reads_and_writes_back_the_same() {
        let parent: TraceParent = VALID.parse().unwrap();
        assert_eq!(parent.to_string(), VALID);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.parent_id(), "00f067aa0ba902b7");
        assert!(parent.sampled());
        let json = serde_json::to_string(&parent).unwrap();
        assert_eq!(json, format!("\"{VALID}\""));
        assert_eq!(serde_json::from_str::<TraceParent>(&json).unwrap(), parent);
    }

    #[test]
    fn what_the_specification_rejects_is_rejected() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad:?} was read");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        let parent: TraceParent = later.parse().unwrap();
        assert_eq!(parent.to_string(), VALID, "written as version 00");
        assert!("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"
            .parse::<TraceParent>()
            .is_err());
    }

    #[test]
    fn new_traces_are_sampled_and_distinct() {
        let (a, b) = (TraceParent::new_root(), TraceParent::new_root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert!(a.sampled());
        assert_eq!(a.to_string().parse::<TraceParent>().unwrap(), a);
    }

    #[test]
    fn headers_are_read_case_insensitively_by_the_caller_and_bad_state_is_dropped() {
        let headers = [("traceparent", VALID), ("tracestate", "congo=t61rcWkgMzE")];
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_bytes())
        };
        let (parent, state) = from_headers(get).unwrap();
        assert_eq!(parent.to_string(), VALID);
        assert_eq!(state.as_deref(), Some("congo=t61rcWkgMzE"));
        let broken = |name: &str| (name == TRACEPARENT).then_some(&b"00-zz"[..]);
        assert!(from_headers(broken).is_none());
    }

    #[test]
    fn a_tracestate_follows_the_w3c_grammar() {
        let members = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // (the value, valid)
        let table = [
            ("congo=t61rcWkgMzE", true),
            ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true),
            (" rojo=1 , ,congo=2 ", true),
            ("0vendor=x", true),
            ("tenant@system=x", true),
            (
                "a_b-c*d/e=value with spaces and !\"#$%&'()*+-./:;<>?@[]^_`{|}~",
                true,
            ),
            ("k= leading space kept", true),
            ("", false),
            (" , ", false),
            ("a=1\nb=2", false),
            ("a=1\tb", false),
            ("a=\x1b[31m", false),
            ("a=café", false),
            ("Congo=x", false),
            ("_a=x", false),
            ("a.b=x", false),
            ("a=", false),
            ("=x", false),
            ("novalue", false),
            ("a=b=c", false),
            ("a=1,a=2", false),
            ("a=x\u{7f}", false),
        ];
        for (value, valid) in table {
            assert_eq!(valid_tracestate(value), valid, "{value:?}");
        }
        assert!(valid_tracestate(&members(32)));
        assert!(!valid_tracestate(&members(33)), "33 members");
        assert!(valid_tracestate(&format!("a={}", "x".repeat(256))));
        assert!(
            !valid_tracestate(&format!("a={}", "x".repeat(257))),
            "value of 257"
        );
        assert!(valid_tracestate(&format!("{}=x", "k".repeat(256))));
        assert!(
            !valid_tracestate(&format!("{}=x", "k".repeat(257))),
            "key of 257"
        );
        let long = format!("a={},b={}", "x".repeat(256), "y".repeat(252));
        assert_eq!(long.len(), 513);
        assert!(!valid_tracestate(&long), "513 bytes");
    }

    /// An invalid tracestate is dropped, the traceparent beside it kept.
    #[test]
    fn an_invalid_tracestate_is_dropped_and_the_traceparent_kept() {
        for state in ["a=1\nINFO forged line", "Bad=key", "a=1,a=2", "a=\x1b[31m"] {
            let headers = [("traceparent", VALID), ("tracestate", state)];
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.as_bytes())
            };
            let (parent, kept) = from_headers(get).expect("the traceparent is kept");
            assert_eq!(parent.to_string(), VALID);
            assert_eq!(kept, None, "{state:?}");
        }
        let headers = [("traceparent", VALID), ("tracestate", " rojo=1 ")];
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_bytes())
        };
        assert_eq!(from_headers(get).unwrap().1.as_deref(), Some("rojo=1"));
    }
}
