//! `#[case]`: the options ([`options`]), the fn's signature ([`signature`]), the code written
//! ([`render`]) with the body's assertions made livecheck's ([`assertions`]). Every independent
//! error is reported in one compile.

pub(crate) mod assertions;
pub(crate) mod options;
pub(crate) mod render;
pub(crate) mod signature;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;
use options::{parse_options, CaseConfig};
use signature::{check_signature, CaseFn};

/// Expands `#[case(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: CaseFn = match syn::parse2(item.clone()) {
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
    let params = errors.take(check_signature(&func.sig));

    match params {
        // The fn itself is fine: expand it even if an option is wrong (that option keeps its
        // default), so uses of the case's handle and its signals do not add follow-on errors.
        Some(params) => {
            let expanded = render::render(&func, &params, &config);
            quote!(#expanded #errors)
        }
        // The fn cannot become a case: leave it as written.
        None => quote!(#item #errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "#[doc = \" Docs.\"] #[allow(non_camel_case_types, dead_code)]",
            "pub struct check;",
            "static __LIVECHECK_CASE_check: ::livecheck::__private::CaseDescriptor",
            "name: <check as ::livecheck::Case>::NAME",
            "options.probability = 1f64;",
            "params: &[\"side\"]",
            "fn __livecheck_run(__livecheck_test: &::livecheck::TestExecution,)",
            "::livecheck::__private::argument::<String>(__livecheck_test, 0usize, \"side\")",
            "fn __livecheck_fake_request(__livecheck_request: ::livecheck::FakeRequest,)",
            "::livecheck::__private::inventory::submit!",
            "const NAME: &'static ::core::primitive::str = ::core::concat!(::core::module_path!(), \"::\", \"check\");",
            "pub async fn trigger(&self, id: impl ::livecheck::IntoTestId, side: String)",
            "::livecheck::__private::test_id(id)",
            "pub async fn maybe_trigger_scope<__LivecheckScope, __LivecheckFuture>(&self, id: impl ::livecheck::IntoTestId, side: String, scope: __LivecheckScope,)",
            "hooks: ::core::option::Option::None",
            "::livecheck::__private::encode_arg(__LIVECHECK_CASE_check.name, \"side\", &side)?",
            "pub async fn maybe_trigger",
            "#[doc(hidden)] #[allow(unused)] async fn __livecheck_body(side: String) -> livecheck::Result { Ok(()) }",
        ] {
            assert!(crate::tokens(&out).contains(&crate::tokens(piece)), "{piece}\nnot in\n{out}");
        }
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn hooks_expand_to_one_instance_on_the_path() {
        let out = expand_str("hooks = my::Hooks", "async fn check() {}");
        for piece in [
            "static __LIVECHECK_HOOKS: ::std::sync::OnceLock<my::Hooks>",
            "::livecheck::__private::hooks::<my::Hooks>(&__LIVECHECK_HOOKS)",
            "hooks: ::core::option::Option::Some",
        ] {
            assert!(
                crate::tokens(&out).contains(&crate::tokens(piece)),
                "{piece}\nnot in\n{out}"
            );
        }
    }
    #[test]
    fn renamed_crate_is_the_only_root() {
        let out = expand_str(
            "crate = ::renamed, name = \"x\"",
            "async fn check(a: u8, (b, c): (u8, u8)) {}",
        );
        assert!(!out.contains("livecheck ::"), "{out}");
        assert!(
            crate::tokens(&out).contains(&crate::tokens("::renamed::__private::CaseDescriptor")),
            "{out}"
        );
        assert!(crate::tokens(&out).contains(&crate::tokens(
            "const NAME: &'static ::core::primitive::str = \"x\""
        )));
    }

    #[test]
    fn bad_options_still_expand_a_good_fn() {
        let out = expand_str("probability = 3", "async fn check() {}");
        assert!(out.contains("struct check"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            crate::tokens(&out).contains(&crate::tokens(
                "::livecheck::__private::CaseOptions::DEFAULT"
            )),
            "{out}"
        );
    }

    #[test]
    fn a_bad_fn_is_left_as_written() {
        let out = expand_str("probability = 3", "fn check() {}");
        assert!(
            crate::tokens(&out).starts_with(&crate::tokens("fn check() {}")),
            "{out}"
        );
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        let out = expand_str("", "struct NotAFn;");
        assert!(
            crate::tokens(&out).starts_with(&crate::tokens("struct NotAFn;")),
            "{out}"
        );
        assert!(out.contains("requires an async fn"), "{out}");
    }

    #[test]
    fn cfg_goes_on_every_item() {
        let out = expand_str("", "#[cfg(feature = \"x\")] async fn check() {}");
        // The handle, and the anonymous const with everything else.
        assert_eq!(out.matches("# [cfg (feature = \"x\")]").count(), 2, "{out}");
        assert!(out.contains("const _ : () = {"), "{out}");
    }
}
