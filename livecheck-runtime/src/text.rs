//! Text from records is data, not markup: what a test id, a case name or an error text read
//! from Kafka may hold is shown escaped wherever it meets a terminal, a log line or an alert.
//!
//! - [`Escaped`]: control characters (newlines, `ESC`, ...) written as Rust escapes (`\n`,
//!   `\u{1b}`), so a forged id cannot start a log line of its own or colour a terminal.
//! - [`slack_escape`]: Slack's three control characters (`&`, `<`, `>`) as entities, so an
//!   error text cannot mention `<!channel>` or disguise a link.
//!
//! And the other way round, what is ours but must not be shown whole: URLs in logs and `Debug`
//! output lose their user, password, query and fragment (`hide_url_secrets`, crate-internal).

use std::fmt;

/// Shows a string with its control characters escaped (Rust's escapes: `\n`, `\t`,
/// `\u{1b}`); everything else, Unicode included, as it is: `"a\nb\x1b[31m"` shows as
/// `a\nb\u{1b}[31m`, `"commande-é"` as itself.
#[derive(Clone, Copy)]
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        // The common case (nothing to escape) writes the text in one piece.
        if !text.chars().any(needs_escape) {
            return f.write_str(text);
        }
        for c in text.chars() {
            if needs_escape(c) {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

/// Formatted arguments shown as [`Escaped`] shows a string, escaped as they are written (no
/// intermediate `String`): `livecheck::log!` lines, whose arguments may come from a record.
#[derive(Clone, Copy)]
pub(crate) struct EscapedArgs<'a>(pub(crate) fmt::Arguments<'a>);

impl fmt::Display for EscapedArgs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Writes every piece it is given escaped.
        struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for Escaping<'_, '_> {
            fn write_str(&mut self, piece: &str) -> fmt::Result {
                fmt::Display::fmt(&Escaped(piece), self.0)
            }
        }
        fmt::write(&mut Escaping(f), self.0)
    }
}

/// Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: what can
/// break a line or drive a terminal.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// `text` made safe for Slack's markup (and Mattermost's, which shares it): `&`, `<` and `>`
/// as `&amp;`, `&lt;` and `&gt;`, as Slack documents. Nothing else needs escaping there.
#[cfg_attr(not(feature = "ops"), allow(dead_code))]
pub(crate) fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` with the secrets of every URL in it hidden, for logs, errors and `Debug` output:
/// the `user:password@` is taken out, and the query and the fragment (where tokens travel,
/// `?api_key=...`) become `?<hidden>` / `#<hidden>`. A URL runs from its `scheme://` to the first
/// whitespace, quote or angle bracket; a `)` closing it (reqwest writes `(url)`) stays.
///
/// `https://user:pw@host/v1/traces?token=abc` → `https://host/v1/traces?<hidden>`.
#[cfg_attr(not(any(feature = "otel", feature = "cli")), allow(dead_code))]
pub(crate) fn hide_url_secrets(text: &str) -> String {
    hide_in_urls(text, true)
}

/// `text` with the `user:password@` of every URL in it taken out, query kept: for a URL whose
/// query is what the reader needs (a case's request, in its test's report).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn hide_url_userinfo(text: &str) -> String {
    hide_in_urls(text, false)
}

#[cfg_attr(not(feature = "http"), allow(dead_code))]
fn hide_in_urls(text: &str, query: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        let authority_end = url.find(['/', '?', '#', ')']).unwrap_or(url.len());
        let url = match url[..authority_end].rfind('@') {
            Some(userinfo) => &url[userinfo + 1..],
            None => url,
        };
        match url.find(['?', '#']).filter(|_| query) {
            Some(secret) => {
                let closing = url.len() - url.trim_end_matches(')').len();
                out.push_str(&url[..=secret]);
                out.push_str("<hidden>");
                out.push_str(&url[url.len() - closing..]);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of the docs of [`Escaped`] and [`slack_escape`].
    #[test]
    fn documented_examples() {
        assert_eq!(Escaped("a\nb\x1b[31m").to_string(), "a\\nb\\u{1b}[31m");
        assert_eq!(Escaped("commande-é").to_string(), "commande-é");
        assert_eq!(
            slack_escape("<!channel> & <https://x|login>"),
            "&lt;!channel&gt; &amp; &lt;https://x|login&gt;"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_nothing_else() {
        let forged = "t1\n2026-12-07T00:00:00Z  INFO livecheck: PASS\x1b[31m\r\u{2028}\u{9b}";
        let shown = Escaped(forged).to_string();
        assert!(!shown.chars().any(needs_escape), "{shown}");
        assert_eq!(
            shown,
            "t1\\n2026-12-07T00:00:00Z  INFO livecheck: PASS\\u{1b}[31m\\r\\u{2028}\\u{9b}"
        );
        assert_eq!(Escaped("ordre n°1 — ok").to_string(), "ordre n°1 — ok");
    }

    #[test]
    fn formatted_arguments_are_escaped_piece_by_piece() {
        let id = "x\n\x1b[31m";
        let shown = EscapedArgs(format_args!("checked {id} ({})", 'é')).to_string();
        assert_eq!(shown, "checked x\\n\\u{1b}[31m (é)");
        assert_eq!(EscapedArgs(format_args!("plain")).to_string(), "plain");
    }

    #[test]
    fn slack_markup_is_escaped() {
        assert_eq!(
            slack_escape("a < b && c > d"),
            "a &lt; b &amp;&amp; c &gt; d"
        );
        assert_eq!(slack_escape("plain"), "plain");
    }

    #[test]
    fn urls_lose_their_credentials_query_and_fragment() {
        let table = [
            (
                "https://user:pw@host/v1/traces?token=abc",
                "https://host/v1/traces?<hidden>",
            ),
            (
                "error sending request for url (https://u:p@collector:4318/v1/traces?k=v#f)",
                "error sending request for url (https://collector:4318/v1/traces?<hidden>)",
            ),
            ("(http://u:p@host:1)", "(http://host:1)"),
            (
                "http://host/path#frag and more",
                "http://host/path#<hidden> and more",
            ),
            ("a http://a/b@c b", "a http://a/b@c b"),
            (
                "\"http://x/?t=1\", 'http://y/?t=2'",
                "\"http://x/?<hidden>\", 'http://y/?<hidden>'",
            ),
            ("no url: a@b?c", "no url: a@b?c"),
            ("http://host:4318", "http://host:4318"),
        ];
        for (text, shown) in table {
            assert_eq!(hide_url_secrets(text), shown, "{text}");
        }
        assert_eq!(
            hide_url_userinfo("GET http://me:pw@svc:8080/orders?id=7"),
            "GET http://svc:8080/orders?id=7"
        );
    }
}
