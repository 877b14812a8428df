//! The one duration grammar of livecheck.
//!
//! `#[livecheck::case(...)]` options (at compile time), `Wait::timeout("30s")`,
//! `livecheck::duration::parse_duration` and the command line's duration flags (at run time) all
//! parse with [`parse_duration`], so a duration copied from one place to another means the same
//! thing.
//!
//! # Grammar
//!
//! ```text
//! duration  = number                      ; a bare number: seconds
//!           | component { [ws] component }
//! component = number [ws] unit
//! number    = digits [ "." [digits] ] | "." digits     ; decimal: no sign, no exponent
//! unit      = ns | us | µs | ms
//!           | s | sec | secs | second | seconds
//!           | m | min | mins | minute | minutes
//!           | h | hr | hrs | hour | hours
//!           | d | day | days
//! ```
//!
//! - `"10s"`, `"10 s"`, `"10 secs"`, `"10 seconds"`, `"10"` and `"10.0"` are all ten seconds.
//! - Components add up: `"1h30m"`, `"1h 30m"`, `"1 hour 30 minutes"` (each needs its unit:
//!   `"1m30"` is an error).
//! - Units are lower case; whitespace around the whole string is ignored.
//! - Arithmetic is exact, in nanoseconds: `"0.1s"` is 100 ms, not what `0.1f64` rounds to.
//!   Digits finer than a nanosecond are dropped.
//! - Not accepted: a sign (`"-1s"`, `"+1s"`), an exponent (`"1e3"`), anything longer than
//!   `u64::MAX` nanoseconds (about 584 years).
//!
//! ```
//! use std::time::Duration;
//! use livecheck_duration::parse_duration;
//!
//! assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
//! assert_eq!(parse_duration("2 hours"), Ok(Duration::from_secs(7200)));
//! assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
//! assert!(parse_duration("1e3").is_err());
//! ```

use std::fmt;
use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Every unit and how many nanoseconds it is.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("sec", NANOS_PER_SEC),
    ("secs", NANOS_PER_SEC),
    ("second", NANOS_PER_SEC),
    ("seconds", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("min", 60 * NANOS_PER_SEC),
    ("mins", 60 * NANOS_PER_SEC),
    ("minute", 60 * NANOS_PER_SEC),
    ("minutes", 60 * NANOS_PER_SEC),
    ("h", 3600 * NANOS_PER_SEC),
    ("hr", 3600 * NANOS_PER_SEC),
    ("hrs", 3600 * NANOS_PER_SEC),
    ("hour", 3600 * NANOS_PER_SEC),
    ("hours", 3600 * NANOS_PER_SEC),
    ("d", 86_400 * NANOS_PER_SEC),
    ("day", 86_400 * NANOS_PER_SEC),
    ("days", 86_400 * NANOS_PER_SEC),
];

/// A string that is not a duration: the input and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    kind: DurationErrorKind,
}

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// A sign: durations are never negative, and `+` is not needed.
    Sign,
    /// A component starts with something that is not a number (the rest of the input).
    ExpectedNumber(String),
    /// A number is not a plain decimal like `10` or `1.5`.
    BadNumber(String),
    /// A number with an exponent, like `1e3`: write the number out.
    Exponent(String),
    /// A number in a compound duration has no unit (only a number on its own means seconds).
    MissingUnit(String),
    /// A unit that is not in the grammar.
    UnknownUnit(String),
    /// More than `u64::MAX` nanoseconds (about 584 years).
    OutOfRange,
}

impl DurationError {
    /// The string that did not parse, as given.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it did not parse.
    pub fn kind(&self) -> &DurationErrorKind {
        &self.kind
    }
}

impl fmt::Display for DurationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationErrorKind::Empty => f.write_str("it is empty"),
            DurationErrorKind::Sign => f.write_str("a duration has no sign"),
            DurationErrorKind::ExpectedNumber(found) => {
                write!(f, "expected a number at `{found}`")
            }
            DurationErrorKind::BadNumber(number) => {
                write!(f, "`{number}` is not a decimal number (such as 10 or 1.5)")
            }
            DurationErrorKind::Exponent(number) => write!(
                f,
                "`{number}` has an exponent; write the number out (such as 1000 or 0.001)"
            ),
            DurationErrorKind::MissingUnit(number) => write!(
                f,
                "`{number}` needs a unit (only a number on its own means seconds)"
            ),
            DurationErrorKind::UnknownUnit(unit) => write!(
                f,
                "unknown unit `{unit}` (use ns, us, ms, s, m, h, d, or sec, min, hour, day, \
                 spelled out)"
            ),
            DurationErrorKind::OutOfRange => f.write_str("it is too long (at most 584 years)"),
        }
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}", self.input, self.kind)
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration in the [grammar](crate#grammar): `"10s"`, `"1m30s"`, `"250 ms"`,
/// `"2 hours"`, `"1d"`, or a plain number of seconds (`"1.5"`).
///
/// # Errors
///
/// A [`DurationError`] naming the input and what is wrong with it.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    parse(input).map_err(|kind| DurationError {
        input: input.to_owned(),
        kind,
    })
}

/// Parses a decimal number of seconds (`"10"`, `"0.5"`): the digits of a number literal, as the
/// macros read `frequency = 10`. The same numbers as [`parse_duration`], without a unit.
///
/// # Errors
///
/// A [`DurationError`] when `number` is not a plain decimal or is out of range.
pub fn parse_seconds(number: &str) -> Result<Duration, DurationError> {
    scaled(number.trim(), NANOS_PER_SEC)
        .and_then(from_nanos)
        .map_err(|kind| DurationError {
            input: number.to_owned(),
            kind,
        })
}

fn parse(input: &str) -> Result<Duration, DurationErrorKind> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationErrorKind::Empty);
    }
    if s.starts_with(['-', '+']) {
        return Err(DurationErrorKind::Sign);
    }
    let is_number_char = |c: char| c.is_ascii_digit() || c == '.';
    let mut total: u128 = 0;
    let mut rest = s;
    let mut first = true;
    while !rest.is_empty() {
        let number_len = rest.find(|c| !is_number_char(c)).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(DurationErrorKind::ExpectedNumber(rest.to_owned()));
        }
        let (number, after) = rest.split_at(number_len);
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| is_number_char(c) || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if matches!(unit, "e" | "E" | "e-" | "E-" | "e+" | "E+")
            && after.starts_with(|c: char| c.is_ascii_digit())
        {
            let exponent_len = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            return Err(DurationErrorKind::Exponent(format!(
                "{number}{unit}{}",
                &after[..exponent_len]
            )));
        }
        let scale = if unit.is_empty() {
            // A lone number is seconds; in a compound, every number has its unit.
            if !(first && after.is_empty()) {
                return Err(DurationErrorKind::MissingUnit(number.to_owned()));
            }
            NANOS_PER_SEC
        } else {
            UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, scale)| *scale)
                .ok_or_else(|| DurationErrorKind::UnknownUnit(unit.to_owned()))?
        };
        total = total
            .checked_add(scaled(number, scale)?)
            .ok_or(DurationErrorKind::OutOfRange)?;
        rest = after.trim_start();
        first = false;
    }
    from_nanos(total)
}

/// `number * scale` nanoseconds, exactly, where `number` is a decimal like `12`, `1.5`, `.5` or
/// `2.`. Digits below a nanosecond are dropped.
fn scaled(number: &str, scale: u128) -> Result<u128, DurationErrorKind> {
    let bad = || DurationErrorKind::BadNumber(number.to_owned());
    if number.contains(['e', 'E']) {
        return Err(DurationErrorKind::Exponent(number.to_owned()));
    }
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
            .ok_or(DurationErrorKind::OutOfRange)?;
    }
    nanos = nanos
        .checked_mul(scale)
        .ok_or(DurationErrorKind::OutOfRange)?;
    // 18 fractional digits are finer than a nanosecond of the largest unit (a day is 8.64e13 ns)
    // and keep `fraction * scale` well inside u128.
    let (mut fraction, mut denominator) = (0u128, 1u128);
    for digit in frac.bytes().take(18) {
        fraction = fraction * 10 + u128::from(digit - b'0');
        denominator *= 10;
    }
    nanos
        .checked_add(fraction * scale / denominator)
        .ok_or(DurationErrorKind::OutOfRange)
}

fn from_nanos(nanos: u128) -> Result<Duration, DurationErrorKind> {
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| DurationErrorKind::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    use DurationErrorKind::*;

    const SEC: u64 = 1;
    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    /// The whole grammar: each input and what it is.
    #[test]
    fn accepted() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let table = [
            // A bare number is seconds.
            ("3", s(3)),
            ("0", Duration::ZERO),
            ("0.5", ms(500)),
            (".5", ms(500)),
            ("2.", s(2)),
            ("  10  ", s(10)),
            // Every unit, short and long.
            ("7ns", Duration::from_nanos(7)),
            ("3us", Duration::from_micros(3)),
            ("3µs", Duration::from_micros(3)),
            ("250ms", ms(250)),
            ("10s", s(10 * SEC)),
            ("10sec", s(10)),
            ("10secs", s(10)),
            ("1second", s(1)),
            ("10seconds", s(10)),
            ("2m", s(2 * MIN)),
            ("2min", s(2 * MIN)),
            ("2mins", s(2 * MIN)),
            ("1minute", s(MIN)),
            ("2minutes", s(2 * MIN)),
            ("2h", s(2 * HOUR)),
            ("2hr", s(2 * HOUR)),
            ("2hrs", s(2 * HOUR)),
            ("1hour", s(HOUR)),
            ("2hours", s(2 * HOUR)),
            ("1d", s(DAY)),
            ("1day", s(DAY)),
            ("3days", s(3 * DAY)),
            // Whitespace between the number and its unit.
            ("10 s", s(10)),
            ("10 secs", s(10)),
            ("1 hour", s(HOUR)),
            ("10 seconds", s(10)),
            // Compounds add up.
            ("1m30s", s(90)),
            ("1m 30s", s(90)),
            ("1h2m3s4ms", ms(3_723_004)),
            ("1 hour 30 minutes", s(HOUR + 30 * MIN)),
            ("1h1h", s(2 * HOUR)),
            // Fractions are exact.
            ("1.5s", ms(1500)),
            ("0.1", ms(100)),
            ("0.3s", ms(300)),
            ("1.5d", s(129_600)),
            ("1.000000001", Duration::from_nanos(1_000_000_001)),
            ("0.0000000001s", Duration::ZERO),
            ("1.5ns", Duration::from_nanos(1)),
            // The largest.
            ("18446744073.709551615", Duration::from_nanos(u64::MAX)),
        ];
        for (input, want) in table {
            assert_eq!(parse_duration(input), Ok(want), "{input:?}");
        }
    }

    /// What is not a duration, and why.
    #[test]
    fn rejected() {
        let table = [
            ("", Empty),
            ("   ", Empty),
            ("-1", Sign),
            ("-1s", Sign),
            ("+1s", Sign),
            ("s", ExpectedNumber("s".into())),
            ("ten", ExpectedNumber("ten".into())),
            ("ten seconds", ExpectedNumber("ten seconds".into())),
            ("1m-30s", UnknownUnit("m-".into())),
            ("1e3", Exponent("1e3".into())),
            ("1e3s", Exponent("1e3".into())),
            ("1.5E-3", Exponent("1.5E-3".into())),
            ("2e", UnknownUnit("e".into())),
            ("10x", UnknownUnit("x".into())),
            ("10 S", UnknownUnit("S".into())),
            ("10 Seconds", UnknownUnit("Seconds".into())),
            ("1 fortnight", UnknownUnit("fortnight".into())),
            ("1m30", MissingUnit("30".into())),
            ("30 1m", MissingUnit("30".into())),
            ("1.2.3s", BadNumber("1.2.3".into())),
            (".", BadNumber(".".into())),
            ("..s", BadNumber("..".into())),
            ("18446744073.709551616", OutOfRange),
            ("99999999999d", OutOfRange),
            ("999999999999999999999999999999999999999999s", OutOfRange),
        ];
        for (input, want) in table {
            let error = parse_duration(input).expect_err(input);
            assert_eq!(error.kind(), &want, "{input:?}");
            assert_eq!(error.input(), input);
        }
    }

    #[test]
    fn seconds_of_a_number_literal() {
        assert_eq!(parse_seconds("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        let error = parse_seconds("1e3").unwrap_err();
        assert_eq!(error.kind(), &Exponent("1e3".into()));
        let error = parse_seconds("1.2.3").unwrap_err();
        assert_eq!(error.input(), "1.2.3");
        assert_eq!(error.kind(), &BadNumber("1.2.3".into()));
        assert!(parse_seconds("10s").is_err());
        assert!(parse_seconds("").is_err());
    }

    #[test]
    fn messages_name_the_input_and_the_reason() {
        let text = |input: &str| parse_duration(input).unwrap_err().to_string();
        assert_eq!(
            text("10x"),
            "invalid duration \"10x\": unknown unit `x` (use ns, us, ms, s, m, h, d, or sec, \
             min, hour, day, spelled out)"
        );
        assert_eq!(
            text("1m30"),
            "invalid duration \"1m30\": `30` needs a unit (only a number on its own means seconds)"
        );
        assert_eq!(
            text("-1s"),
            "invalid duration \"-1s\": a duration has no sign"
        );
        assert_eq!(text(""), "invalid duration \"\": it is empty");
        assert_eq!(
            text("1e3"),
            "invalid duration \"1e3\": `1e3` has an exponent; write the number out (such as \
             1000 or 0.001)"
        );
    }
}
