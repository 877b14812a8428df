//! `#[case]`: parsing the options into a [`CaseConfig`], checking the fn, and the expansion.
//!
//! The steps are kept apart so each can be unit-tested: [`CaseConfig::set`] takes one
//! `key = value` (rejecting unknown keys, duplicates and bad values), [`CaseConfig::build`]
//! checks the rules that span several options, [`check_signature`] checks the fn, and [`render`]
//! writes the code. Every independent error is reported in one compile.

use std::time::Duration;

use proc_macro2::{Group, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, Ident, ItemFn, Lit, LitStr, Pat, Path, Token, Type};

use crate::duration::{duration_tokens, duration_value};
use crate::errors::Errors;

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

/// Expands `#[case(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(error) => {
            let error = syn::Error::new(error.span(), "`#[livecheck::case]` requires an async fn")
                .to_compile_error();
            return quote!(#item #error);
        }
    };

    let mut errors = Errors::default();
    let mut config = CaseConfig::default();
    if let Some(options) = errors.take(parse_options(args)) {
        for option in options {
            errors.take(config.set(&option.key, option.value.as_ref()));
        }
    }
    config.build(&mut errors);
    let params = errors.take(check_signature(&func));

    match params {
        // The fn itself is fine: expand it even if an option is wrong (that option keeps its
        // default), so uses of the case's handle and its signals do not add follow-on errors.
        Some(params) => {
            let expanded = render(&func, &params, &config);
            quote!(#expanded #errors)
        }
        // The fn cannot become a case: leave it as written.
        None => quote!(#item #errors),
    }
}

/// One `key = value` of the attribute. The key may be a keyword (`crate`).
#[derive(Debug)]
pub(crate) struct OptionArg {
    key: Ident,
    value: Option<Expr>,
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
    name: Option<LitStr>,
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
    fake_request: Option<Path>,
    hooks: Option<Path>,
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

    /// `CaseOptions { <given options>, ..CaseOptions::DEFAULT }`, or `CaseOptions::DEFAULT`.
    fn options_tokens(&self, root: &Path) -> TokenStream {
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
        let fields = fields.into_iter().map(|(field, value)| {
            let field = Ident::new(field, Span::call_site());
            quote!(#field: #value)
        });
        quote! {
            #root::__private::CaseOptions {
                #(#fields,)*
                ..#root::__private::CaseOptions::DEFAULT
            }
        }
    }
}

/// Looks through the invisible groups `macro_rules!` puts around `$e:expr` and `$l:literal`.
pub(crate) fn unwrap_group(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => unwrap_group(&group.expr),
        other => other,
    }
}

fn lit(expr: &Expr) -> Option<&Lit> {
    match unwrap_group(expr) {
        Expr::Lit(lit) => Some(&lit.lit),
        _ => None,
    }
}

fn is_negative_number(expr: &Expr) -> bool {
    match unwrap_group(expr) {
        Expr::Unary(unary) => {
            matches!(unary.op, syn::UnOp::Neg(_))
                && matches!(lit(&unary.expr), Some(Lit::Int(_) | Lit::Float(_)))
        }
        _ => false,
    }
}

fn name_value(expr: &Expr) -> syn::Result<LitStr> {
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
fn number_value(expr: &Expr) -> Option<syn::Result<f64>> {
    match lit(expr)? {
        Lit::Float(f) => Some(f.base10_parse()),
        Lit::Int(i) => Some(i.base10_parse()),
        _ => None,
    }
}

fn probability_value(expr: &Expr) -> syn::Result<f64> {
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

fn backoff_value(expr: &Expr) -> syn::Result<f64> {
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

fn frequency_value(expr: &Expr) -> syn::Result<Duration> {
    positive_duration_value(expr, "frequency")
}

fn positive_duration_value(expr: &Expr, option: &str) -> syn::Result<Duration> {
    let value = duration_value(expr)?;
    if value.is_zero() {
        return Err(syn::Error::new_spanned(
            expr,
            format!("`{option}` must be greater than zero"),
        ));
    }
    Ok(value)
}

fn bool_value(expr: &Expr) -> syn::Result<bool> {
    match lit(expr) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(syn::Error::new_spanned(expr, "expected `true` or `false`")),
    }
}

/// An unsigned integer literal of type `ty` (`usize` or `u32`), at least `min`, for `option`.
fn int_value<N>(expr: &Expr, option: &str, ty: &str, min: N) -> syn::Result<N>
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

fn path_value(expr: &Expr, expected: &str) -> syn::Result<Path> {
    match unwrap_group(expr) {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => Ok(p.path.clone()),
        _ => Err(syn::Error::new_spanned(expr, expected)),
    }
}

/// `crate = ::path` or, as tokio and serde spell it, `crate = "::path"`.
fn crate_value(expr: &Expr) -> syn::Result<Path> {
    let expected = "expected a path to the livecheck crate: `crate = ::livecheck`";
    match lit(expr) {
        Some(Lit::Str(s)) => s
            .parse::<Path>()
            .map_err(|_| syn::Error::new_spanned(s, expected)),
        _ => path_value(expr, expected),
    }
}

/// A parameter of the case fn, as the expansion uses it.
#[derive(Debug)]
pub(crate) struct Param {
    /// The name arguments are known by in a test execution: the ident, or `arg<i>`.
    name: String,
    /// What `trigger` calls the parameter: the user's ident where it can, else `__livecheck_argN`.
    local: Ident,
    ty: Type,
}

/// Checks that the fn can be a case and returns its parameters; every problem is reported.
pub(crate) fn check_signature(func: &ItemFn) -> syn::Result<Vec<Param>> {
    let sig = &func.sig;
    let mut errors = Errors::default();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "`#[livecheck::case]` requires an async fn",
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "a case cannot be a `const fn`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a case cannot be an `unsafe fn`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "a case cannot have an `extern` ABI",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a case cannot be generic: its arguments are decoded from a test execution, so their \
             types must be known",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a case cannot be variadic",
        ));
    }

    let case_name = sig.ident.unraw().to_string();
    let mut params = Vec::new();
    for (index, input) in sig.inputs.iter().enumerate() {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "a case cannot take `self`: it must be a free async fn, not a method",
                ));
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        match strip_type_groups(&typed.ty) {
            Type::Reference(_) => errors.push(syn::Error::new_spanned(
                &typed.ty,
                "a case parameter must be an owned type (e.g. `String`, not `&str`): its \
                 argument is decoded from the test execution",
            )),
            Type::ImplTrait(_) => errors.push(syn::Error::new_spanned(
                &typed.ty,
                "a case parameter cannot be `impl Trait`: its argument is decoded from the test \
                 execution, so its type must be known",
            )),
            _ => {}
        }
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => Some(&pat.ident),
            _ => None,
        };
        if let Some(ident) = ident {
            if ident.unraw() == case_name {
                errors.push(syn::Error::new_spanned(
                    ident,
                    format!(
                        "a case parameter cannot be named like its case: `{case_name}` becomes \
                         the case's handle, a unit struct, which a parameter cannot shadow"
                    ),
                ));
            }
        }
        let name = ident.map_or_else(|| format!("arg{index}"), |i| i.unraw().to_string());
        let local = match ident {
            // `id` and `scope` are parameters of the generated `trigger` methods.
            Some(ident) if ident != "id" && ident != "scope" => ident.clone(),
            _ => format_ident!("__livecheck_arg{}", index),
        };
        params.push(Param {
            name,
            local,
            ty: (*typed.ty).clone(),
        });
    }
    errors.into_result().map(|()| params)
}

fn strip_type_groups(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => strip_type_groups(&group.elem),
        Type::Paren(paren) => strip_type_groups(&paren.elem),
        other => other,
    }
}

/// Where each attribute of the user's fn goes.
struct SortedAttrs<'a> {
    /// `#[cfg]`: on every generated item, so a case compiled out is entirely gone.
    cfg: Vec<&'a Attribute>,
    /// Docs and `#[deprecated]`: on the handle, which is what users name.
    handle: Vec<&'a Attribute>,
    /// Everything else (lints, `#[tracing::instrument]`, ...): on the fn body.
    body: Vec<&'a Attribute>,
}

fn sort_attrs(attrs: &[Attribute]) -> SortedAttrs<'_> {
    let mut sorted = SortedAttrs {
        cfg: Vec::new(),
        handle: Vec::new(),
        body: Vec::new(),
    };
    for attr in attrs {
        let path = attr.path();
        if path.is_ident("cfg") {
            sorted.cfg.push(attr);
        } else if path.is_ident("doc") || path.is_ident("deprecated") {
            sorted.handle.push(attr);
        } else {
            sorted.body.push(attr);
        }
    }
    sorted
}

/// Writes the handle struct, the registered descriptor, and the `trigger` methods.
pub(crate) fn render(func: &ItemFn, params: &[Param], config: &CaseConfig) -> TokenStream {
    let root = &config.root();
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let fn_name = ident.unraw().to_string();
    let descriptor = format_ident!("__LIVECHECK_CASE_{}", fn_name, span = ident.span());
    let SortedAttrs { cfg, handle, body } = sort_attrs(&func.attrs);

    let name = match &config.name {
        Some(name) => name.to_token_stream(),
        None => quote!(::core::concat!(::core::module_path!(), "::", #fn_name)),
    };
    let options = config.options_tokens(root);
    let param_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let locals: Vec<&Ident> = params.iter().map(|p| &p.local).collect();
    let types: Vec<&Type> = params.iter().map(|p| &p.ty).collect();

    let run = {
        let args: Vec<Ident> = (0..params.len())
            .map(|i| format_ident!("__livecheck_arg{}", i))
            .collect();
        let decode = params
            .iter()
            .zip(&args)
            .enumerate()
            .map(|(i, (param, arg))| {
                let (ty, name) = (&param.ty, &param.name);
                let i = Literal::usize_suffixed(i);
                let call = quote_spanned! {ty.span()=>
                    #root::__private::argument::<#ty>(__livecheck_test, #i, #name)
                };
                quote! {
                    let #arg = match #call {
                        ::core::result::Result::Ok(__livecheck_value) => __livecheck_value,
                        ::core::result::Result::Err(__livecheck_error) => {
                            return #root::__private::ready_err(__livecheck_error);
                        }
                    };
                }
            });
        let output_span = match &func.sig.output {
            syn::ReturnType::Default => ident.span(),
            syn::ReturnType::Type(_, ty) => ty.span(),
        };
        // Whole call on the return type's span: a return type that is no case result is
        // reported there.
        let mut handle = ident.clone();
        handle.set_span(output_span);
        let call = quote_spanned! {output_span=>
            #root::__private::into_case_result(#handle::__livecheck_body(#(#args),*).await)
        };
        // On the fn's name: a body whose future is not `Send` is reported there.
        let boxed = quote_spanned! {ident.span()=>
            ::std::boxed::Box::pin(async move { #call })
        };
        quote! {{
            fn __livecheck_run(
                __livecheck_test: &#root::TestExecution,
            ) -> #root::__private::BoxFuture<#root::Result> {
                #(#decode)*
                #boxed
            }
            __livecheck_run
        }}
    };

    let fake_request = match &config.fake_request {
        None => quote!(::core::option::Option::None),
        Some(path) => {
            let call = quote_spanned! {path.span()=>
                ::std::boxed::Box::pin(async move {
                    #root::__private::into_case_result(#path(__livecheck_request).await)
                })
            };
            quote! {
                ::core::option::Option::Some({
                    fn __livecheck_fake_request(
                        __livecheck_request: #root::FakeRequest,
                    ) -> #root::__private::BoxFuture<#root::Result> {
                        #call
                    }
                    __livecheck_fake_request
                })
            }
        }
    };

    let hooks = match &config.hooks {
        None => quote!(::core::option::Option::None),
        Some(path) => {
            // On the path: a type that is not hooks, or has no `Default`, is reported there.
            let instance = quote_spanned! {path.span()=>
                #root::__private::hooks::<#path>(&__LIVECHECK_HOOKS)
            };
            quote! {
                ::core::option::Option::Some({
                    fn __livecheck_hooks() -> &'static dyn #root::__private::ErasedHooks {
                        static __LIVECHECK_HOOKS: ::std::sync::OnceLock<#path> =
                            ::std::sync::OnceLock::new();
                        #instance
                    }
                    __livecheck_hooks
                })
            }
        }
    };

    let encode = params.iter().map(|param| {
        let (local, name) = (&param.local, &param.name);
        quote_spanned! {param.ty.span()=>
            #root::__private::encode_arg(#descriptor.name, #name, &#local)?
        }
    });

    let mut body_sig = func.sig.clone();
    body_sig.ident = Ident::new("__livecheck_body", ident.span());
    // The body's assertions become livecheck's, so a failed one is a FAIL, not an ERROR.
    let block = rewrite_assertions(func.block.to_token_stream(), root);

    let trigger_doc = format!(
        " Triggers a test of the `{fn_name}` case now, under test id `id`, with these arguments.\n\
         \n\
         `id` is a string, or `livecheck::AutoId` for a new UUID (v4), as Faust generates one\n\
         when no id is given.\n\
         \n\
         The arguments are serialized into the published test execution, in the order of the\n\
         case fn's parameters, and a livecheck worker runs the case with them. Unlike\n\
         `maybe_trigger`, this ignores the case's `probability`.\n\
         \n\
         Returns the test execution, queued for Kafka: this never waits on the broker. A test\n\
         that cannot be queued is dropped and counted (`Client::counters`); await\n\
         `Client::flush` to wait for delivery.\n\
         \n\
         # Errors\n\
         \n\
         A `TriggerError` when an argument does not serialize, or when no livecheck client is\n\
         installed in this process."
    );
    let maybe_trigger_doc = format!(
        " Triggers a test of the `{fn_name}` case with the case's `probability`.\n\
         \n\
         Draws a number uniformly from `[0, 1)`: when it is below the probability, this is\n\
         `trigger` and returns `Ok(Some(test))`; otherwise nothing is published and it returns\n\
         `Ok(None)`. Call it on live traffic to test a sample of it.\n\
         \n\
         # Errors\n\
         \n\
         As `trigger`, when the test is drawn."
    );
    let maybe_trigger_scope_doc = format!(
        " Triggers a test of the `{fn_name}` case with the case's `probability`, then runs\n\
         `scope` with the test, if one was triggered, as the current test: Faust's\n\
         `async with case.maybe_trigger(id, ...) as test:`.\n\
         \n\
         `scope` gets `Some(test)` when the test was drawn and `None` otherwise, and runs\n\
         either way: it is the service's own work. Inside it, signals sent, and Kafka messages\n\
         and HTTP requests made with livecheck's propagation, carry the test.\n\
         \n\
         # Errors\n\
         \n\
         As `trigger`, when the test is drawn; `scope` does not run then."
    );

    quote! {
        #(#cfg)*
        #(#handle)*
        #[allow(non_camel_case_types, dead_code)]
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #ident;

        #(#cfg)*
        #[doc(hidden)]
        #[allow(non_upper_case_globals, deprecated, clippy::needless_update)]
        static #descriptor: #root::__private::CaseDescriptor = #root::__private::CaseDescriptor {
            name: <#ident as #root::Case>::NAME,
            options: #options,
            params: &[#(#param_names),*],
            run: #run,
            fake_request: #fake_request,
            hooks: #hooks,
            file: ::core::file!(),
            line: ::core::line!(),
        };

        #(#cfg)*
        #root::__private::inventory::submit! {
            #root::__private::CaseRegistration(&#descriptor)
        }

        #(#cfg)*
        // Keeps "the trait `Case` is implemented for ..." (every case in the build) out of the
        // error for a signal bound to something that is not a case.
        #[diagnostic::do_not_recommend]
        #[allow(deprecated)]
        impl #root::Case for #ident {
            const NAME: &'static ::core::primitive::str = #name;

            fn descriptor(&self) -> &'static #root::__private::CaseDescriptor {
                &#descriptor
            }
        }

        #(#cfg)*
        #[allow(dead_code, deprecated, clippy::too_many_arguments)]
        impl #ident {
            #[doc = #trigger_doc]
            #vis async fn trigger(
                &self,
                id: impl #root::IntoTestId,
                #(#locals: #types),*
            ) -> ::core::result::Result<#root::TestExecution, #root::TriggerError> {
                #root::__private::trigger(
                    &#descriptor,
                    #root::__private::test_id(id),
                    ::std::vec![#(#encode),*],
                )
                .await
            }

            #[doc = #maybe_trigger_doc]
            #vis async fn maybe_trigger(
                &self,
                id: impl #root::IntoTestId,
                #(#locals: #types),*
            ) -> ::core::result::Result<
                ::core::option::Option<#root::TestExecution>,
                #root::TriggerError,
            > {
                if !#root::__private::should_trigger(&#descriptor) {
                    return ::core::result::Result::Ok(::core::option::Option::None);
                }
                ::core::result::Result::map(
                    Self::trigger(self, id, #(#locals),*).await,
                    ::core::option::Option::Some,
                )
            }

            #[doc = #maybe_trigger_scope_doc]
            #vis async fn maybe_trigger_scope<__LivecheckScope, __LivecheckFuture>(
                &self,
                id: impl #root::IntoTestId,
                #(#locals: #types,)*
                scope: __LivecheckScope,
            ) -> ::core::result::Result<
                <__LivecheckFuture as ::core::future::Future>::Output,
                #root::TriggerError,
            >
            where
                __LivecheckScope: ::core::ops::FnOnce(
                    ::core::option::Option<::std::sync::Arc<#root::TestExecution>>,
                ) -> __LivecheckFuture,
                __LivecheckFuture: ::core::future::Future,
            {
                let __livecheck_test = Self::maybe_trigger(self, id, #(#locals),*).await?;
                ::core::result::Result::Ok(
                    #root::__private::run_in_scope(__livecheck_test, scope).await,
                )
            }

            #[doc(hidden)]
            #(#body)*
            #body_sig #block
        }
    }
}

/// The std assertion macros a case's body may use, each rewritten to livecheck's own.
const ASSERTIONS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
];

/// Rewrites the std assertion macros in `tokens` (a case's body) to livecheck's: `assert!`,
/// `std::assert!`, `::core::assert_eq!` and the like become `<root>::assert!`, ... Those panic
/// with a payload the runner recognizes, so a failed assertion is a FAIL whatever its message.
///
/// A token-level rewrite, on the body as written (never re-parsed): an assertion inside a
/// closure, a nested block or another macro's input is rewritten too. Another crate's macro of
/// the same name called by its path (`pretty_assertions::assert_eq!`) is left alone.
pub(crate) fn rewrite_assertions(tokens: TokenStream, root: &Path) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out: Vec<TokenTree> = Vec::with_capacity(trees.len());
    for (i, tree) in trees.iter().enumerate() {
        match tree {
            TokenTree::Group(group) => {
                let mut rewritten =
                    Group::new(group.delimiter(), rewrite_assertions(group.stream(), root));
                rewritten.set_span(group.span());
                out.push(rewritten.into());
            }
            TokenTree::Ident(ident)
                if ASSERTIONS.iter().any(|name| ident == name)
                    && matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!') =>
            {
                match std_prefix_len(&out) {
                    Some(len) => {
                        out.truncate(out.len() - len);
                        // The whole path on the assertion's span: the panic's location and
                        // any error point at the assertion, not at the attribute.
                        let path = quote!(#root::#ident).into_iter().map(|mut tree| {
                            respan(&mut tree, ident.span());
                            tree
                        });
                        out.extend(path);
                    }
                    None => out.push(tree.clone()),
                }
            }
            other => out.push(other.clone()),
        }
    }
    out.into_iter().collect()
}

fn respan(tree: &mut TokenTree, span: Span) {
    match tree {
        TokenTree::Group(group) => {
            let stream = group
                .stream()
                .into_iter()
                .map(|mut tree| {
                    respan(&mut tree, span);
                    tree
                })
                .collect();
            let mut respanned = Group::new(group.delimiter(), stream);
            respanned.set_span(span);
            *group = respanned;
        }
        other => other.set_span(span),
    }
}

/// How many tokens before an assertion's name are its path, when the macro is std's: none (a
/// bare `assert!`), `std::`/`core::` (3) or `::std::`/`::core::` (5). `None`: another path.
fn std_prefix_len(before: &[TokenTree]) -> Option<usize> {
    let is_colon =
        |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
    let at = |back: usize| before.len().checked_sub(back).and_then(|i| before.get(i));
    if !is_colon(at(1)) {
        return Some(0);
    }
    if !is_colon(at(2)) {
        return None;
    }
    match at(3) {
        Some(TokenTree::Ident(krate)) if krate == "std" || krate == "core" => {}
        _ => return None,
    }
    if !is_colon(at(4)) {
        return Some(3);
    }
    // `::std::assert!`, unless it continues a longer path (`a::std::assert!`).
    if is_colon(at(5)) && !matches!(at(6), Some(TokenTree::Ident(_))) {
        Some(5)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and sets `args` the way [`expand`] does, then builds.
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
            config.options_tokens(&root).to_string(),
            ":: livecheck :: __private :: CaseOptions :: DEFAULT"
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
        let path = |p: &Path| p.to_token_stream().to_string();
        assert_eq!(path(config.fake_request.as_ref().unwrap()), "fake :: send");
        assert_eq!(path(config.hooks.as_ref().unwrap()), "my :: Hooks");
        assert_eq!(path(&config.root()), ":: renamed");

        let options = config.options_tokens(&config.root()).to_string();
        for field in [
            "probability : 0.25f64",
            "warn_stalled_after : :: core :: time :: Duration :: from_nanos (60000000000u64)",
            "frequency : :: core :: option :: Option :: Some (:: core :: time :: Duration",
            "url_timeout_connect : :: core :: option :: Option :: Some (",
            "active : false",
            "max_history : 7usize",
            "url_error_retries : 0u32",
            "url_error_delay_backoff : 2f64",
            "max_runtime : :: core :: option :: Option :: Some (:: core :: time :: Duration :: from_nanos (300000000000u64))",
            "log_passes : false",
            ".. :: renamed :: __private :: CaseOptions :: DEFAULT",
        ] {
            assert!(options.contains(field), "{field} not in {options}");
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
            config.root().to_token_stream().to_string(),
            ":: my_livecheck"
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

    fn signature(item: &str) -> syn::Result<Vec<Param>> {
        check_signature(&syn::parse_str(item).unwrap())
    }

    fn signature_errors(item: &str) -> Vec<String> {
        signature(item)
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn signature_checks() {
        assert_eq!(
            signature_errors("fn f() {}"),
            ["`#[livecheck::case]` requires an async fn"]
        );
        let e = signature_errors("async fn f(&self) {}");
        assert!(e[0].starts_with("a case cannot take `self`"));
        let e = signature_errors("async fn f<T>(x: T) {}");
        assert!(e[0].starts_with("a case cannot be generic"));
        let e = signature_errors("async fn f() where u8: Copy {}");
        assert!(e[0].starts_with("a case cannot be generic"));
        let e = signature_errors("unsafe extern \"C\" fn f(x: &str, y: impl Copy, ...) {}");
        assert_eq!(e.len(), 6, "{e:?}");
        assert!(e[0].contains("requires an async fn"));
        assert!(e[1].contains("`unsafe fn`"));
        assert!(e[2].contains("`extern` ABI"));
        assert!(e[3].contains("variadic"));
        assert!(e[4].starts_with("a case parameter must be an owned type"));
        assert!(e[5].starts_with("a case parameter cannot be `impl Trait`"));
        let e = signature_errors("async fn order(order: u8) {}");
        assert!(e[0].starts_with("a case parameter cannot be named like its case"));
    }

    #[test]
    fn parameter_names() {
        let params =
            signature("async fn f(side: String, (a, b): (u8, u8), mut n: u8, id: u8, _: u8) {}")
                .unwrap();
        let names: Vec<_> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["side", "arg1", "n", "id", "arg4"]);
        let locals: Vec<_> = params.iter().map(|p| p.local.to_string()).collect();
        assert_eq!(
            locals,
            [
                "side",
                "__livecheck_arg1",
                "n",
                "__livecheck_arg3",
                "__livecheck_arg4"
            ]
        );
        let params = signature("async fn f(r#type: u8) {}").unwrap();
        assert_eq!(params[0].name, "type");
        assert_eq!(params[0].local.to_string(), "r#type");
    }

    fn expand_str(args: &str, item: &str) -> String {
        expand(args.parse().unwrap(), item.parse().unwrap()).to_string()
    }

    #[test]
    fn expansion_shape() {
        let out = expand_str(
            "probability = 1, fake_request = fake",
            "/// Docs.\n#[allow(unused)] pub async fn check(side: String) -> livecheck::Result { Ok(()) }",
        );
        for piece in [
            "# [doc = \" Docs.\"] # [allow (non_camel_case_types , dead_code)]",
            "pub struct check ;",
            "static __LIVECHECK_CASE_check : :: livecheck :: __private :: CaseDescriptor",
            "name : < check as :: livecheck :: Case > :: NAME",
            "probability : 1f64",
            "params : & [\"side\"]",
            "fn __livecheck_run (__livecheck_test : & :: livecheck :: TestExecution ,)",
            ":: livecheck :: __private :: argument :: < String > (__livecheck_test , 0usize , \"side\")",
            "fn __livecheck_fake_request (__livecheck_request : :: livecheck :: FakeRequest ,)",
            ":: livecheck :: __private :: inventory :: submit !",
            "const NAME : & 'static :: core :: primitive :: str = :: core :: concat ! (:: core :: module_path ! () , \"::\" , \"check\") ;",
            "pub async fn trigger (& self , id : impl :: livecheck :: IntoTestId , side : String)",
            ":: livecheck :: __private :: test_id (id)",
            "pub async fn maybe_trigger_scope < __LivecheckScope , __LivecheckFuture > (& self , id : impl :: livecheck :: IntoTestId , side : String , scope : __LivecheckScope ,)",
            "hooks : :: core :: option :: Option :: None",
            ":: livecheck :: __private :: encode_arg (__LIVECHECK_CASE_check . name , \"side\" , & side) ?",
            "pub async fn maybe_trigger",
            "# [doc (hidden)] # [allow (unused)] async fn __livecheck_body (side : String) -> livecheck :: Result { Ok (()) }",
        ] {
            assert!(out.contains(piece), "{piece}\nnot in\n{out}");
        }
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn hooks_expand_to_one_instance_on_the_path() {
        let out = expand_str("hooks = my::Hooks", "async fn check() {}");
        for piece in [
            "static __LIVECHECK_HOOKS : :: std :: sync :: OnceLock < my :: Hooks >",
            ":: livecheck :: __private :: hooks :: < my :: Hooks > (& __LIVECHECK_HOOKS)",
            "hooks : :: core :: option :: Option :: Some",
        ] {
            assert!(out.contains(piece), "{piece}\nnot in\n{out}");
        }
    }

    /// Issue 10, behaviour 3: every assertion of the body is livecheck's, whatever its form;
    /// other paths and other macros are left alone. (input, output) of the rewrite.
    #[test]
    fn assertions_in_the_body_become_livecheck_s() {
        let table = [
            ("assert!(a)", ":: livecheck :: assert ! (a)"),
            (
                "assert!(a, \"m {}\", x)",
                ":: livecheck :: assert ! (a , \"m {}\" , x)",
            ),
            ("assert_eq!(a, b)", ":: livecheck :: assert_eq ! (a , b)"),
            (
                "assert_ne!(a, b, \"m\")",
                ":: livecheck :: assert_ne ! (a , b , \"m\")",
            ),
            ("debug_assert!(a)", ":: livecheck :: debug_assert ! (a)"),
            (
                "std::assert_eq!(a, b)",
                ":: livecheck :: assert_eq ! (a , b)",
            ),
            ("::core::assert!(a)", ":: livecheck :: assert ! (a)"),
            (
                "let f = || { if x { assert!(y) } };",
                "let f = || { if x { :: livecheck :: assert ! (y) } } ;",
            ),
            (
                "vec![assert_eq!(a, b)]",
                "vec ! [:: livecheck :: assert_eq ! (a , b)]",
            ),
            // Not std's: left as written.
            (
                "pretty_assertions::assert_eq!(a, b)",
                "pretty_assertions :: assert_eq ! (a , b)",
            ),
            ("x::std::assert!(a)", "x :: std :: assert ! (a)"),
            ("::assert!(a)", ":: assert ! (a)"),
            ("assert(a)", "assert (a)"),
            (
                "let assert = 1; panic!(\"assertion\")",
                "let assert = 1 ; panic ! (\"assertion\")",
            ),
            (
                "macro_rules! assert { () => {} }",
                "macro_rules ! assert { () => { } }",
            ),
        ];
        let root: Path = syn::parse_quote!(::livecheck);
        for (input, want) in table {
            let out = rewrite_assertions(input.parse().unwrap(), &root).to_string();
            assert_eq!(out, want, "{input}");
        }
        let renamed: Path = syn::parse_quote!(::renamed);
        let out = rewrite_assertions("assert!(a)".parse().unwrap(), &renamed).to_string();
        assert_eq!(out, ":: renamed :: assert ! (a)");
    }

    #[test]
    fn renamed_crate_is_the_only_root() {
        let out = expand_str(
            "crate = ::renamed, name = \"x\"",
            "async fn check(a: u8, (b, c): (u8, u8)) {}",
        );
        assert!(!out.contains("livecheck ::"), "{out}");
        assert!(
            out.contains(":: renamed :: __private :: CaseDescriptor"),
            "{out}"
        );
        assert!(out.contains("const NAME : & 'static :: core :: primitive :: str = \"x\""));
    }

    #[test]
    fn bad_options_still_expand_a_good_fn() {
        let out = expand_str("probability = 3", "async fn check() {}");
        assert!(out.contains("struct check"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.contains(":: livecheck :: __private :: CaseOptions :: DEFAULT"),
            "{out}"
        );
    }

    #[test]
    fn a_bad_fn_is_left_as_written() {
        let out = expand_str("probability = 3", "fn check() {}");
        assert!(out.starts_with("fn check () { }"), "{out}");
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        let out = expand_str("", "struct NotAFn;");
        assert!(out.starts_with("struct NotAFn ;"), "{out}");
        assert!(out.contains("requires an async fn"), "{out}");
    }

    #[test]
    fn cfg_goes_on_every_item() {
        let out = expand_str("", "#[cfg(feature = \"x\")] async fn check() {}");
        assert_eq!(out.matches("# [cfg (feature = \"x\")]").count(), 5, "{out}");
    }
}
