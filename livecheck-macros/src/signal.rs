//! `signal_impl!`, behind the runtime's `signal!`: typed signals bound to a case.
//!
//! The input is `ROOT; DECLARATIONS` (the runtime passes its `$crate` as `ROOT`). Declarations
//! are split at their `;` and each is parsed on its own, so a bad one is reported and the others
//! are still declared.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Path, Token, Type, Visibility};

use crate::errors::Errors;

/// One `<attrs> VIS IDENT: Type for CASE;`.
#[derive(Debug)]
pub(crate) struct SignalDecl {
    attrs: Vec<Attribute>,
    vis: Visibility,
    ident: Ident,
    ty: Type,
    case: Path,
}

impl Parse for SignalDecl {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        // `static` is implied; accept it from those who write it out of habit.
        if input.peek(Token![static]) {
            input.parse::<Token![static]>()?;
        }
        let ident: Ident = input.parse()?;
        let colon: Token![:] = input.parse()?;
        let ty: Type = input.parse()?;
        if !input.peek(Token![for]) {
            return Err(syn::Error::new_spanned(
                quote!(#ident #colon #ty),
                "expected `for <case>`: a signal is bound to a case",
            ));
        }
        input.parse::<Token![for]>()?;
        let case: Path = input.parse()?;
        Ok(SignalDecl {
            attrs,
            vis,
            ident,
            ty,
            case,
        })
    }
}

/// Splits `tokens` at its top-level `;`s (a `;` inside brackets, as in `[u8; 4]`, is in a
/// group and stays), dropping empty pieces.
fn split_at_semicolons(tokens: TokenStream) -> Vec<TokenStream> {
    let mut pieces = vec![TokenStream::new()];
    for tree in tokens {
        match &tree {
            TokenTree::Punct(punct) if punct.as_char() == ';' => pieces.push(TokenStream::new()),
            _ => pieces.last_mut().expect("never empty").extend([tree]),
        }
    }
    pieces.retain(|piece| !piece.is_empty());
    pieces
}

/// `ROOT; DECLARATIONS`: the runtime's `signal!` passes its `$crate` as `ROOT`, so the
/// expansion names the runtime by whatever name the user's crate depends on it.
fn split_root(input: TokenStream) -> syn::Result<(TokenStream, TokenStream)> {
    let mut trees = input.into_iter();
    let mut root = TokenStream::new();
    for tree in trees.by_ref() {
        match &tree {
            TokenTree::Punct(punct) if punct.as_char() == ';' => {
                return Ok((root, trees.collect()));
            }
            _ => root.extend([tree]),
        }
    }
    Err(syn::Error::new(
        Span::call_site(),
        "expected `$crate; declarations`: call this through `livecheck::signal!`",
    ))
}

/// The name a signal travels under: its ident in lower case, as Faust names signal fields.
fn wire_name(ident: &Ident) -> String {
    ident.unraw().to_string().to_lowercase()
}

/// Expands `signal_impl! { ROOT; declarations }`.
///
/// Each declaration is parsed on its own: a bad one is reported, spanned, and the others still
/// expand (their uses add no "cannot find" errors).
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let (root, declarations) = match split_root(input) {
        Ok(split) => split,
        Err(error) => return error.to_compile_error(),
    };
    let mut errors = Errors::default();
    let decls: Vec<SignalDecl> = split_at_semicolons(declarations)
        .into_iter()
        .filter_map(|piece| errors.take(syn::parse2(piece)))
        .collect();
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    let mut statics = Vec::new();
    for decl in &decls {
        let name = wire_name(&decl.ident);
        if let Some(first) = seen.get(&name) {
            let message = if first.unraw() == decl.ident.unraw() {
                format!("duplicate signal `{}`", decl.ident)
            } else {
                format!(
                    "signal `{}` has the same name as `{first}`: both are sent as \"{name}\"",
                    decl.ident
                )
            };
            errors.push(syn::Error::new_spanned(&decl.ident, message));
            continue;
        }
        seen.insert(name.clone(), &decl.ident);
        statics.push(render(decl, &name, &root));
    }
    quote!(#(#statics)* #errors)
}

fn render(decl: &SignalDecl, name: &str, root: &TokenStream) -> TokenStream {
    let SignalDecl {
        attrs,
        vis,
        ident,
        ty,
        case,
    } = decl;
    // On the case's span, so that naming something that is not a case is reported there.
    let case_name = quote_spanned!(case.span()=> <#case as #root::Case>::NAME);
    quote! {
        #(#attrs)*
        #vis static #ident: #root::Signal<#ty> = #root::Signal::new(#name, #case_name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(input: &str) -> String {
        expand(format!("::livecheck; {input}").parse().unwrap()).to_string()
    }

    #[test]
    fn empty() {
        assert_eq!(expand_str(""), "");
    }

    #[test]
    fn declarations() {
        let out = expand_str(
            "/// Sent to the database.\n\
             pub ORDER_SENT: Order for test_order;\n\
             pub(crate) static EXECUTED: Vec<u8> for crate::cases::test_order",
        );
        assert_eq!(
            out,
            "# [doc = \" Sent to the database.\"] \
             pub static ORDER_SENT : :: livecheck :: Signal < Order > = \
             :: livecheck :: Signal :: new (\"order_sent\" , \
             < test_order as :: livecheck :: Case > :: NAME) ; \
             pub (crate) static EXECUTED : :: livecheck :: Signal < Vec < u8 > > = \
             :: livecheck :: Signal :: new (\"executed\" , \
             < crate :: cases :: test_order as :: livecheck :: Case > :: NAME) ;"
        );
    }

    #[test]
    fn trailing_semicolon_is_optional() {
        let one = expand_str("A: u8 for c");
        let two = expand_str("A: u8 for c;");
        assert_eq!(one, two);
    }

    #[test]
    fn duplicates() {
        let out = expand_str("A: u8 for c; B: u8 for c; A: u16 for c; b: u8 for c;");
        assert_eq!(out.matches("static").count(), 2, "{out}");
        assert!(out.contains("duplicate signal `A`"), "{out}");
        assert!(
            out.contains(r#"signal `b` has the same name as `B`: both are sent as \"b\""#),
            "{out}"
        );
    }

    #[test]
    fn missing_case() {
        let err = syn::parse_str::<SignalDecl>("pub A: u8").unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected `for <case>`: a signal is bound to a case"
        );
        assert!(syn::parse_str::<SignalDecl>("A: u8 for").is_err());
        assert!(syn::parse_str::<SignalDecl>("A: u8 for c B: u8 for c").is_err());
    }

    /// One bad declaration is reported; the good ones around it are still declared.
    #[test]
    fn every_good_declaration_expands() {
        let out = expand_str("A: u8 for c; B: u8; C: [u8; 4] for c; D u8 for c; E: u8 for c");
        assert_eq!(out.matches("static").count(), 3, "{out}");
        for ident in ["A", "C", "E"] {
            assert!(out.contains(&format!("static {ident} :")), "{ident}: {out}");
        }
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(out.contains("expected `for <case>`"), "{out}");
    }

    #[test]
    fn root_is_what_the_runtime_passes() {
        let out = expand(quote!(::renamed; A: u8 for c)).to_string();
        assert!(!out.contains("livecheck"), "{out}");
        assert!(
            crate::tokens(&out).contains(&crate::tokens(
                "::renamed::Signal<u8> = ::renamed::Signal::new"
            )),
            "{out}"
        );
        let out = expand(quote!(A: u8 for c)).to_string();
        assert!(
            out.contains("call this through `livecheck::signal!`"),
            "{out}"
        );
    }
}
