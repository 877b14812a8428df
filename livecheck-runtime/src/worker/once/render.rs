//! A one-shot run's [`Summary`] as text: the summary printed at the end, and the JSON document
//! of `--json`. The JUnit XML is in [`super::junit`].

use std::fmt;

use super::summary::{Summary, Verdict};

impl Summary {
    /// The summary printed at the end: one line per case, the error and traceback of each
    /// case that did not pass (indented under it, a line of text each), and a total.
    ///
    /// Test ids, errors and tracebacks come from records: their control characters are shown
    /// escaped (`\u{1b}`), so they cannot drive the terminal, and only their own line breaks
    /// start new (indented) lines.
    pub fn render(&self) -> String {
        use crate::text::Escaped;
        use fmt::Write as _;
        let mut out = String::new();
        for case in &self.cases {
            let attempts = case.attempts.len();
            let detail = match (case.verdict, case.last()) {
                (Verdict::Skip, _) => String::new(),
                (_, Some(last)) => {
                    format!(
                        "  {}{}",
                        crate::wire::duration::humanize(case.elapsed),
                        if attempts > 1 {
                            format!(", {attempts} attempts")
                        } else {
                            String::new()
                        }
                    ) + &last
                        .test_id()
                        .map(|id| format!("  test={}", Escaped(id)))
                        .unwrap_or_default()
                }
                (_, None) => String::new(),
            };
            let _ = writeln!(out, "{:<8} {}{detail}", case.verdict, case.case);
            if case.verdict != Verdict::Pass {
                if let Some(error) = case.error() {
                    for line in error.lines() {
                        let _ = writeln!(out, "         {}", Escaped(line));
                    }
                }
                if case.verdict.is_failure() {
                    if let Some(traceback) = case.last().and_then(|a| a.traceback.as_deref()) {
                        for line in traceback.lines() {
                            let _ = writeln!(out, "           {}", Escaped(line));
                        }
                    }
                }
            }
        }
        let _ = write!(
            out,
            "{} case{} in {}: {} passed, {} flaky, {} failed, {} skipped",
            self.cases.len(),
            if self.cases.len() == 1 { "" } else { "s" },
            crate::wire::duration::humanize(self.elapsed),
            self.count(Verdict::Pass),
            self.count(Verdict::Flaky),
            self.cases.iter().filter(|c| c.verdict.is_failure()).count(),
            self.count(Verdict::Skip),
        );
        out
    }

    /// The JSON document of `--json`: the verdicts, and every attempt's report as it is on the
    /// report topic (Faust's record, `docs/kafka.md`).
    pub fn to_json(&self, fail_on_flaky: bool) -> serde_json::Value {
        use serde_json::json;
        let cases: Vec<_> = self
            .cases
            .iter()
            .map(|case| {
                let attempts: Vec<_> = case
                    .attempts
                    .iter()
                    .map(|a| {
                        json!({
                            "state": a.state.as_str(),
                            "elapsed_seconds": a.elapsed.as_secs_f64(),
                            "error": a.error,
                            "traceback": a.traceback,
                            "report": a.report.as_ref().map(|r| {
                                serde_json::from_slice::<serde_json::Value>(
                                    &crate::wire::codec::encode_report(r),
                                )
                                .unwrap_or(serde_json::Value::Null)
                            }),
                        })
                    })
                    .collect();
                json!({
                    "case": case.case,
                    "verdict": case.verdict.as_str(),
                    "error": case.error(),
                    "elapsed_seconds": case.elapsed.as_secs_f64(),
                    "attempts": attempts,
                })
            })
            .collect();
        json!({
            "passed": self.passed(fail_on_flaky),
            "started": self.started.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "totals": {
                "cases": self.cases.len(),
                "passed": self.count(Verdict::Pass),
                "flaky": self.count(Verdict::Flaky),
                "failed": self.count(Verdict::Fail),
                "errors": self.count(Verdict::Error),
                "timeouts": self.count(Verdict::Timeout),
                "skipped": self.count(Verdict::Skip),
            },
            "cases": cases,
        })
    }
}
