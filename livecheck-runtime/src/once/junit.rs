//! The JUnit XML of a one-shot run (`livecheck run --once --junit FILE`), in the shape CI
//! systems read (Jenkins, GitLab, GitHub test reporters; the same as nextest's and Maven
//! Surefire's):
//!
//! ```xml
//! <testsuites name="livecheck" tests="2" failures="1" errors="0" skipped="0" time="12.345" timestamp="...">
//!   <testsuite name="livecheck" tests="2" failures="1" errors="0" skipped="0" time="12.345" timestamp="...">
//!     <testcase name="orders::test_order" classname="livecheck" time="10.021">
//!       <failure type="TIMEOUT" message="signal order_executed did not arrive within 10.00s">…error, then the traceback…</failure>
//!       <system-out>attempt 1: TIMEOUT test=7a6c… 10.02s</system-out>
//!     </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! - FAIL, ERROR and TIMEOUT: a `<failure>` whose `type` is the state, `message` the error's
//!   first line, and text the whole error then the traceback.
//! - SKIP: `<skipped message="why"/>`.
//! - FLAKY (failed, then passed on a retry): a passing test case with one `<flakyFailure>` per
//!   failed attempt (Surefire's element for reruns), each with a `<stackTrace>`.

use std::fmt::Write as _;

use super::{Attempt, Summary, Verdict};

/// The JUnit XML document of `summary`.
pub fn to_xml(summary: &Summary) -> String {
    let tests = summary.cases.len();
    let failures = summary
        .cases
        .iter()
        .filter(|c| c.verdict.is_failure())
        .count();
    let skipped = summary.count(Verdict::Skip);
    let totals = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" \
         time=\"{:.3}\" timestamp=\"{}\"",
        summary.elapsed.as_secs_f64(),
        summary
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"livecheck\" {totals}>");
    let _ = writeln!(out, "  <testsuite name=\"livecheck\" {totals}>");
    for case in &summary.cases {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"livecheck\" time=\"{:.3}\">",
            attribute(case.case),
            case.elapsed.as_secs_f64()
        );
        match case.verdict {
            Verdict::Skip => {
                let _ = write!(
                    out,
                    "\n      <skipped message=\"{}\"/>",
                    attribute(case.error().unwrap_or("skipped"))
                );
            }
            Verdict::Flaky => {
                for failed in case.attempts.iter().filter(|a| a.state.is_failure()) {
                    let _ = write!(
                        out,
                        "\n      <flakyFailure type=\"{}\" message=\"{}\"><stackTrace>{}</stackTrace></flakyFailure>",
                        failed.state.as_str(),
                        attribute(first_line(failed)),
                        text(&details(failed))
                    );
                }
            }
            verdict if verdict.is_failure() => {
                if let Some(last) = case.last() {
                    let _ = write!(
                        out,
                        "\n      <failure type=\"{}\" message=\"{}\">{}</failure>",
                        last.state.as_str(),
                        attribute(first_line(last)),
                        text(&details(last))
                    );
                }
            }
            _ => {}
        }
        if !case.attempts.is_empty() {
            let mut log = String::new();
            for (n, attempt) in case.attempts.iter().enumerate() {
                let _ = writeln!(
                    log,
                    "attempt {}: {}{} {}",
                    n + 1,
                    attempt.state.as_str(),
                    attempt
                        .test_id()
                        .map(|id| format!(" test={id}"))
                        .unwrap_or_default(),
                    crate::duration::humanize(attempt.elapsed)
                );
            }
            let _ = write!(out, "\n      <system-out>{}</system-out>", text(&log));
        }
        out.push_str("\n    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn first_line(attempt: &Attempt) -> &str {
    attempt
        .error
        .as_deref()
        .and_then(|e| e.lines().next())
        .unwrap_or(attempt.state.as_str())
}

/// The error, then the traceback.
fn details(attempt: &Attempt) -> String {
    let mut out = attempt.error.clone().unwrap_or_default();
    if let Some(traceback) = &attempt.traceback {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(traceback);
    }
    out
}

/// Escapes element text; characters XML 1.0 cannot hold become U+FFFD.
fn text(s: &str) -> String {
    escape(s, false)
}

/// Escapes an attribute value (quotes and line breaks too).
fn attribute(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(text("a < b && c > d\n"), "a &lt; b &amp;&amp; c &gt; d\n");
        assert_eq!(
            attribute("say \"hi\"\nthere"),
            "say &quot;hi&quot;&#10;there"
        );
        assert_eq!(text("bell\u{7}"), "bell\u{FFFD}");
    }
}
