//! Encoding of executions, signals and reports on the wire.
//!
//! - `json`: Faust LiveCheck's records, field for field, each object carrying
//!   `"__faust": {"ns": "faust.livecheck.models.<Record>"}`, so Faust services and livecheck
//!   workers can share topics.
//! - `bincode` (the default for executions and signals): compact. A bincode payload starts with
//!   the 4-byte magic `\0LC1`, so a decoder tells the two apart: every worker reads both,
//!   whatever it writes.
//!
//! Faust reads only JSON: a Faust worker fails on the first bincode message it consumes. A
//! service whose tests or signals reach Faust writes `json`
//! ([`KafkaConfig::with_codec`](crate::transport::kafka::KafkaConfig::with_codec)); a record
//! inside a value is marked as Faust marks it when its type is a
//! [`faust_record`](macro@crate::faust_record) (see [`crate::faust`]).
//!
//! Reports are always JSON: other tools read them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::wire::model::{SignalEvent, TestExecution, TestReport};

/// The encoding of executions and signals written; both are always read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// Compact binary (default). Faust cannot read it.
    #[default]
    Bincode,
    /// Faust LiveCheck's JSON: what a service whose tests or signals reach Faust must write.
    Json,
}

/// A codec name that is neither `bincode` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?} (use bincode or json)")]
pub struct UnknownCodec(String);

impl FromStr for Codec {
    type Err = UnknownCodec;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bincode" => Ok(Codec::Bincode),
            "json" => Ok(Codec::Json),
            other => Err(UnknownCodec(other.to_owned())),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Bincode => "bincode",
            Codec::Json => "json",
        })
    }
}

/// A payload that does not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Bad JSON, or JSON of another shape.
    #[error("json: {0}")]
    Json(serde_json::Error),
    /// Bad bincode.
    #[error("bincode: {0}")]
    Bincode(bincode::Error),
    /// Bincode with a bad timestamp.
    #[error("timestamp out of range")]
    Timestamp,
}

const MAGIC: &[u8; 4] = b"\0LC1";
const NS_TEST: &str = "faust.livecheck.models.TestExecution";
const NS_SIGNAL: &str = "faust.livecheck.models.SignalEvent";
const NS_REPORT: &str = "faust.livecheck.models.TestReport";

#[derive(Serialize, Deserialize)]
struct TestWire {
    id: String,
    case_name: String,
    timestamp_us: i64,
    expires_us: i64,
    test_args: String,
    test_kwargs: String,
}

#[derive(Serialize, Deserialize)]
struct SignalWire {
    signal_name: String,
    case_name: String,
    key: String,
    value: String,
}

// By hand, not `#[from]`: the message carries the cause, so it is not also a `source()`.
impl From<serde_json::Error> for DecodeError {
    fn from(error: serde_json::Error) -> Self {
        DecodeError::Json(error)
    }
}

impl From<bincode::Error> for DecodeError {
    fn from(error: bincode::Error) -> Self {
        DecodeError::Bincode(error)
    }
}

impl Codec {
    /// Encodes a test execution.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn encode_test(self, test: &TestExecution) -> Vec<u8> {
        match self {
            Codec::Json => faust_json(test, NS_TEST),
            Codec::Bincode => with_magic(&TestWire {
                id: test.id.clone(),
                case_name: test.case_name.clone(),
                timestamp_us: test.timestamp.timestamp_micros(),
                expires_us: test.expires.timestamp_micros(),
                test_args: Value::Array(test.test_args.clone()).to_string(),
                test_kwargs: Value::Object(test.test_kwargs.clone()).to_string(),
            }),
        }
    }

    /// Encodes a signal.
    pub fn encode_signal(self, signal: &SignalEvent) -> Vec<u8> {
        match self {
            Codec::Json => faust_json(signal, NS_SIGNAL),
            Codec::Bincode => with_magic(&SignalWire {
                signal_name: signal.signal_name.clone(),
                case_name: signal.case_name.clone(),
                key: signal.key.clone(),
                value: signal.value.to_string(),
            }),
        }
    }

    /// Decodes a test execution in either encoding.
    pub fn decode_test(payload: &[u8]) -> Result<TestExecution, DecodeError> {
        let mut test: TestExecution = match payload.strip_prefix(MAGIC) {
            Some(body) => {
                let wire: TestWire = bincode::deserialize(body)?;
                TestExecution {
                    id: wire.id,
                    case_name: wire.case_name,
                    timestamp: micros(wire.timestamp_us)?,
                    expires: micros(wire.expires_us)?,
                    test_args: serde_json::from_str(&wire.test_args)?,
                    test_kwargs: serde_json::from_str(&wire.test_kwargs)?,
                    traceparent: None,
                    tracestate: None,
                    signature: None,
                }
            }
            None => serde_json::from_slice(payload)?,
        };
        // A running test keeps its execution: the decoder's spare capacity (room for 4 values
        // when there is 1) would cost ~0.1 KB a test in flight (docs/benchmarks.md).
        test.test_args.shrink_to_fit();
        Ok(test)
    }

    /// Decodes a signal in either encoding.
    pub fn decode_signal(payload: &[u8]) -> Result<SignalEvent, DecodeError> {
        match payload.strip_prefix(MAGIC) {
            Some(body) => {
                let wire: SignalWire = bincode::deserialize(body)?;
                Ok(SignalEvent {
                    signal_name: wire.signal_name,
                    case_name: wire.case_name,
                    key: wire.key,
                    value: serde_json::from_str(&wire.value)?,
                })
            }
            None => Ok(serde_json::from_slice(payload)?),
        }
    }
}

/// Encodes a report as Faust's JSON (the test inside carries its marker too).
///
/// Written straight from the report's fields, once per report on the worker's hot path: built
/// as a `serde_json::Value` first (a map and a `String` per field, the test's arguments
/// copied), then marked and written, it cost more than the rest of the report's publishing.
pub fn encode_report(report: &TestReport) -> Vec<u8> {
    // Every field by name, no `..`: a field added to `TestReport` fails to compile here until
    // it is written.
    let TestReport {
        case_name,
        state,
        test,
        runtime,
        signal_latency,
        error,
        traceback,
        attempt,
        timed_out_signal,
        trace_id,
    } = report;
    let wire = ReportOut {
        case_name,
        state: *state,
        test: test.as_ref().map(|record| Marked {
            record,
            faust: Ns { ns: NS_TEST },
        }),
        runtime: *runtime,
        signal_latency,
        error,
        traceback,
        attempt: *attempt,
        timed_out_signal,
        trace_id,
        faust: Ns { ns: NS_REPORT },
    };
    serde_json::to_vec(&wire).expect("reports serialize")
}

/// A report as [`encode_report`] writes it: [`TestReport`]'s fields, in its order and with its
/// rules, and Faust's marker.
#[derive(Serialize)]
struct ReportOut<'a> {
    case_name: &'a str,
    state: crate::wire::model::State,
    test: Option<Marked<'a, TestExecution>>,
    runtime: Option<f64>,
    signal_latency: &'a std::collections::BTreeMap<String, f64>,
    error: &'a Option<String>,
    traceback: &'a Option<String>,
    #[serde(skip_serializing_if = "crate::wire::model::is_first_attempt")]
    attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    timed_out_signal: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: &'a Option<String>,
    #[serde(rename = "__faust")]
    faust: Ns,
}

/// A record with Faust's marker beside its fields.
#[derive(Serialize)]
struct Marked<'a, T> {
    #[serde(flatten)]
    record: &'a T,
    #[serde(rename = "__faust")]
    faust: Ns,
}

/// Faust's marker: `{"ns": "faust.livecheck.models.…"}`.
#[derive(Serialize)]
struct Ns {
    ns: &'static str,
}

/// Decodes a report.
pub fn decode_report(payload: &[u8]) -> Result<TestReport, DecodeError> {
    Ok(serde_json::from_slice(payload)?)
}

fn faust_json<T: Serialize>(record: &T, ns: &str) -> Vec<u8> {
    let mut value = serde_json::to_value(record).expect("records serialize");
    mark(&mut value, ns);
    value.to_string().into_bytes()
}

fn mark(value: &mut Value, ns: &str) {
    if let Value::Object(object) = value {
        let mut marker = Map::new();
        marker.insert("ns".into(), Value::from(ns));
        object.insert("__faust".into(), Value::Object(marker));
    }
}

fn with_magic<T: Serialize>(wire: &T) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    bincode::serialize_into(&mut out, wire).expect("wire records serialize");
    out
}

fn micros(us: i64) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::from_timestamp_micros(us).ok_or(DecodeError::Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::model::State;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn test() -> TestExecution {
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 22, 11, 29).unwrap()
            + chrono::Duration::microseconds(940_777);
        let mut kwargs = Map::new();
        kwargs.insert("side".into(), "sell".into());
        TestExecution {
            test_args: vec![Value::from(1), Value::from("x")],
            test_kwargs: kwargs,
            ..TestExecution::new("o1", "orders.test_order", t, t + chrono::Duration::hours(3))
        }
    }

    #[test]
    fn both_codecs_round_trip_and_decoders_read_both() {
        let signal = SignalEvent {
            signal_name: "order_sent_to_db".into(),
            case_name: "orders.test_order".into(),
            key: "o1".into(),
            value: serde_json::json!({"id": "o1", "side": "sell"}),
        };
        for codec in [Codec::Bincode, Codec::Json] {
            assert_eq!(
                Codec::decode_test(&codec.encode_test(&test())).unwrap(),
                test()
            );
            assert_eq!(
                Codec::decode_signal(&codec.encode_signal(&signal)).unwrap(),
                signal
            );
        }
    }

    #[test]
    fn json_is_faust_shaped() {
        let json: Value = serde_json::from_slice(&Codec::Json.encode_test(&test())).unwrap();
        assert_eq!(json["__faust"]["ns"], NS_TEST);
        assert_eq!(json["timestamp"], "2026-11-24T22:11:29.940777Z");
        assert_eq!(json["test_args"], serde_json::json!([1, "x"]));
        assert_eq!(json["test_kwargs"], serde_json::json!({"side": "sell"}));
        let report = TestReport {
            case_name: "c".into(),
            state: State::Pass,
            test: Some(test()),
            runtime: Some(0.25),
            signal_latency: BTreeMap::from([("s".to_string(), 0.01)]),
            error: None,
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
        };
        let json: Value = serde_json::from_slice(&encode_report(&report)).unwrap();
        assert_eq!(json["__faust"]["ns"], NS_REPORT);
        assert_eq!(json["test"]["__faust"]["ns"], NS_TEST);
        assert_eq!(json["state"], "111/***/111");
        assert_eq!(decode_report(&encode_report(&report)).unwrap(), report);
    }

    /// What the report's encoding was when it went through a `serde_json::Value`: the report's
    /// own serialization, then the markers.
    fn through_a_value(report: &TestReport) -> Value {
        let mut value = serde_json::to_value(report).unwrap();
        if let Some(test) = value.get_mut("test").filter(|t| t.is_object()) {
            mark(test, NS_TEST);
        }
        mark(&mut value, NS_REPORT);
        value
    }

    #[test]
    fn a_report_is_written_as_through_a_value_in_the_same_order() {
        let mut full = TestReport {
            case_name: "c\"\n".into(),
            state: State::Timeout,
            test: Some(test()),
            runtime: Some(10.5),
            signal_latency: BTreeMap::from([("a".to_string(), 0.5), ("b".to_string(), 1e-9)]),
            error: Some("signal b did not arrive".into()),
            traceback: Some("at x.rs:1:2".into()),
            attempt: 3,
            timed_out_signal: Some("b".into()),
            trace_id: Some("0af7651916cd43dd8448eb211c80319c".into()),
        };
        if let Some(test) = &mut full.test {
            test.traceparent = Some(crate::wire::trace::TraceParent::new_root());
        }
        let suite = TestReport {
            test: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
            error: None,
            traceback: None,
            runtime: None,
            ..full.clone()
        };
        for report in [full, suite] {
            let written = encode_report(&report);
            let parsed: Value = serde_json::from_slice(&written).unwrap();
            assert_eq!(parsed, through_a_value(&report));
            assert_eq!(decode_report(&written).unwrap(), report);
        }
    }

    #[test]
    fn codec_names() {
        assert_eq!("json".parse::<Codec>(), Ok(Codec::Json));
        assert_eq!("bincode".parse::<Codec>(), Ok(Codec::Bincode));
        assert_eq!(Codec::Json.to_string().parse::<Codec>(), Ok(Codec::Json));
        let error = "avro".parse::<Codec>().unwrap_err().to_string();
        assert_eq!(error, "unknown codec \"avro\" (use bincode or json)");
    }

    #[test]
    fn a_faust_record_decodes() {
        let faust = br#"{"id": "abc", "case_name": "examples.orders.test_order",
            "timestamp": "2026-11-24T22:11:29.940777Z", "test_args": [], "test_kwargs": {"side": "buy"},
            "expires": "2026-11-25T01:11:29.940777Z",
            "__faust": {"ns": "faust.livecheck.models.TestExecution"}}"#;
        let test = Codec::decode_test(faust).unwrap();
        assert_eq!(test.test_kwargs["side"], "buy");
        assert!(Codec::decode_test(b"\xff\x00garbage").is_err());
        assert!(Codec::decode_signal(b"\0LC1\x01").is_err());
    }
}
