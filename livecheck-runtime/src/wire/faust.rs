//! Faust records: types that travel to and from Faust services and workers as `faust.Record`s.
//!
//! Faust writes every record with a marker naming its class, nested inside the object, last:
//!
//! ```json
//! {"id": "o1", "side": "sell", "__faust": {"ns": "myapp.models.Order"}}
//! ```
//!
//! and a Faust case gets a record instance (not a plain dict) for a signal value or a test
//! argument only when that marker is there and names a registered class
//! (`faust.models.base.maybe_model`). Mark a Rust type with
//! [`#[livecheck::faust_record(ns = "...")]`](macro@crate::faust_record), placed above its
//! `#[derive(Serialize, Deserialize)]`:
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! /// `class Order(faust.Record, namespace="myapp.models.Order")` on the Faust side.
//! #[livecheck::faust_record(ns = "myapp.models.Order")]
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Order {
//!     id: String,
//!     side: String,
//! }
//!
//! let order = Order { id: "o1".into(), side: "sell".into() };
//! let json = serde_json::to_string(&order).unwrap();
//! assert_eq!(json, r#"{"id":"o1","side":"sell","__faust":{"ns":"myapp.models.Order"}}"#);
//! assert_eq!(serde_json::from_str::<Order>(&json).unwrap(), order);
//! ```
//!
//! - **Writing**: in human-readable formats (JSON: the signal values and test arguments of both
//!   codecs) the record ends with `"__faust": {"ns": NS}`, as Faust writes it; a record inside a
//!   record carries its own. Compact formats (bincode) get no marker.
//! - **Reading**: the marker is skipped before the fields are read, so `deny_unknown_fields` and a
//!   `#[serde(flatten)]` catch-all see only the record's fields. A type that is not marked reads
//!   Faust's records too, as long as it does not deny unknown fields (serde ignores them by
//!   default).
//!
//! Faust builds the instance from the fields it knows and keeps the others
//! (`faust.models.record.Record.from_data`, `__strict__=False`); a field it requires and that is
//! missing is a `TypeError` in the Faust case (an ERROR report). Give the Rust type every field the
//! Faust record requires, with the same names.
//!
//! A type whose serde impls are written by hand implements [`FaustRecord`] and wraps its
//! serializer in a [`RecordSerializer`] and its deserializer in a [`RecordDeserializer`].

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeStruct};
use serde::{Deserializer, Serializer};

#[doc(hidden)]
pub use serde as __serde;

/// The key of Faust's marker (Faust calls it the "blessed key").
pub const MARKER_KEY: &str = "__faust";

/// A type that is a Faust record of class `NS` (`faust.Record`'s `namespace`).
///
/// Implemented by [`#[livecheck::faust_record]`](macro@crate::faust_record).
pub trait FaustRecord {
    /// The Faust namespace of the record class, e.g. `"myapp.models.Order"`.
    const NS: &'static str;
}

/// The namespace a JSON value is marked with, if it is a Faust record.
///
/// ```
/// let value = serde_json::json!({"id": "o1", "__faust": {"ns": "myapp.models.Order"}});
/// assert_eq!(livecheck::faust::namespace_of(&value), Some("myapp.models.Order"));
/// assert_eq!(livecheck::faust::namespace_of(&serde_json::json!({"id": "o1"})), None);
/// ```
pub fn namespace_of(value: &serde_json::Value) -> Option<&str> {
    value.get(MARKER_KEY)?.get("ns")?.as_str()
}

/// A serializer that appends Faust's marker to the struct or map serialized through it.
///
/// Only the outermost struct or map is marked: the values inside it are serialized by the inner
/// serializer, each through its own `Serialize` (a nested record marks itself). Formats that are
/// not human-readable get no marker, so compact encodings stay positional.
#[derive(Debug)]
pub struct RecordSerializer<S> {
    inner: S,
    ns: &'static str,
}

impl<S> RecordSerializer<S> {
    /// Wraps `inner`, marking with namespace `ns`.
    pub fn new(inner: S, ns: &'static str) -> Self {
        RecordSerializer { inner, ns }
    }
}

/// `{"ns": NS}`.
struct Marker(&'static str);

impl Serialize for Marker {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut marker = serializer.serialize_struct(MARKER_KEY, 1)?;
        marker.serialize_field("ns", self.0)?;
        marker.end()
    }
}

/// The struct of a [`RecordSerializer`]: the fields, then the marker.
#[derive(Debug)]
pub struct RecordStruct<S> {
    inner: S,
    ns: Option<&'static str>,
}

impl<S: SerializeStruct> SerializeStruct for RecordStruct<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.inner.serialize_field(key, value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)
    }

    fn end(mut self) -> Result<S::Ok, S::Error> {
        if let Some(ns) = self.ns {
            self.inner.serialize_field(MARKER_KEY, &Marker(ns))?;
        }
        self.inner.end()
    }
}

/// The map of a [`RecordSerializer`] (a struct with a `#[serde(flatten)]` field serializes as a
/// map): the entries, then the marker.
#[derive(Debug)]
pub struct RecordMap<S> {
    inner: S,
    ns: Option<&'static str>,
}

impl<S: SerializeMap> SerializeMap for RecordMap<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), S::Error> {
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), S::Error> {
        self.inner.serialize_value(value)
    }

    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        self.inner.serialize_entry(key, value)
    }

    fn end(mut self) -> Result<S::Ok, S::Error> {
        if let Some(ns) = self.ns {
            self.inner.serialize_entry(MARKER_KEY, &Marker(ns))?;
        }
        self.inner.end()
    }
}

/// Forwards `Serializer` methods to the inner serializer unchanged.
macro_rules! forward_serialize {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(
            fn $method(self, $($arg: $ty),*) -> Result<$ret, S::Error> {
                self.inner.$method($($arg),*)
            }
        )*
    };
}

impl<S: Serializer> Serializer for RecordSerializer<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = S::SerializeTupleVariant;
    type SerializeMap = RecordMap<S::SerializeMap>;
    type SerializeStruct = RecordStruct<S::SerializeStruct>;
    type SerializeStructVariant = S::SerializeStructVariant;

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let ns = self.inner.is_human_readable().then_some(self.ns);
        let len = len + usize::from(ns.is_some());
        Ok(RecordStruct {
            inner: self.inner.serialize_struct(name, len)?,
            ns,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let ns = self.inner.is_human_readable().then_some(self.ns);
        let len = len.map(|len| len + usize::from(ns.is_some()));
        Ok(RecordMap {
            inner: self.inner.serialize_map(len)?,
            ns,
        })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(value)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_struct(name, value)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_variant(name, variant_index, variant, value)
    }

    fn collect_str<T: ?Sized + fmt::Display>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    forward_serialize! {
        serialize_bool(v: bool) -> S::Ok;
        serialize_i8(v: i8) -> S::Ok;
        serialize_i16(v: i16) -> S::Ok;
        serialize_i32(v: i32) -> S::Ok;
        serialize_i64(v: i64) -> S::Ok;
        serialize_i128(v: i128) -> S::Ok;
        serialize_u8(v: u8) -> S::Ok;
        serialize_u16(v: u16) -> S::Ok;
        serialize_u32(v: u32) -> S::Ok;
        serialize_u64(v: u64) -> S::Ok;
        serialize_u128(v: u128) -> S::Ok;
        serialize_f32(v: f32) -> S::Ok;
        serialize_f64(v: f64) -> S::Ok;
        serialize_char(v: char) -> S::Ok;
        serialize_str(v: &str) -> S::Ok;
        serialize_bytes(v: &[u8]) -> S::Ok;
        serialize_none() -> S::Ok;
        serialize_unit() -> S::Ok;
        serialize_unit_struct(name: &'static str) -> S::Ok;
        serialize_unit_variant(name: &'static str, variant_index: u32, variant: &'static str)
            -> S::Ok;
        serialize_seq(len: Option<usize>) -> S::SerializeSeq;
        serialize_tuple(len: usize) -> S::SerializeTuple;
        serialize_tuple_struct(name: &'static str, len: usize) -> S::SerializeTupleStruct;
        serialize_tuple_variant(
            name: &'static str, variant_index: u32, variant: &'static str, len: usize
        ) -> S::SerializeTupleVariant;
        serialize_struct_variant(
            name: &'static str, variant_index: u32, variant: &'static str, len: usize
        ) -> S::SerializeStructVariant;
    }
}

/// A deserializer that skips Faust's marker in the struct or map read through it.
///
/// As [`RecordSerializer`], it acts on the outermost struct or map only; a record without the
/// marker reads as well.
#[derive(Debug)]
pub struct RecordDeserializer<D> {
    inner: D,
}

impl<D> RecordDeserializer<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> Self {
        RecordDeserializer { inner }
    }
}

/// Forwards `Deserializer` methods to the inner deserializer, the visitor wrapped or not.
macro_rules! forward_deserialize {
    (wrap: $($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V)
                -> Result<V::Value, D::Error>
            {
                self.inner.$method($($arg,)* SkipMarker(visitor))
            }
        )*
    };
    (plain: $($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V)
                -> Result<V::Value, D::Error>
            {
                self.inner.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for RecordDeserializer<D> {
    type Error = D::Error;

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }

    forward_deserialize! { wrap:
        deserialize_any();
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
    }

    forward_deserialize! { plain:
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }
}

/// A visitor that reads maps without the marker; everything else reaches the inner visitor as is.
struct SkipMarker<V>(V);

/// Forwards `Visitor` methods taking a value.
macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.0.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for SkipMarker<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(formatter)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(WithoutMarker(map))
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(seq)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(data)
    }
}

/// The entries of a map, but the marker's.
struct WithoutMarker<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutMarker<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        // A seed is used once; it is lent to each attempt and taken only by a key that is not
        // the marker.
        let mut seed = Some(seed);
        loop {
            match self.0.next_key_seed(PeekKey(&mut seed))? {
                None => return Ok(None),
                Some(Some(key)) => return Ok(Some(key)),
                Some(None) => {
                    self.0.next_value::<IgnoredAny>()?;
                }
            }
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Reads a map key: `None` for the marker, else what the lent seed makes of it.
struct PeekKey<'a, K>(&'a mut Option<K>);

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for PeekKey<'_, K> {
    type Value = Option<K::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor(self.0, PhantomData))
    }
}

struct KeyVisitor<'a, 'de, K>(&'a mut Option<K>, PhantomData<&'de ()>);

impl<'de, K: DeserializeSeed<'de>> KeyVisitor<'_, 'de, K> {
    fn give<E: de::Error, D: Deserializer<'de, Error = E>>(
        self,
        key: D,
    ) -> Result<Option<K::Value>, E> {
        let seed = self
            .0
            .take()
            .ok_or_else(|| E::custom("map key read twice"))?;
        seed.deserialize(key).map(Some)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for KeyVisitor<'_, 'de, K> {
    type Value = Option<K::Value>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v == MARKER_KEY {
            return Ok(None);
        }
        self.give(v.into_deserializer())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        if v == MARKER_KEY {
            return Ok(None);
        }
        self.give(de::value::BorrowedStrDeserializer::new(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        if v == MARKER_KEY {
            return Ok(None);
        }
        self.give(v.into_deserializer())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        if v == MARKER_KEY.as_bytes() {
            return Ok(None);
        }
        self.give(de::value::BytesDeserializer::new(v))
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        if v == MARKER_KEY.as_bytes() {
            return Ok(None);
        }
        self.give(de::value::BorrowedBytesDeserializer::new(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.give(v.into_deserializer())
    }
}

#[cfg(test)]
mod tests {
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
}
