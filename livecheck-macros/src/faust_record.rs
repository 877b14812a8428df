//! `#[faust_record(ns = "...")]`: makes a struct's serde impls write and read Faust's record
//! marker (`"__faust": {"ns": ...}`).
//!
//! A derive cannot do this: serde's derive owns `Serialize` and `Deserialize`, and the only way
//! to wrap what it generates is `#[serde(remote = "Self")]`, which turns its impls into inherent
//! fns (`Order::serialize(&order, serializer)`) that another impl can call. Only an attribute can
//! add that to the item, so this is one, placed above the `#[derive]`. The trait impls written
//! here call serde's fns through the runtime's `RecordSerializer` / `RecordDeserializer`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, ItemStruct, LitStr, Path};

use crate::errors::Errors;

/// The options of the attribute.
#[derive(Debug, Default)]
pub(crate) struct RecordConfig {
    ns: Option<LitStr>,
    krate: Option<Path>,
}

impl RecordConfig {
    /// Parses `ns = "..."` and `crate = path`; unknown or repeated keys are errors.
    pub(crate) fn parse(args: TokenStream) -> syn::Result<RecordConfig> {
        let mut config = RecordConfig::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("ns") {
                if config.ns.is_some() {
                    return Err(meta.error("duplicate option `ns`"));
                }
                let ns: LitStr = meta.value()?.parse()?;
                let text = ns.value();
                if text.trim().is_empty() || text.chars().any(char::is_whitespace) {
                    return Err(syn::Error::new_spanned(
                        &ns,
                        "`ns` is the Faust record's namespace, e.g. \"myapp.models.Order\"",
                    ));
                }
                config.ns = Some(ns);
                Ok(())
            } else if meta.path.is_ident("crate") {
                if config.krate.is_some() {
                    return Err(meta.error("duplicate option `crate`"));
                }
                let value = meta.value()?;
                config.krate = Some(if value.peek(LitStr) {
                    value.parse::<LitStr>()?.parse()?
                } else {
                    value.parse()?
                });
                Ok(())
            } else {
                Err(meta.error("unknown option; valid options are: ns, crate"))
            }
        });
        syn::parse::Parser::parse2(parser, args)?;
        Ok(config)
    }
}

/// Which serde derives the struct has.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Derives {
    serialize: bool,
    deserialize: bool,
}

/// Finds `Serialize` / `Deserialize` in the struct's `#[derive(...)]` lists (by last segment, so
/// `serde::Serialize` counts).
pub(crate) fn serde_derives(attrs: &[Attribute]) -> Derives {
    let mut derives = Derives::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let _ = attr.parse_nested_meta(|meta| {
            match meta.path.segments.last().map(|s| s.ident.to_string()) {
                Some(name) if name == "Serialize" => derives.serialize = true,
                Some(name) if name == "Deserialize" => derives.deserialize = true,
                _ => {}
            }
            Ok(())
        });
    }
    derives
}

/// `#[serde(...)]` container options that make the type something other than a map of its
/// fields, or that this attribute sets itself.
const CONFLICTING_SERDE: &[(&str, &str)] = &[
    ("remote", "`#[livecheck::faust_record]` sets `#[serde(remote = \"Self\")]` itself"),
    ("transparent", "a Faust record is an object of its fields; `#[serde(transparent)]` makes it its one field's value"),
    ("into", "a Faust record is an object of its fields; `#[serde(into = ...)]` writes another type"),
];

fn check_serde_options(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            for (name, why) in CONFLICTING_SERDE {
                if meta.path.is_ident(name) {
                    errors.push(syn::Error::new_spanned(&meta.path, *why));
                }
            }
            // Skip the value, if any, to reach the next option.
            if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                meta.parse_nested_meta(|_| Ok(()))?;
            }
            Ok(())
        });
    }
}

/// Expands `#[faust_record(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let parsed = RecordConfig::parse(args);
    let options_ok = parsed.is_ok();
    let config = errors.take(parsed).unwrap_or_default();
    let strukt: ItemStruct = match syn::parse2(item.clone()) {
        Ok(strukt) => strukt,
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                "`#[livecheck::faust_record]` applies to a struct with named fields",
            ));
            return quote!(#item #errors);
        }
    };
    if config.ns.is_none() && options_ok {
        errors.push(syn::Error::new(
            Span::call_site(),
            "missing `ns = \"...\"`: the Faust record's namespace, e.g. \
             `#[livecheck::faust_record(ns = \"myapp.models.Order\")]`",
        ));
    }
    if !matches!(strukt.fields, Fields::Named(_)) {
        errors.push(syn::Error::new(
            strukt.fields.span(),
            "a Faust record is an object: `#[livecheck::faust_record]` needs named fields",
        ));
    }
    if !strukt.generics.params.is_empty() || strukt.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &strukt.generics,
            "a Faust record is one concrete class: `#[livecheck::faust_record]` takes no generics",
        ));
    }
    let derives = serde_derives(&strukt.attrs);
    if derives == Derives::default() {
        errors.push(syn::Error::new_spanned(
            &strukt.ident,
            "`#[livecheck::faust_record]` wraps serde's derives: put it above \
             `#[derive(Serialize, Deserialize)]` (attributes below it are not seen)",
        ));
    }
    check_serde_options(&strukt.attrs, &mut errors);
    match (config.ns, errors.into_result()) {
        (Some(ns), Ok(())) => render(&strukt, &ns, config.krate, &derives),
        // Leave the item as written: its own derives still give it serde impls, so uses of the
        // type add no follow-on errors.
        (_, result) => {
            let errors = result.err().map(|e| e.to_compile_error());
            quote!(#item #errors)
        }
    }
}

fn render(strukt: &ItemStruct, ns: &LitStr, krate: Option<Path>, derives: &Derives) -> TokenStream {
    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::livecheck));
    let ident = &strukt.ident;
    let serde = quote!(#krate::faust::__serde);
    // Below the user's attributes: a derive helper belongs after its `#[derive]`.
    let mut strukt = strukt.clone();
    strukt
        .attrs
        .push(syn::parse_quote!(#[serde(remote = "Self")]));
    let serialize = derives.serialize.then(|| {
        quote! {
            #[automatically_derived]
            impl #serde::Serialize for #ident {
                fn serialize<__S: #serde::Serializer>(
                    &self,
                    __serializer: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    // serde's derived code, made an inherent fn by `remote = "Self"`.
                    #ident::serialize(
                        self,
                        #krate::faust::RecordSerializer::new(
                            __serializer,
                            <#ident as #krate::faust::FaustRecord>::NS,
                        ),
                    )
                }
            }
        }
    });
    let deserialize = derives.deserialize.then(|| {
        quote! {
            #[automatically_derived]
            impl<'de> #serde::Deserialize<'de> for #ident {
                fn deserialize<__D: #serde::Deserializer<'de>>(
                    __deserializer: __D,
                ) -> ::core::result::Result<Self, __D::Error> {
                    #ident::deserialize(#krate::faust::RecordDeserializer::new(__deserializer))
                }
            }
        }
    });
    quote! {
        #strukt
        const _: () = {
            #[automatically_derived]
            impl #krate::faust::FaustRecord for #ident {
                const NS: &'static str = #ns;
            }
            #serialize
            #deserialize
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(args: TokenStream, item: TokenStream) -> String {
        expand(args, item).to_string()
    }

    #[test]
    fn options() {
        let config = RecordConfig::parse(quote!(ns = "a.B", crate = ::renamed)).unwrap();
        assert_eq!(config.ns.unwrap().value(), "a.B");
        assert!(config.krate.is_some());
        let config = RecordConfig::parse(quote!(crate = "::renamed", ns = "a.B")).unwrap();
        assert!(config.krate.is_some());
        for (args, error) in [
            (quote!(ns = "a", ns = "b"), "duplicate option `ns`"),
            (
                quote!(namespace = "a"),
                "unknown option; valid options are: ns, crate",
            ),
            (quote!(ns = "my app"), "namespace"),
            (quote!(ns = 3), "expected string literal"),
        ] {
            let message = RecordConfig::parse(args).unwrap_err().to_string();
            assert!(message.contains(error), "{message}");
        }
    }

    #[test]
    fn derives_are_found_by_last_segment() {
        let strukt: ItemStruct = syn::parse_quote! {
            #[derive(Debug, serde::Serialize)]
            #[derive(Deserialize)]
            struct A { x: u8 }
        };
        assert_eq!(
            serde_derives(&strukt.attrs),
            Derives {
                serialize: true,
                deserialize: true
            }
        );
    }

    #[test]
    fn misuse_is_an_error_and_leaves_the_item() {
        let cases = [
            (
                quote!(),
                quote!(
                    #[derive(Serialize)]
                    struct A {
                        x: u8,
                    }
                ),
                "missing `ns",
            ),
            (
                quote!(ns = "a.A"),
                quote!(
                    #[derive(Serialize)]
                    struct A(u8);
                ),
                "named fields",
            ),
            (
                quote!(ns = "a.A"),
                quote!(
                    #[derive(Serialize)]
                    struct A<T> {
                        x: T,
                    }
                ),
                "no generics",
            ),
            (
                quote!(ns = "a.A"),
                quote!(
                    struct A {
                        x: u8,
                    }
                ),
                "put it above",
            ),
            (
                quote!(ns = "a.A"),
                quote!(
                    #[derive(Serialize)]
                    #[serde(transparent)]
                    struct A {
                        x: u8,
                    }
                ),
                "transparent",
            ),
            (
                quote!(ns = "a.A"),
                quote!(
                    #[derive(Serialize)]
                    #[serde(rename_all = "camelCase", remote = "B")]
                    struct A {
                        x: u8,
                    }
                ),
                "sets `#[serde(remote",
            ),
            (
                quote!(ns = "a.A"),
                quote!(
                    enum A {
                        X,
                    }
                ),
                "struct with named fields",
            ),
        ];
        for (args, item, error) in cases {
            let out = errors_of(args, item);
            assert!(out.contains("compile_error"), "{out}");
            assert!(out.contains(error), "{error}: {out}");
        }
    }

    #[test]
    fn expansion_wraps_serdes_derives() {
        let out = errors_of(
            quote!(ns = "myapp.models.Order"),
            quote!(
                #[derive(Serialize, Deserialize)]
                pub struct Order {
                    id: String,
                }
            ),
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("remote = \"Self\""), "{out}");
        assert!(
            crate::tokens(&out).contains(&crate::tokens(
                "const NS: &'static str = \"myapp.models.Order\""
            )),
            "{out}"
        );
        assert!(
            crate::tokens(&out).contains(&crate::tokens("RecordSerializer::new")),
            "{out}"
        );
        assert!(
            crate::tokens(&out).contains(&crate::tokens("RecordDeserializer::new")),
            "{out}"
        );
        let only_ser = errors_of(
            quote!(ns = "a.A"),
            quote!(
                #[derive(serde::Serialize)]
                struct A {
                    x: u8,
                }
            ),
        );
        assert!(!only_ser.contains("RecordDeserializer"), "{only_ser}");
    }
}
