//! The values of `#[case(...)]` options, read from their expressions: names, numbers,
//! probabilities, booleans, integers, paths, and durations checked at compile time with
//! livecheck's one duration grammar ([`livecheck_duration`]): `"10s"`, `"1m30s"`, `"2 hours"`,
//! `"0.5"` (seconds). A duration may also be an integer or decimal literal, read as seconds
//! (`10`, `0.5`; no exponent). Each error is spanned on the offending token.

use std::time::Duration;

use livecheck_duration::{parse_duration, parse_seconds};
use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, Lit, LitStr, Path};

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

/// Looks through the invisible groups `macro_rules!` puts around `$e:expr` and `$l:literal`.
pub(crate) fn unwrap_group(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => unwrap_group(&group.expr),
        other => other,
    }
}

pub(crate) fn lit(expr: &Expr) -> Option<&Lit> {
    match unwrap_group(expr) {
        Expr::Lit(lit) => Some(&lit.lit),
        _ => None,
    }
}

pub(crate) fn is_negative_number(expr: &Expr) -> bool {
    match unwrap_group(expr) {
        Expr::Unary(unary) => {
            matches!(unary.op, syn::UnOp::Neg(_))
                && matches!(lit(&unary.expr), Some(Lit::Int(_) | Lit::Float(_)))
        }
        _ => false,
    }
}

pub(crate) fn name_value(expr: &Expr) -> syn::Result<LitStr> {
    match lit(expr) {
        Some(Lit::Str(s)) if s.value().trim().is_empty() => {
            Err(syn::Error::new_spanned(s, "a case name cannot be empty"))
        }
        Some(Lit::Str(s)) => Ok(s.clone()),
        _ => Err(syn::Error::new_spanned(
            expr,
            "expected a string literal: `name = \"...\"`",
        )),
    }
}

/// A number literal, integer or float, as f64.
pub(crate) fn number_value(expr: &Expr) -> Option<syn::Result<f64>> {
    match lit(expr)? {
        Lit::Float(f) => Some(f.base10_parse()),
        Lit::Int(i) => Some(i.base10_parse()),
        _ => None,
    }
}

pub(crate) fn probability_value(expr: &Expr) -> syn::Result<f64> {
    let out_of_range = || {
        syn::Error::new_spanned(
            expr,
            "`probability` must be between 0 and 1 (e.g. 0.5 triggers half of the time)",
        )
    };
    if is_negative_number(expr) {
        return Err(out_of_range());
    }
    let p = number_value(expr).ok_or_else(|| {
        syn::Error::new_spanned(
            expr,
            "expected a number between 0 and 1: `probability = 0.5`",
        )
    })??;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(out_of_range())
    }
}

pub(crate) fn backoff_value(expr: &Expr) -> syn::Result<f64> {
    let too_small = || {
        syn::Error::new_spanned(
            expr,
            "`url_error_delay_backoff` must be at least 1.0 (each retry waits that many times \
             longer than the one before)",
        )
    };
    if is_negative_number(expr) {
        return Err(too_small());
    }
    let factor = number_value(expr).ok_or_else(|| {
        syn::Error::new_spanned(expr, "expected a number: `url_error_delay_backoff = 1.5`")
    })??;
    if factor.is_finite() && factor >= 1.0 {
        Ok(factor)
    } else {
        Err(too_small())
    }
}

pub(crate) fn frequency_value(expr: &Expr) -> syn::Result<Duration> {
    positive_duration_value(expr, "frequency")
}

pub(crate) fn positive_duration_value(expr: &Expr, option: &str) -> syn::Result<Duration> {
    let value = duration_value(expr)?;
    if value.is_zero() {
        return Err(syn::Error::new_spanned(
            expr,
            format!("`{option}` must be greater than zero"),
        ));
    }
    Ok(value)
}

pub(crate) fn bool_value(expr: &Expr) -> syn::Result<bool> {
    match lit(expr) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(syn::Error::new_spanned(expr, "expected `true` or `false`")),
    }
}

/// An unsigned integer literal of type `ty` (`usize` or `u32`), at least `min`, for `option`.
pub(crate) fn int_value<N>(expr: &Expr, option: &str, ty: &str, min: N) -> syn::Result<N>
where
    N: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match lit(expr) {
        Some(Lit::Int(int)) => match int.base10_digits().parse::<N>() {
            Ok(n) if n < min => Err(syn::Error::new_spanned(
                int,
                format!("`{option}` must be at least {min}"),
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(syn::Error::new_spanned(
                int,
                format!("`{option}` does not fit in a {ty}"),
            )),
        },
        _ => Err(syn::Error::new_spanned(
            expr,
            format!("expected an unsigned integer literal ({ty})"),
        )),
    }
}

pub(crate) fn path_value(expr: &Expr, expected: &str) -> syn::Result<Path> {
    match unwrap_group(expr) {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => Ok(p.path.clone()),
        _ => Err(syn::Error::new_spanned(expr, expected)),
    }
}

/// `crate = ::path` or, as tokio and serde spell it, `crate = "::path"`.
pub(crate) fn crate_value(expr: &Expr) -> syn::Result<Path> {
    let expected = "expected a path to the livecheck crate: `crate = ::livecheck`";
    match lit(expr) {
        Some(Lit::Str(s)) => s
            .parse::<Path>()
            .map_err(|_| syn::Error::new_spanned(s, expected)),
        _ => path_value(expr, expected),
    }
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
        let tokens = crate::tokens(&duration_tokens(Duration::from_millis(1500)).to_string());
        assert_eq!(
            tokens,
            crate::tokens("::core::time::Duration::from_nanos(1500000000u64)")
        );
    }
}
