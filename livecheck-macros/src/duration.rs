//! Durations in `#[case(...)]` options, checked at compile time.
//!
//! The grammar is the runtime's (`livecheck::parse_duration`): `"10s"`, `"1m30s"`, `"1m 30s"`,
//! `"250ms"`, `"2h"`, `"1d"`, or a plain number of seconds (`"3"`, `"0.5"`). An option may also be
//! an integer or float literal, read as seconds. Parsing here is exact decimal arithmetic on
//! nanoseconds, so `"0.1s"` is 100 ms, not whatever `0.1f64` rounds to.

use std::fmt;
use std::time::Duration;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Lit};

use crate::case::unwrap_group;

/// Units and how many nanoseconds each is; the same list as the runtime's parser.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("sec", NANOS_PER_SEC),
    ("secs", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("min", 60 * NANOS_PER_SEC),
    ("mins", 60 * NANOS_PER_SEC),
    ("h", 3600 * NANOS_PER_SEC),
    ("hr", 3600 * NANOS_PER_SEC),
    ("hrs", 3600 * NANOS_PER_SEC),
    ("d", 86_400 * NANOS_PER_SEC),
];

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Why a duration string does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DurationError {
    /// Nothing but whitespace.
    Empty,
    /// A component starts with something that is not a number.
    ExpectedNumber(String),
    /// A number is not a decimal like `10` or `1.5`.
    BadNumber(String),
    /// A number is followed by nothing (only a lone number means seconds).
    MissingUnit(String),
    /// A unit that is not one of [`UNITS`].
    UnknownUnit(String),
    /// More than `u64::MAX` nanoseconds (about 584 years).
    OutOfRange,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("it is empty"),
            DurationError::ExpectedNumber(found) => write!(f, "expected a number at `{found}`"),
            DurationError::BadNumber(number) => write!(f, "`{number}` is not a decimal number"),
            DurationError::MissingUnit(number) => write!(
                f,
                "`{number}` needs a unit (only a number on its own means seconds)"
            ),
            DurationError::UnknownUnit(unit) => {
                write!(f, "unknown unit `{unit}` (use ns, us, ms, s, m, h or d)")
            }
            DurationError::OutOfRange => f.write_str("it is too long (at most 584 years)"),
        }
    }
}

/// Parses a duration string: components like `1m` `30s` (optionally separated by whitespace), or
/// one plain number of seconds.
pub(crate) fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return scaled(s, NANOS_PER_SEC).and_then(from_nanos);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(DurationError::ExpectedNumber(rest.to_owned()));
        }
        let (number, after) = rest.split_at(number_len);
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(number.to_owned()));
        }
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;
        total = total
            .checked_add(scaled(number, scale)?)
            .ok_or(DurationError::OutOfRange)?;
        rest = after.trim_start();
    }
    from_nanos(total)
}

/// `number * scale`, exactly, where `number` is a decimal like `12`, `1.5`, `.5` or `2.`.
/// Digits below a nanosecond are dropped.
fn scaled(number: &str, scale: u128) -> Result<u128, DurationError> {
    let bad = || DurationError::BadNumber(number.to_owned());
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    for digit in int.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .ok_or(DurationError::OutOfRange)?;
    }
    nanos = nanos.checked_mul(scale).ok_or(DurationError::OutOfRange)?;
    // 18 fractional digits are finer than a nanosecond of the largest unit (a day is 8.64e13 ns),
    // and keep `fraction * scale` well inside u128.
    let (mut fraction, mut denominator) = (0u128, 1u128);
    for digit in frac.bytes().take(18) {
        fraction = fraction * 10 + u128::from(digit - b'0');
        denominator *= 10;
    }
    nanos
        .checked_add(fraction * scale / denominator)
        .ok_or(DurationError::OutOfRange)
}

fn from_nanos(nanos: u128) -> Result<Duration, DurationError> {
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| DurationError::OutOfRange)
}

/// Reads a duration option's value: a string in the grammar above, or a literal number of seconds.
pub(crate) fn duration_value(value: &Expr) -> syn::Result<Duration> {
    let expected = "expected a duration: a string such as \"10s\", \"1m30s\" or \"250ms\", \
                    or a number of seconds";
    match unwrap_group(value) {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => parse_duration(&s.value()).map_err(|reason| {
                syn::Error::new_spanned(
                    s,
                    format!(
                        "invalid duration {:?}: {reason}; expected e.g. \"10s\", \"1m30s\", \
                         \"250ms\" or a number of seconds",
                        s.value()
                    ),
                )
            }),
            Lit::Int(int) => scaled(int.base10_digits(), NANOS_PER_SEC)
                .and_then(from_nanos)
                .map_err(|reason| {
                    syn::Error::new_spanned(int, format!("invalid duration: {reason}"))
                }),
            Lit::Float(float) => scaled(float.base10_digits(), NANOS_PER_SEC)
                .and_then(from_nanos)
                .or_else(|_| {
                    // Exponent forms (`1e3`) are not plain decimals: read them as f64.
                    let secs: f64 = float.base10_parse()?;
                    Duration::try_from_secs_f64(secs).map_err(|_| {
                        syn::Error::new_spanned(float, "invalid duration: it is out of range")
                    })
                }),
            _ => Err(syn::Error::new_spanned(lit, expected)),
        },
        Expr::Unary(unary) if matches!(unary.op, syn::UnOp::Neg(_)) => Err(
            syn::Error::new_spanned(value, "a duration cannot be negative"),
        ),
        other => Err(syn::Error::new_spanned(other, expected)),
    }
}

/// `::core::time::Duration::from_nanos(N)`: const, and exact.
pub(crate) fn duration_tokens(d: Duration) -> TokenStream {
    let nanos = proc_macro2::Literal::u64_suffixed(
        u64::try_from(d.as_nanos()).expect("checked when parsed"),
    );
    quote!(::core::time::Duration::from_nanos(#nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Duration {
        parse_duration(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("1m 30s", Duration::from_secs(90)),
            ("250ms", Duration::from_millis(250)),
            ("2h", Duration::from_secs(7200)),
            ("1d", Duration::from_secs(86_400)),
            ("3", Duration::from_secs(3)),
            ("0.5", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("7ns", Duration::from_nanos(7)),
            ("3us", Duration::from_micros(3)),
            ("3µs", Duration::from_micros(3)),
            (" 10 s ", Duration::from_secs(10)),
            ("1h2m3s4ms", Duration::from_millis(3_723_004)),
            ("2 mins", Duration::from_secs(120)),
            (".5s", Duration::from_millis(500)),
            ("0", Duration::ZERO),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), want, "{input:?}");
        }
    }

    #[test]
    fn decimal_fractions_are_exact() {
        assert_eq!(ok("0.1"), Duration::from_millis(100));
        assert_eq!(ok("0.3s"), Duration::from_millis(300));
        assert_eq!(ok("1.000000001"), Duration::from_nanos(1_000_000_001));
        assert_eq!(ok("0.0000000001s"), Duration::ZERO);
        assert_eq!(ok("1.5d"), Duration::from_secs(129_600));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        let cases = [
            ("", DurationError::Empty),
            ("  ", DurationError::Empty),
            ("s", DurationError::ExpectedNumber("s".into())),
            ("-1", DurationError::ExpectedNumber("-1".into())),
            ("10x", DurationError::UnknownUnit("x".into())),
            ("ten", DurationError::ExpectedNumber("ten".into())),
            ("1m30", DurationError::MissingUnit("30".into())),
            ("1.2.3s", DurationError::BadNumber("1.2.3".into())),
            (".", DurationError::BadNumber(".".into())),
            ("10 seconds", DurationError::UnknownUnit("seconds".into())),
            ("99999999999d", DurationError::OutOfRange),
            (
                "999999999999999999999999999999999999999999s",
                DurationError::OutOfRange,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn reasons_read_well() {
        let e = parse_duration("10x").unwrap_err().to_string();
        assert_eq!(e, "unknown unit `x` (use ns, us, ms, s, m, h or d)");
        let e = parse_duration("1m30").unwrap_err().to_string();
        assert!(e.contains("`30` needs a unit"), "{e}");
    }

    fn value(tokens: &str) -> syn::Result<Duration> {
        duration_value(&syn::parse_str(tokens).unwrap())
    }

    #[test]
    fn option_values() {
        assert_eq!(value("\"1m30s\"").unwrap(), Duration::from_secs(90));
        assert_eq!(value("10").unwrap(), Duration::from_secs(10));
        assert_eq!(value("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(value("1e3").unwrap(), Duration::from_secs(1000));
        let e = value("\"10x\"").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid duration \"10x\": unknown unit `x`"),
            "{e}"
        );
        assert_eq!(value("1.5e1").unwrap(), Duration::from_secs(15));
        let e = value("-3").unwrap_err().to_string();
        assert_eq!(e, "a duration cannot be negative");
        let e = value("true").unwrap_err().to_string();
        assert!(e.starts_with("expected a duration"), "{e}");
        let e = value("ten_seconds").unwrap_err().to_string();
        assert!(e.starts_with("expected a duration"), "{e}");
    }

    #[test]
    fn tokens_are_exact_nanoseconds() {
        let tokens = duration_tokens(Duration::from_millis(1500)).to_string();
        assert_eq!(
            tokens,
            ":: core :: time :: Duration :: from_nanos (1500000000u64)"
        );
    }
}
