//! `#[livecheck::faust_record]` on records used as signal values and case arguments: nested
//! records, serde options, a send-only type, a renamed crate, under `#![deny(missing_docs)]`.
#![deny(missing_docs)]

extern crate livecheck as renamed_livecheck;

use serde::{Deserialize, Serialize};

/// A line of an order.
#[livecheck::faust_record(ns = "myapp.models.Line")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The article.
    pub sku: String,
}

/// An order.
#[livecheck::faust_record(ns = "myapp.models.Order")]
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Order {
    /// Its id.
    pub order_id: String,
    /// Its lines.
    pub lines: Vec<Line>,
}

/// Sent, never read.
#[renamed_livecheck::faust_record(ns = "myapp.models.Event", crate = ::renamed_livecheck)]
#[derive(Serialize)]
pub struct Event {
    /// A number.
    pub n: u64,
}

/// An order keeps its lines.
#[livecheck::case(name = "myapp.test_order")]
pub async fn test_order(order: Order) -> livecheck::Result {
    let placed = PLACED.wait().timeout("1s").await?;
    livecheck::ensure!(placed == order, "order changed to {placed:?}");
    Ok(())
}

livecheck::signal! {
    /// The order was placed.
    pub PLACED: Order for test_order;
}

fn main() {
    fn record<T: livecheck::faust::FaustRecord>() -> &'static str {
        T::NS
    }
    assert_eq!(record::<Order>(), "myapp.models.Order");
    assert_eq!(record::<Event>(), "myapp.models.Event");
    let order = Order {
        order_id: "o1".into(),
        lines: vec![Line { sku: "a".into() }],
    };
    let json = serde_json::to_string(&order).unwrap();
    assert_eq!(
        json,
        r#"{"orderId":"o1","lines":[{"sku":"a","__faust":{"ns":"myapp.models.Line"}}],"__faust":{"ns":"myapp.models.Order"}}"#
    );
    assert_eq!(serde_json::from_str::<Order>(&json).unwrap(), order);
    assert_eq!(serde_json::from_str::<Order>("{}").unwrap(), Order::default());
    let event = serde_json::to_string(&Event { n: 1 }).unwrap();
    assert_eq!(event, r#"{"n":1,"__faust":{"ns":"myapp.models.Event"}}"#);
}
