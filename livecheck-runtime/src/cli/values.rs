//! The values of the flags: the types a flag's text becomes ([`Property`], [`MaxTestAge`]) and
//! the parsers clap calls for them. An error names the problem in one line, and never repeats
//! a text that may be (part of) a secret.

use std::fmt;
use std::time::Duration;

use crate::ops::alerts::WebhookConfig;

/// The environment variable of `-X`: librdkafka properties, one `KEY=VALUE` per line (a value
/// may hold commas and `=`; blank lines and lines starting with `#` are skipped).
pub(crate) const PROPERTIES_ENV: &str = "LIVECHECK_KAFKA_PROPERTIES";

/// A librdkafka property given with `-X KEY=VALUE`. Its `Debug` hides the value: properties
/// carry passwords and keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Property {
    /// The property's name, e.g. `sasl.password`.
    pub key: String,
    /// Its value, unchanged.
    pub value: String,
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<hidden>", self.key)
    }
}

/// `--max-test-age`: a duration, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxTestAge(pub Option<Duration>);

pub(super) fn parse_max_age(s: &str) -> Result<MaxTestAge, String> {
    if matches!(s.trim(), "off" | "none") {
        return Ok(MaxTestAge(None));
    }
    parse_positive_duration(s).map(|d| MaxTestAge(Some(d)))
}

pub(super) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match crate::wire::duration::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be more than 0".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// `KEY=VALUE`: the key trimmed, the value everything after the first `=`, unchanged. The error
/// never repeats the text: it may be (part of) a secret.
pub(super) fn parse_property(s: &str) -> Result<Property, String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok(Property {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        }),
        Some(_) => Err("expected KEY=VALUE, the key is empty".to_owned()),
        None => Err("expected KEY=VALUE, there is no '='".to_owned()),
    }
}

/// The properties of [`PROPERTIES_ENV`]'s value: one `KEY=VALUE` per line.
pub(crate) fn parse_properties_env(text: &str) -> Result<Vec<Property>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(index, line)| {
            parse_property(line).map_err(|e| format!("{PROPERTIES_ENV}, line {}: {e}", index + 1))
        })
        .collect()
}

pub(super) fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    crate::wire::duration::parse_duration(s).map_err(|e| e.to_string())
}

/// `--trace-url`: an http(s) URL with `{trace_id}` in it.
pub(super) fn parse_trace_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    if !text.contains("{trace_id}") {
        return Err(format!(
            "{text:?} has no {{trace_id}} where the trace id goes, e.g. \
             https://jaeger.example.com/trace/{{trace_id}}"
        ));
    }
    Ok(text.to_owned())
}

/// `--otlp-endpoint`: an http(s) URL. The error does not repeat it (it may hold a password).
#[cfg(feature = "otel")]
pub(super) fn parse_otlp_endpoint(text: &str) -> Result<String, String> {
    let text = text.trim();
    let valid = (text.starts_with("http://") || text.starts_with("https://"))
        && text
            .parse::<http::Uri>()
            .is_ok_and(|uri| uri.host().is_some());
    if !valid {
        return Err("not an http(s) URL with a host, e.g. http://otel-collector:4318".to_owned());
    }
    Ok(text.to_owned())
}

pub(super) fn parse_webhook(s: &str) -> Result<WebhookConfig, String> {
    WebhookConfig::new(s).map_err(|e| e.to_string())
}

/// `run --timeout`: more than 0.
pub(super) fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_positive_duration(s)
}
