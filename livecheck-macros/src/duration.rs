//! Durations in `#[case(...)]` options, checked at compile time with livecheck's one duration
//! grammar ([`livecheck_duration`]): `"10s"`, `"1m30s"`, `"2 hours"`, `"0.5"` (seconds). An
//! option may also be an integer or decimal literal, read as seconds (`10`, `0.5`; no exponent).

use std::time::Duration;

use livecheck_duration::{parse_duration, parse_seconds};
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Lit};

use crate::case::options::unwrap_group;

/// Reads a duration option's value: a string in the grammar, or a literal number of seconds.
pub(crate) fn duration_value(value: &Expr) -> syn::Result<Duration> {
    let expected = "expected a duration: a string such as \"10s\", \"1m30s\" or \"250ms\", \
                    or a number of seconds";
    match unwrap_group(value) {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => parse_duration(&s.value()).map_err(|error| {
                syn::Error::new_spanned(
                    s,
                    format!(
                        "{error}; expected e.g. \"10s\", \"1m30s\", \"250ms\", \"2 hours\" or a \
                         number of seconds"
                    ),
                )
            }),
            Lit::Int(int) => parse_seconds(int.base10_digits())
                .map_err(|error| syn::Error::new_spanned(int, error.kind().to_string())),
            Lit::Float(float) => parse_seconds(float.base10_digits())
                .map_err(|error| syn::Error::new_spanned(float, error.kind().to_string())),
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

    fn value(tokens: &str) -> syn::Result<Duration> {
        duration_value(&syn::parse_str(tokens).unwrap())
    }

    /// The grammar itself is tested in `livecheck-duration`; here, how an option's value is read.
    #[test]
    fn option_values() {
        assert_eq!(value("\"1m30s\"").unwrap(), Duration::from_secs(90));
        assert_eq!(value("\"1 hour\"").unwrap(), Duration::from_secs(3600));
        assert_eq!(value("10").unwrap(), Duration::from_secs(10));
        assert_eq!(value("10u64").unwrap(), Duration::from_secs(10));
        assert_eq!(value("0.25").unwrap(), Duration::from_millis(250));
        let e = value("\"10x\"").unwrap_err().to_string();
        assert!(
            e.starts_with("invalid duration \"10x\": unknown unit `x`"),
            "{e}"
        );
        // No exponent, as a string or as a literal: one grammar.
        let e = value("\"1e3\"").unwrap_err().to_string();
        assert!(e.starts_with("invalid duration \"1e3\""), "{e}");
        let e = value("1e3").unwrap_err().to_string();
        assert!(e.starts_with("`1e3` has an exponent"), "{e}");
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
