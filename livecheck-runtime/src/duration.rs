//! Human-friendly durations: `"10s"`, `"1m30s"`, `"250ms"`, `"1.5"` (seconds).
//!
//! The same grammar is accepted at compile time by `#[case(...)]` options and at run time by
//! [`Wait::timeout`](crate::signal::Wait::timeout), so an option copied from one place to the other
//! means the same thing.

use std::time::Duration;

/// A duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason} (expected e.g. \"10s\", \"1m30s\", \"250ms\" or seconds)"
)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parses `"10s"`, `"1m30s"`, `"2h"`, `"250ms"`, `"1d"`, or a plain number of seconds (`"1.5"`).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// assert_eq!(livecheck::parse_duration("1m30s").unwrap(), Duration::from_secs(90));
/// assert_eq!(livecheck::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(livecheck::parse_duration("2.5").unwrap(), Duration::from_millis(2500));
/// assert!(livecheck::parse_duration("ten seconds").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| err("not a non-negative number"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("a number needs a unit"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = rest[unit_len..].trim_start();
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "d" => 86400.0,
            _ => return Err(err("unknown unit (use ns, us, ms, s, m, h or d)")),
        };
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| err("out of range"))?;
    }
    Ok(total)
}

/// Anything [`Wait::timeout`](crate::signal::Wait::timeout) accepts: a [`Duration`], a string such
/// as `"30s"`, or a number of seconds.
pub trait IntoDuration {
    /// Converts into a duration; an unparsable string is an error.
    fn into_duration(self) -> Result<Duration, DurationError>;
}

impl IntoDuration for Duration {
    fn into_duration(self) -> Result<Duration, DurationError> {
        Ok(self)
    }
}

impl IntoDuration for &str {
    fn into_duration(self) -> Result<Duration, DurationError> {
        parse_duration(self)
    }
}

impl IntoDuration for f64 {
    fn into_duration(self) -> Result<Duration, DurationError> {
        Duration::try_from_secs_f64(self).map_err(|_| DurationError {
            input: self.to_string(),
            reason: "not a non-negative number",
        })
    }
}

impl IntoDuration for u64 {
    fn into_duration(self) -> Result<Duration, DurationError> {
        Ok(Duration::from_secs(self))
    }
}

/// Formats a duration for people: `1h 2m`, `3.20s`, `12ms`.
pub(crate) fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h {}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else if secs >= 1 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("1m 30s", Duration::from_secs(90)),
            ("250ms", Duration::from_millis(250)),
            ("2h", Duration::from_secs(7200)),
            ("3", Duration::from_secs(3)),
            ("0.5", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for input in ["", "s", "10x", "ten", "-1", "1m30"] {
            assert!(parse_duration(input).is_err(), "{input} should not parse");
        }
    }
}
