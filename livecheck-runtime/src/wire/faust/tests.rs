//! Faust records: the marker written and skipped, against what Faust writes and reads.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::*;
use crate::wire::codec::Codec;
use crate::wire::model::{SignalEvent, TestExecution};

/// `class Line(faust.Record, namespace="myapp.models.Line"): sku: str; qty: int`
#[crate::faust_record(ns = "myapp.models.Line")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: u32,
}

/// `class Order(faust.Record, namespace="myapp.models.Order")`, with a list of records and an
/// optional field.
#[crate::faust_record(ns = "myapp.models.Order")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    side: String,
    lines: Vec<Line>,
    note: Option<String>,
}

fn order() -> Order {
    Order {
        id: "o1".into(),
        side: "sell".into(),
        lines: vec![
            Line {
                sku: "a".into(),
                qty: 1,
            },
            Line {
                sku: "b".into(),
                qty: 2,
            },
        ],
        note: None,
    }
}

// What faust-streaming 0.15.3 writes, byte for byte (`Record.dumps(serializer="json")` of
// the records above; tests/faust/ runs the same classes against livecheck).
const FAUST_ORDER: &str = concat!(
    r#"{"id":"o1","side":"sell","lines":[{"sku":"a","qty":1,"__faust":{"ns":"myapp.models.Line"}},"#,
    r#"{"sku":"b","qty":2,"__faust":{"ns":"myapp.models.Line"}}],"note":null,"#,
    r#""__faust":{"ns":"myapp.models.Order"}}"#
);
const FAUST_SIGNAL: &str = concat!(
    r#"{"signal_name":"order_sent_to_db","case_name":"myapp.test_order","key":"o1","value":"#,
    r#"{"id":"o1","side":"sell","lines":[{"sku":"a","qty":1,"__faust":{"ns":"myapp.models.Line"}},"#,
    r#"{"sku":"b","qty":2,"__faust":{"ns":"myapp.models.Line"}}],"note":null,"#,
    r#""__faust":{"ns":"myapp.models.Order"}},"#,
    r#""__faust":{"ns":"faust.livecheck.models.SignalEvent"}}"#
);
const FAUST_TEST: &str = concat!(
    r#"{"id":"o1","case_name":"myapp.test_order","timestamp":"2026-11-24T22:11:29.940777Z","#,
    r#""test_args":[{"id":"o1","side":"sell","lines":[{"sku":"a","qty":1,"__faust":{"ns":"myapp.models.Line"}},"#,
    r#"{"sku":"b","qty":2,"__faust":{"ns":"myapp.models.Line"}}],"note":null,"__faust":{"ns":"myapp.models.Order"}},3],"#,
    r#""test_kwargs":{"order":{"id":"o1","side":"sell","lines":[{"sku":"a","qty":1,"__faust":{"ns":"myapp.models.Line"}},"#,
    r#"{"sku":"b","qty":2,"__faust":{"ns":"myapp.models.Line"}}],"note":null,"__faust":{"ns":"myapp.models.Order"}}},"#,
    r#""expires":"2026-11-24T22:11:29.940777Z","__faust":{"ns":"faust.livecheck.models.TestExecution"}}"#
);

#[test]
fn a_record_is_written_as_faust_writes_it() {
    assert_eq!(serde_json::to_string(&order()).unwrap(), FAUST_ORDER);
    assert_eq!(<Order as FaustRecord>::NS, "myapp.models.Order");
    let value = serde_json::to_value(order()).unwrap();
    assert_eq!(namespace_of(&value), Some("myapp.models.Order"));
    assert_eq!(namespace_of(&value["lines"][1]), Some("myapp.models.Line"));
}

#[test]
fn a_signal_value_and_test_arguments_are_written_as_faust_writes_them() {
    let signal = SignalEvent {
        signal_name: "order_sent_to_db".into(),
        case_name: "myapp.test_order".into(),
        key: "o1".into(),
        value: serde_json::to_value(order()).unwrap(),
    };
    let ours: Value = serde_json::from_slice(&Codec::Json.encode_signal(&signal)).unwrap();
    let faust: Value = serde_json::from_str(FAUST_SIGNAL).unwrap();
    assert_eq!(ours, faust);

    let t = Utc.with_ymd_and_hms(2026, 11, 24, 22, 11, 29).unwrap()
        + chrono::Duration::microseconds(940_777);
    let order = serde_json::to_value(order()).unwrap();
    let test = TestExecution {
        test_args: vec![order.clone(), json!(3)],
        test_kwargs: [("order".to_owned(), order)].into_iter().collect(),
        ..TestExecution::new("o1", "myapp.test_order", t, t)
    };
    let ours: Value = serde_json::from_slice(&Codec::Json.encode_test(&test)).unwrap();
    let faust: Value = serde_json::from_str(FAUST_TEST).unwrap();
    assert_eq!(ours, faust);
}

#[test]
fn what_faust_writes_reads_back_in_both_codecs() {
    let signal = Codec::decode_signal(FAUST_SIGNAL.as_bytes()).unwrap();
    assert_eq!(Order::deserialize(&signal.value).unwrap(), order());
    // The value travels on in bincode as JSON text: still a record.
    let again = Codec::decode_signal(&Codec::Bincode.encode_signal(&signal)).unwrap();
    assert_eq!(Order::deserialize(&again.value).unwrap(), order());

    let test = Codec::decode_test(FAUST_TEST.as_bytes()).unwrap();
    let arg: Order = crate::service::case::argument(&test, 0, "order").unwrap();
    assert_eq!(arg, order());
    let n: u32 = crate::service::case::argument(&test, 1, "n").unwrap();
    assert_eq!(n, 3);
    // A parameter Faust sent by name.
    let mut by_name = test.clone();
    by_name.test_args.clear();
    let kwarg: Order = crate::service::case::argument(&by_name, 0, "order").unwrap();
    assert_eq!(kwarg, order());
}

#[test]
fn the_marker_is_skipped_before_strict_or_catch_all_fields_see_it() {
    #[crate::faust_record(ns = "myapp.models.Strict")]
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        id: String,
    }
    #[crate::faust_record(ns = "myapp.models.Open")]
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Open {
        id: String,
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
    }

    let strict: Strict =
        serde_json::from_str(r#"{"id":"x","__faust":{"ns":"myapp.models.Strict"}}"#).unwrap();
    assert_eq!(strict.id, "x");
    let strict: Strict = serde_json::from_value(json!({"id": "x"})).unwrap();
    assert_eq!(strict.id, "x");
    assert!(serde_json::from_str::<Strict>(r#"{"id":"x","other":1}"#).is_err());

    let open: Open =
        serde_json::from_str(r#"{"id":"x","extra":5,"__faust":{"ns":"myapp.models.Open"}}"#)
            .unwrap();
    assert_eq!(open.rest, BTreeMap::from([("extra".to_owned(), json!(5))]));
    // Flattened: a map, marked at its end.
    assert_eq!(
        serde_json::to_string(&open).unwrap(),
        r#"{"id":"x","extra":5,"__faust":{"ns":"myapp.models.Open"}}"#
    );
}

#[test]
fn a_plain_type_reads_a_faust_record_and_compact_formats_carry_no_marker() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Plain {
        id: String,
        side: String,
    }
    let plain: Plain = serde_json::from_str(FAUST_ORDER).unwrap();
    assert_eq!((plain.id.as_str(), plain.side.as_str()), ("o1", "sell"));

    let bytes = bincode::serialize(&order()).unwrap();
    assert!(!bytes.windows(7).any(|w| w == b"__faust"));
    assert_eq!(bincode::deserialize::<Order>(&bytes).unwrap(), order());
}
