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
//!
//! Every text from a record (test ids, errors, tracebacks) is escaped for XML: `&`, `<`, `>`,
//! and in attributes `"` and line breaks; characters XML 1.0 cannot hold (control characters
//! but tab and line breaks) become U+FFFD.

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
                    // One line per attempt, whatever the id (a record's) holds.
                    attempt
                        .test_id()
                        .map(|id| format!(" test={}", crate::text::Escaped(id)))
                        .unwrap_or_default(),
                    crate::wire::duration::humanize(attempt.elapsed)
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

    /// Text from records cannot add elements, attributes or lines of its own.
    #[test]
    fn record_text_is_escaped_in_the_document() {
        let report: crate::TestReport = serde_json::from_value(serde_json::json!({
            "case_name": "once.fail",
            "state": "FAIL",
            "test": {
                "id": "x\n\x1b[31m</system-out><x>",
                "case_name": "once.fail",
                "timestamp": "2026-12-07T00:00:00Z",
                "expires": "2026-12-07T03:00:00Z",
            },
            "runtime": 0.5,
            "error": "a\" b=\"c</failure><injected/>\u{1b}]0;t\u{7}",
            "traceback": "]]><injected/>",
        }))
        .unwrap();
        let summary = Summary {
            cases: vec![crate::worker::once::CaseOutcome {
                case: "once.fail",
                verdict: Verdict::Fail,
                attempts: vec![Attempt::from_report(
                    report,
                    std::time::Duration::from_millis(500),
                )],
                skipped: None,
                elapsed: std::time::Duration::from_millis(500),
            }],
            started: chrono::Utc::now(),
            elapsed: std::time::Duration::from_secs(1),
        };
        let xml = to_xml(&summary);
        assert!(!xml.contains("<injected/>"), "{xml}");
        assert!(!xml.contains("<x>"), "{xml}");
        // No attribute of its own: the quotes of the message attribute are escaped (element
        // text needs no escaped quotes).
        assert!(!xml.contains("message=\"a\" b="), "{xml}");
        assert!(
            !xml.chars().any(|c| c.is_control() && !"\n\t".contains(c)),
            "{xml:?}"
        );
        assert!(
            xml.contains("test=x\\n\\u{1b}[31m&lt;/system-out&gt;&lt;x&gt;"),
            "{xml}"
        );
        assert!(
            xml.contains("message=\"a&quot; b=&quot;c&lt;/failure&gt;"),
            "{xml}"
        );
    }
}
