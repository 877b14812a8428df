//! The case fn: its signature, checked without looking into its body.
//!
//! [`CaseFn`] parses the attributes, visibility and signature and keeps the body as raw tokens
//! (as tracing's `#[instrument]` does): a syntax error in the body is then rustc's own error on
//! the body, and the case's handle is still generated, so its uses add no follow-on errors.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::format_ident;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, FnArg, Ident, Pat, Signature, Type, Visibility};

use crate::errors::Errors;

/// `ATTRS VIS SIGNATURE { BODY }`, the body unparsed.
#[derive(Debug)]
pub(crate) struct CaseFn {
    /// The fn's outer attributes (docs, `#[cfg]`, lints...).
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// `{ ... }` as written: never parsed here, so never rejected here.
    pub(crate) body: TokenStream,
}

impl Parse for CaseFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let body = input.step(|cursor| match cursor.token_tree() {
            Some((tree @ TokenTree::Group(_), rest))
                if matches!(&tree, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace) =>
            {
                Ok((TokenStream::from(tree), rest))
            }
            _ => Err(cursor.error("expected the fn's body: `{ ... }`")),
        })?;
        Ok(CaseFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// A parameter of the case fn, as the expansion uses it.
#[derive(Debug)]
pub(crate) struct Param {
    /// The name arguments are known by in a test execution: the ident, or `arg<i>`.
    pub(crate) name: String,
    /// What `trigger` calls the parameter: the user's ident where it can, else `__livecheck_argN`.
    pub(crate) local: Ident,
    pub(crate) ty: Type,
}

/// Checks that the fn can be a case and returns its parameters; every problem is reported.
pub(crate) fn check_signature(sig: &Signature) -> syn::Result<Vec<Param>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(item: &str) -> syn::Result<Vec<Param>> {
        check_signature(&syn::parse_str::<CaseFn>(item).unwrap().sig)
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
}
