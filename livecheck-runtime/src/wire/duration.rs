//! Human-friendly durations: `"10s"`, `"1m30s"`, `"2 hours"`, `"250ms"`, `"1.5"` (seconds).
//!
//! One grammar, [`livecheck_duration`]'s, is accepted at compile time by `#[case(...)]` options
//! and at run time by [`parse_duration`], [`Wait::timeout`](crate::signal::Wait::timeout) and the
//! command line's duration flags, so a duration copied from one place to another means the same
//! thing:
//!
//! - a decimal number and a unit: `ns`, `us` (`µs`), `ms`, `s` (`sec`, `secs`, `second`,
//!   `seconds`), `m` (`min`, `mins`, `minute`, `minutes`), `h` (`hr`, `hrs`, `hour`, `hours`),
//!   `d` (`day`, `days`), with or without a space between them: `"10s"`, `"10 secs"`, `"1.5h"`;
//! - several of them, added up: `"1h30m"`, `"1h 30m"`, `"1 hour 30 minutes"`;
//! - or a bare number, in seconds: `"10"`, `"0.5"`.
//!
//! No sign, no exponent (`"1e3"` is an error), units in lower case, exact to the nanosecond.

use std::time::Duration;

pub use livecheck_duration::{DurationError, DurationErrorKind};

/// Parses a duration in livecheck's grammar (see the [module docs](self)): `"10s"`, `"1m30s"`,
/// `"2 hours"`, `"250ms"`, `"1d"`, or a plain number of seconds (`"1.5"`).
///
/// # Errors
///
/// A [`DurationError`] naming the input and what is wrong with it.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// assert_eq!(livecheck::duration::parse_duration("1m30s").unwrap(), Duration::from_secs(90));
/// assert_eq!(livecheck::duration::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(livecheck::duration::parse_duration("1 hour").unwrap(), Duration::from_secs(3600));
/// assert_eq!(livecheck::duration::parse_duration("2.5").unwrap(), Duration::from_millis(2500));
/// assert!(livecheck::duration::parse_duration("ten seconds").is_err());
/// assert!(livecheck::duration::parse_duration("1e3").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    livecheck_duration::parse_duration(input)
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
        // `f64`'s `Display` never uses an exponent and round-trips, so this is the number as
        // given, read exactly by the one grammar; NaN, infinities and negatives are errors.
        parse_duration(&self.to_string())
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

    /// The grammar is tested in `livecheck-duration`; here, what the runtime adds around it.
    #[test]
    fn into_duration() {
        assert_eq!("1 hour".into_duration(), Ok(Duration::from_secs(3600)));
        assert_eq!(0.1f64.into_duration(), Ok(Duration::from_millis(100)));
        assert_eq!(1e-10f64.into_duration(), Ok(Duration::ZERO));
        assert_eq!(30u64.into_duration(), Ok(Duration::from_secs(30)));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e30] {
            assert!(bad.into_duration().is_err(), "{bad}");
        }
        assert!("1e3".into_duration().is_err());
        let error = "10x".into_duration().unwrap_err();
        assert_eq!(error.input(), "10x");
        assert!(error
            .to_string()
            .starts_with("invalid duration \"10x\": unknown unit `x`"));
    }

    #[test]
    fn humanized() {
        assert_eq!(humanize(Duration::from_secs(3720)), "1h 2m");
        assert_eq!(humanize(Duration::from_secs(62)), "1m 2s");
        assert_eq!(humanize(Duration::from_millis(3200)), "3.20s");
        assert_eq!(humanize(Duration::from_millis(12)), "12ms");
    }
}
