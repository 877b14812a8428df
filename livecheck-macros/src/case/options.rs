//! The attribute's options: parsing `key = value` pairs into a [`CaseConfig`].
//!
//! [`CaseConfig::set`] takes one `key = value` (rejecting unknown keys, duplicates and bad
//! values, each error on the offending token); [`CaseConfig::build`] checks the rules that span
//! several options; [`CaseConfig::options_tokens`] writes them as the runtime's `CaseOptions`.

use std::time::Duration;

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitStr, Path, Token};

use crate::errors::Errors;
use crate::values::{
    backoff_value, bool_value, crate_value, duration_tokens, duration_value, frequency_value,
    int_value, name_value, path_value, positive_duration_value, probability_value,
};

/// Every option `#[case(...)]` accepts, in the order the "unknown option" error lists them.
pub(crate) const OPTIONS: &[&str] = &[
    "name",
    "probability",
    "warn_stalled_after",
    "active",
    "test_expires",
    "frequency",
    "realtime_logs",
    "max_history",
    "max_consecutive_failures",
    "url_timeout_total",
    "url_timeout_connect",
    "url_error_retries",
    "url_error_delay_min",
    "url_error_delay_backoff",
    "url_error_delay_max",
    "state_transition_delay",
    "max_runtime",
    "log_passes",
    "fake_request",
    "hooks",
    "crate",
];

/// The runtime's defaults (`CaseOptions::DEFAULT`) of the options that [`CaseConfig::build`]
/// compares with each other; keep them in step.
const DEFAULT_URL_ERROR_DELAY_MIN: Duration = Duration::from_millis(500);
const DEFAULT_URL_ERROR_DELAY_MAX: Duration = Duration::from_secs(5);

/// One `key = value` of the attribute. The key may be a keyword (`crate`).
#[derive(Debug)]
pub(crate) struct OptionArg {
    pub(crate) key: Ident,
    pub(crate) value: Option<Expr>,
}

impl Parse for OptionArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(OptionArg { key, value })
    }
}

/// Parses the attribute's arguments: `key = value` pairs separated by commas.
pub(crate) fn parse_options(args: TokenStream) -> syn::Result<Vec<OptionArg>> {
    let options = Punctuated::<OptionArg, Token![,]>::parse_terminated.parse2(args)?;
    Ok(options.into_iter().collect())
}

/// An option as given: its key (for errors about it), its value expression, what it means.
#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    key: Ident,
    expr: Expr,
    value: T,
}

impl<T> Setting<T> {
    fn new(key: &Ident, expr: &Expr, value: T) -> Self {
        Setting {
            key: key.clone(),
            expr: expr.clone(),
            value,
        }
    }
}

/// The options of one case, each checked on its own as it is set.
#[derive(Debug, Default)]
pub(crate) struct CaseConfig {
    seen: Vec<String>,
    krate: Option<Path>,
    pub(crate) name: Option<LitStr>,
    probability: Option<Setting<f64>>,
    warn_stalled_after: Option<Setting<Duration>>,
    active: Option<Setting<bool>>,
    test_expires: Option<Setting<Duration>>,
    frequency: Option<Setting<Duration>>,
    realtime_logs: Option<Setting<bool>>,
    max_history: Option<Setting<usize>>,
    max_consecutive_failures: Option<Setting<u32>>,
    url_timeout_total: Option<Setting<Duration>>,
    url_timeout_connect: Option<Setting<Duration>>,
    url_error_retries: Option<Setting<u32>>,
    url_error_delay_min: Option<Setting<Duration>>,
    url_error_delay_backoff: Option<Setting<f64>>,
    url_error_delay_max: Option<Setting<Duration>>,
    state_transition_delay: Option<Setting<Duration>>,
    max_runtime: Option<Setting<Duration>>,
    log_passes: Option<Setting<bool>>,
    pub(crate) fake_request: Option<Path>,
    pub(crate) hooks: Option<Path>,
}

impl CaseConfig {
    /// Sets option `key` to `value`; an unknown key, a key given twice, a missing value or a value
    /// of the wrong kind is an error spanned on the offending token.
    pub(crate) fn set(&mut self, key: &Ident, value: Option<&Expr>) -> syn::Result<()> {
        let name = key.unraw().to_string();
        if !OPTIONS.contains(&name.as_str()) {
            return Err(syn::Error::new_spanned(
                key,
                format!(
                    "unknown option `{name}`; valid options are: {}",
                    OPTIONS.join(", ")
                ),
            ));
        }
        if self.seen.contains(&name) {
            return Err(syn::Error::new_spanned(
                key,
                format!("duplicate option `{name}`"),
            ));
        }
        self.seen.push(name.clone());
        let Some(expr) = value else {
            return Err(syn::Error::new_spanned(
                key,
                format!("option `{name}` needs a value: `{name} = ...`"),
            ));
        };
        // A closure would fix `T` to its first use; a local macro keeps every setter on one line.
        macro_rules! setting {
            ($value:expr) => {
                Some(Setting::new(key, expr, $value))
            };
        }
        match name.as_str() {
            "name" => self.name = Some(name_value(expr)?),
            "probability" => self.probability = setting!(probability_value(expr)?),
            "warn_stalled_after" => self.warn_stalled_after = setting!(duration_value(expr)?),
            "active" => self.active = setting!(bool_value(expr)?),
            "test_expires" => self.test_expires = setting!(duration_value(expr)?),
            "frequency" => self.frequency = setting!(frequency_value(expr)?),
            "realtime_logs" => self.realtime_logs = setting!(bool_value(expr)?),
            "max_history" => self.max_history = setting!(int_value(expr, &name, "usize", 1)?),
            "max_consecutive_failures" => {
                self.max_consecutive_failures = setting!(int_value(expr, &name, "u32", 1)?);
            }
            "url_timeout_total" => self.url_timeout_total = setting!(duration_value(expr)?),
            "url_timeout_connect" => self.url_timeout_connect = setting!(duration_value(expr)?),
            "url_error_retries" => {
                self.url_error_retries = setting!(int_value(expr, &name, "u32", 0)?);
            }
            "url_error_delay_min" => self.url_error_delay_min = setting!(duration_value(expr)?),
            "url_error_delay_backoff" => {
                self.url_error_delay_backoff = setting!(backoff_value(expr)?);
            }
            "url_error_delay_max" => self.url_error_delay_max = setting!(duration_value(expr)?),
            "state_transition_delay" => {
                self.state_transition_delay = setting!(duration_value(expr)?);
            }
            "max_runtime" => {
                self.max_runtime = setting!(positive_duration_value(expr, "max_runtime")?);
            }
            "log_passes" => self.log_passes = setting!(bool_value(expr)?),
            "hooks" => {
                self.hooks = Some(path_value(
                    expr,
                    "expected a path to a type that implements `livecheck::CaseHooks`",
                )?);
            }
            "fake_request" => {
                self.fake_request = Some(path_value(
                    expr,
                    "expected a path to an `async fn(livecheck::FakeRequest) -> livecheck::Result`",
                )?);
            }
            "crate" => self.krate = Some(crate_value(expr)?),
            _ => unreachable!("every name in OPTIONS is handled"),
        }
        Ok(())
    }

    /// Checks the rules between options, after all of them are set.
    pub(crate) fn build(&self, errors: &mut Errors) {
        let min = self.url_error_delay_min.as_ref();
        let max = self.url_error_delay_max.as_ref();
        let min_value = min.map_or(DEFAULT_URL_ERROR_DELAY_MIN, |s| s.value);
        let max_value = max.map_or(DEFAULT_URL_ERROR_DELAY_MAX, |s| s.value);
        if min_value > max_value {
            let message = format!(
                "`url_error_delay_min` ({min_value:?}{}) is greater than `url_error_delay_max` \
                 ({max_value:?}{})",
                if min.is_none() { ", the default" } else { "" },
                if max.is_none() { ", the default" } else { "" },
            );
            let offender = min.or(max).expect("a default min is below the default max");
            errors.push(syn::Error::new_spanned(&offender.expr, message));
        }
        // The worker only runs a timer for a case with both (as Faust's timer only calls the
        // case's fake request): `frequency` alone would be silently ignored.
        if let (Some(frequency), None) = (&self.frequency, &self.fake_request) {
            errors.push(syn::Error::new_spanned(
                &frequency.key,
                "`frequency` is how often the fake request is sent: \
                 add `fake_request = <async fn>`",
            ));
        }
    }

    /// The path every generated item starts with: the `crate` option, or `::livecheck`.
    pub(crate) fn root(&self) -> Path {
        self.krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::livecheck))
    }

    /// `{ let mut options = CaseOptions::DEFAULT; options.<given option> = <value>; ...; options }`,
    /// or `CaseOptions::DEFAULT`.
    pub(crate) fn options_tokens(&self, root: &Path) -> TokenStream {
        fn some(value: TokenStream) -> TokenStream {
            quote!(::core::option::Option::Some(#value))
        }
        let durations = [
            ("warn_stalled_after", &self.warn_stalled_after, false),
            ("test_expires", &self.test_expires, false),
            ("frequency", &self.frequency, true),
            ("url_timeout_total", &self.url_timeout_total, true),
            ("url_timeout_connect", &self.url_timeout_connect, true),
            ("url_error_delay_min", &self.url_error_delay_min, false),
            ("url_error_delay_max", &self.url_error_delay_max, false),
            (
                "state_transition_delay",
                &self.state_transition_delay,
                false,
            ),
            ("max_runtime", &self.max_runtime, true),
        ];
        let mut fields: Vec<(&str, TokenStream)> = Vec::new();
        if let Some(p) = &self.probability {
            fields.push((
                "probability",
                Literal::f64_suffixed(p.value).into_token_stream(),
            ));
        }
        for (field, setting, optional) in durations {
            if let Some(setting) = setting {
                let value = duration_tokens(setting.value);
                fields.push((field, if optional { some(value) } else { value }));
            }
        }
        for (field, setting) in [
            ("active", &self.active),
            ("realtime_logs", &self.realtime_logs),
            ("log_passes", &self.log_passes),
        ] {
            if let Some(setting) = setting {
                let value = setting.value;
                fields.push((field, quote!(#value)));
            }
        }
        if let Some(n) = &self.max_history {
            fields.push((
                "max_history",
                Literal::usize_suffixed(n.value).into_token_stream(),
            ));
        }
        for (field, setting) in [
            ("max_consecutive_failures", &self.max_consecutive_failures),
            ("url_error_retries", &self.url_error_retries),
        ] {
            if let Some(n) = setting {
                fields.push((field, Literal::u32_suffixed(n.value).into_token_stream()));
            }
        }
        if let Some(b) = &self.url_error_delay_backoff {
            fields.push((
                "url_error_delay_backoff",
                Literal::f64_suffixed(b.value).into_token_stream(),
            ));
        }

        if fields.is_empty() {
            return quote!(#root::__private::CaseOptions::DEFAULT);
        }
        // Assigned one by one: `CaseOptions` is `#[non_exhaustive]`, so no struct literal of it
        // (not even `..DEFAULT`) compiles outside the runtime.
        let fields = fields.into_iter().map(|(field, value)| {
            let field = Ident::new(field, Span::call_site());
            quote!(options.#field = #value;)
        });
        quote! {
            {
                let mut options = #root::__private::CaseOptions::DEFAULT;
                #(#fields)*
                options
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and sets `args` the way `case::expand` does, then builds.
    fn config(args: &str) -> (CaseConfig, syn::Result<()>) {
        let mut errors = Errors::default();
        let mut config = CaseConfig::default();
        if let Some(options) = errors.take(parse_options(args.parse().unwrap())) {
            for option in options {
                errors.take(config.set(&option.key, option.value.as_ref()));
            }
        }
        config.build(&mut errors);
        (config, errors.into_result())
    }

    fn ok(args: &str) -> CaseConfig {
        let (config, result) = config(args);
        if let Err(e) = result {
            panic!("{args}: {e}");
        }
        config
    }

    /// Every error message, in order.
    fn errors(args: &str) -> Vec<String> {
        match config(args).1 {
            Ok(()) => panic!("{args}: expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn no_options_is_fine() {
        let config = ok("");
        assert!(config.seen.is_empty());
        let root = config.root();
        assert_eq!(
            crate::tokens(&config.options_tokens(&root).to_string()),
            crate::tokens("::livecheck::__private::CaseOptions::DEFAULT")
        );
    }

    #[test]
    fn every_option() {
        let config = ok(r#"
            name = "orders", probability = 0.25, warn_stalled_after = "1m", active = false,
            test_expires = 3600, frequency = "1m 30s", realtime_logs = true, max_history = 7,
            max_consecutive_failures = 3, url_timeout_total = 2.5, url_timeout_connect = "250ms",
            url_error_retries = 0, url_error_delay_min = "1s", url_error_delay_backoff = 2,
            url_error_delay_max = "10s", state_transition_delay = "2m", fake_request = fake::send,
            max_runtime = "5m", log_passes = false, hooks = my::Hooks, crate = ::renamed,
        "#);
        assert_eq!(config.seen.len(), OPTIONS.len());
        assert_eq!(
            config.max_runtime.as_ref().unwrap().value,
            Duration::from_secs(300)
        );
        assert!(!config.log_passes.as_ref().unwrap().value);
        assert_eq!(config.name.as_ref().unwrap().value(), "orders");
        assert_eq!(config.probability.as_ref().unwrap().value, 0.25);
        assert_eq!(
            config.warn_stalled_after.as_ref().unwrap().value,
            Duration::from_secs(60)
        );
        assert!(!config.active.as_ref().unwrap().value);
        assert_eq!(
            config.test_expires.as_ref().unwrap().value,
            Duration::from_secs(3600)
        );
        assert_eq!(
            config.frequency.as_ref().unwrap().value,
            Duration::from_secs(90)
        );
        assert!(config.realtime_logs.as_ref().unwrap().value);
        assert_eq!(config.max_history.as_ref().unwrap().value, 7);
        assert_eq!(config.max_consecutive_failures.as_ref().unwrap().value, 3);
        assert_eq!(
            config.url_timeout_total.as_ref().unwrap().value,
            Duration::from_millis(2500)
        );
        assert_eq!(config.url_error_retries.as_ref().unwrap().value, 0);
        assert_eq!(config.url_error_delay_backoff.as_ref().unwrap().value, 2.0);
        let path = |p: &Path| crate::tokens(&p.to_token_stream().to_string());
        assert_eq!(
            path(config.fake_request.as_ref().unwrap()),
            crate::tokens("fake::send")
        );
        assert_eq!(
            path(config.hooks.as_ref().unwrap()),
            crate::tokens("my::Hooks")
        );
        assert_eq!(path(&config.root()), crate::tokens("::renamed"));

        let options = config.options_tokens(&config.root()).to_string();
        for field in [
            "options.probability = 0.25f64",
            "options.warn_stalled_after = ::core::time::Duration::from_nanos(60000000000u64)",
            "options.frequency = ::core::option::Option::Some",
            "options.url_timeout_connect = ::core::option::Option::Some",
            "options.active = false",
            "options.max_history = 7usize",
            "options.url_error_retries = 0u32",
            "options.url_error_delay_backoff = 2f64",
            "options.max_runtime = ::core::option::Option::Some(::core::time::Duration::from_nanos(300000000000u64))",
            "options.log_passes = false",
            "let mut options = ::renamed::__private::CaseOptions::DEFAULT;",
        ] {
            assert!(
                crate::tokens(&options).contains(&crate::tokens(field)),
                "{field} not in {options}"
            );
        }
    }

    #[test]
    fn unknown_option_lists_the_valid_ones() {
        let e = errors("probabilty = 0.5");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("unknown option `probabilty`; valid options are: name, probability, "),
            "{}",
            e[0]
        );
        assert!(
            e[0].ends_with("max_runtime, log_passes, fake_request, hooks, crate"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn duplicates_are_rejected_even_after_a_bad_first_value() {
        assert_eq!(
            errors("probability = 0.1, probability = 0.2"),
            ["duplicate option `probability`"]
        );
        let e = errors("probability = 2, probability = 0.2");
        assert_eq!(e.len(), 2);
        assert_eq!(e[1], "duplicate option `probability`");
    }

    #[test]
    fn every_independent_error_is_reported() {
        let e = errors(r#"foo = 1, probability = 1.5, frequency = "10x", active = 1, name = 3"#);
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e[0].starts_with("unknown option `foo`"));
        assert!(e[1].starts_with("`probability` must be between 0 and 1"));
        assert!(e[2].starts_with("invalid duration \"10x\": unknown unit `x`"));
        assert_eq!(e[3], "expected `true` or `false`");
        assert_eq!(e[4], "expected a string literal: `name = \"...\"`");
    }

    #[test]
    fn probability() {
        for good in ["0", "1", "0.0", "1.0", "0.5", "0.001"] {
            let p = ok(&format!("probability = {good}"))
                .probability
                .unwrap()
                .value;
            assert_eq!(p, good.parse::<f64>().unwrap());
        }
        for bad in ["-0.5", "1.01", "2", "-0", "1e3"] {
            let e = errors(&format!("probability = {bad}"));
            assert!(
                e[0].starts_with("`probability` must be between 0 and 1"),
                "{bad}: {e:?}"
            );
        }
        let e = errors("probability = \"0.5\"");
        assert_eq!(
            e,
            ["expected a number between 0 and 1: `probability = 0.5`"]
        );
    }

    #[test]
    fn wrong_literal_types() {
        let cases = [
            ("active = \"yes\"", "expected `true` or `false`"),
            (
                "max_history = 1.5",
                "expected an unsigned integer literal (usize)",
            ),
            ("max_history = 0", "`max_history` must be at least 1"),
            (
                "max_consecutive_failures = 0",
                "`max_consecutive_failures` must be at least 1",
            ),
            (
                "url_error_retries = -1",
                "expected an unsigned integer literal (u32)",
            ),
            (
                "url_error_retries = 5000000000",
                "`url_error_retries` does not fit in a u32",
            ),
            (
                "url_error_delay_backoff = 0.5",
                "`url_error_delay_backoff` must be at least 1.0",
            ),
            (
                "url_error_delay_backoff = true",
                "expected a number: `url_error_delay_backoff = 1.5`",
            ),
            (
                "warn_stalled_after = true",
                "expected a duration: a string such as",
            ),
            ("test_expires = -1", "a duration cannot be negative"),
            ("name = \"\"", "a case name cannot be empty"),
            (
                "fake_request = \"f\"",
                "expected a path to an `async fn(livecheck::FakeRequest)",
            ),
            ("fake_request = |r| f(r)", "expected a path to an `async fn"),
            ("crate = 1", "expected a path to the livecheck crate"),
            ("max_runtime = 0", "`max_runtime` must be greater than zero"),
            ("max_runtime = \"soon\"", "invalid duration \"soon\""),
            ("log_passes = 1", "expected `true` or `false`"),
            (
                "hooks = \"H\"",
                "expected a path to a type that implements `livecheck::CaseHooks`",
            ),
            ("active", "option `active` needs a value: `active = ...`"),
        ];
        for (args, want) in cases {
            let e = errors(args);
            assert!(e[0].starts_with(want), "{args}: {e:?}");
        }
    }

    #[test]
    fn crate_as_a_string() {
        let config = ok("crate = \"::my_livecheck\"");
        assert_eq!(
            crate::tokens(&config.root().to_token_stream().to_string()),
            crate::tokens("::my_livecheck")
        );
    }

    #[test]
    fn syntax_errors() {
        assert!(parse_options("probability 0.5".parse().unwrap()).is_err());
        assert!(parse_options("a = 1 b = 2".parse().unwrap()).is_err());
        assert!(parse_options("a = 1,".parse().unwrap()).is_ok());
    }

    #[test]
    fn cross_option_rules() {
        let e = errors("url_error_delay_min = \"6s\"");
        assert_eq!(
            e,
            ["`url_error_delay_min` (6s) is greater than `url_error_delay_max` (5s, the default)"]
        );
        let e = errors("url_error_delay_max = \"0.1s\"");
        assert!(e[0].contains("(500ms, the default)"), "{e:?}");
        ok("url_error_delay_min = \"6s\", url_error_delay_max = \"6s\"");
        let e = errors("frequency = \"10s\"");
        assert!(e[0].starts_with("`frequency` is how often the fake request is sent"));
        let e = errors("frequency = 0, fake_request = f");
        assert_eq!(e, ["`frequency` must be greater than zero"]);
        ok("fake_request = f");
    }
}
