//! The body's assertions become livecheck's, so a failed one is a FAIL, not an ERROR.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::quote;
use syn::Path;

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
/// `std::assert!`, `::core::assert_eq!` and the like become `<root>::assertions::assert!`, ...
/// Those panic with a payload the runner recognizes, so a failed assertion is a FAIL whatever
/// its message.
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
                        let path = quote!(#root::assertions::#ident)
                            .into_iter()
                            .map(|mut tree| {
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

    /// Every assertion of the body is livecheck's, whatever its form (so that a failed one is a
    /// FAIL, as Faust's `AssertionError` is);
    /// other paths and other macros are left alone. (input, output) of the rewrite.
    #[test]
    fn assertions_in_the_body_become_livecheck_s() {
        let table = [
            ("assert!(a)", "::livecheck::assertions::assert!(a)"),
            (
                "assert!(a, \"m {}\", x)",
                "::livecheck::assertions::assert!(a, \"m {}\", x)",
            ),
            (
                "assert_eq!(a, b)",
                "::livecheck::assertions::assert_eq!(a, b)",
            ),
            (
                "assert_ne!(a, b, \"m\")",
                "::livecheck::assertions::assert_ne!(a, b, \"m\")",
            ),
            (
                "debug_assert!(a)",
                "::livecheck::assertions::debug_assert!(a)",
            ),
            (
                "std::assert_eq!(a, b)",
                "::livecheck::assertions::assert_eq!(a, b)",
            ),
            ("::core::assert!(a)", "::livecheck::assertions::assert!(a)"),
            (
                "let f = || { if x { assert!(y) } };",
                "let f = || { if x { ::livecheck::assertions::assert!(y) } };",
            ),
            (
                "vec![assert_eq!(a, b)]",
                "vec![::livecheck::assertions::assert_eq!(a, b)]",
            ),
            // Not std's: left as written.
            (
                "pretty_assertions::assert_eq!(a, b)",
                "pretty_assertions::assert_eq!(a, b)",
            ),
            ("x::std::assert!(a)", "x::std::assert!(a)"),
            ("::assert!(a)", "::assert!(a)"),
            ("assert(a)", "assert(a)"),
            (
                "let assert = 1; panic!(\"assertion\")",
                "let assert = 1; panic!(\"assertion\")",
            ),
            (
                "macro_rules! assert { () => {} }",
                "macro_rules! assert { () => {} }",
            ),
        ];
        let root: Path = syn::parse_quote!(::livecheck);
        for (input, want) in table {
            let out = rewrite_assertions(input.parse().unwrap(), &root).to_string();
            assert_eq!(crate::tokens(&out), crate::tokens(want), "{input}");
        }
        let renamed: Path = syn::parse_quote!(::renamed);
        let out = rewrite_assertions("assert!(a)".parse().unwrap(), &renamed).to_string();
        assert_eq!(
            crate::tokens(&out),
            crate::tokens("::renamed::assertions::assert!(a)")
        );
    }
}
