//! Publishing a report: cut down until the broker takes it, replaced by a minimal report when
//! even that is too large, shown to the observers, and the case's report hooks run.

use std::sync::atomic::Ordering;

use crate::text::Escaped;
use crate::transport::TransportError;
use crate::wire::model::{TestExecution, TestReport};

use super::shared::Shared;

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Published {
    /// It is out (whole, cut down, or as a minimal report).
    Out,
    /// Too large for the broker even as a minimal report: dropped, with an ERROR. Its test is
    /// acknowledged all the same: retrying could only fail again, holding a slot for good.
    Dropped,
    /// The broker failed (down, unreachable): try again.
    Failed,
}

/// Publishes a report (if reports are sent) and, if `notify`, shows it to the observers (a
/// retry does not show it twice).
///
/// A report too large for the broker is cut down until it fits ([`TestReport::truncate_to`]):
/// to `max_report_bytes` when its texts alone come near that, and smaller each time the broker
/// still refuses it, down to [`MIN_REPORT_LIMIT`]; one that does not fit even then (its id or
/// case name is itself too large: untrusted input) is replaced by a minimal report — its test's
/// id shortened with a hash, its state kept ([`minimal_report`]); one refused even so is dropped
/// with an ERROR. Each step is one cut (linear in the report's size), never a loop that
/// re-serialises without end.
///
/// `at` is when the verdict fell: every attempt publishes the record with that timestamp.
pub(super) async fn publish(
    shared: &Shared,
    report: &TestReport,
    at: chrono::DateTime<chrono::Utc>,
    notify: bool,
) -> Published {
    let size = |r: &TestReport| crate::wire::codec::encode_report(r).len();
    let mut limit = shared.settings.max_report_bytes;
    let mut cut: Option<TestReport> = None;
    let mut minimal = false;
    match first_cut(report, limit) {
        FirstCut::Whole => {}
        FirstCut::Truncated => {
            let mut smaller = report.clone();
            smaller.truncate_to(limit, size);
            cut = Some(smaller);
        }
        FirstCut::Minimal => {
            minimal = true;
            cut = Some(minimal_report(report));
        }
    }
    loop {
        let current = cut.as_ref().unwrap_or(report);
        let result = if shared.settings.send_reports {
            shared.consume.publish_report(current, at).await
        } else {
            Ok(())
        };
        let error = match result {
            Ok(()) => {
                if minimal {
                    shared.stats.minimal_reports.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(case = %Escaped(cut_text(&current.case_name)),
                        "report too large for the broker even cut down: a minimal report \
                         was published instead");
                } else if cut.is_some() {
                    tracing::warn!(case = %Escaped(cut_text(&current.case_name)), limit,
                        "oversized report truncated");
                }
                if notify {
                    for observer in &shared.observers {
                        observer.on_report(current);
                    }
                }
                // The case's `on_suite_fail` and `post_report` hooks, once it is out.
                let case = shared.cases.get(current.case_name.as_str());
                crate::service::hooks::erased::report_published(
                    case.and_then(|c| c.descriptor.hooks),
                    current,
                )
                .await;
                return Published::Out;
            }
            Err(TransportError::TooLarge) if limit > MIN_REPORT_LIMIT && !minimal => {
                limit = smaller_limit(limit, size(current));
                let mut smaller = cut.take().unwrap_or_else(|| report.clone());
                smaller.truncate_to(limit, size);
                cut = Some(smaller);
                continue;
            }
            Err(TransportError::TooLarge) if !minimal => {
                minimal = true;
                cut = Some(minimal_report(report));
                continue;
            }
            Err(TransportError::TooLarge) => {
                // Not on the report topic, but the outcome is still logged and counted here.
                if notify {
                    for observer in &shared.observers {
                        observer.on_report(current);
                    }
                }
                shared.stats.reports_dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(case = %Escaped(cut_text(&report.case_name)),
                    test = %Escaped(cut_text(report.test.as_ref().map_or("", |t| &t.id))),
                    "report refused by the broker even as a minimal report: dropped, its test \
                     acknowledged");
                return Published::Dropped;
            }
            Err(error) => error,
        };
        if notify {
            for observer in &shared.observers {
                observer.on_report(current);
            }
        }
        shared
            .stats
            .report_publish_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(case = %Escaped(cut_text(&current.case_name)), %error,
            "report not published");
        return Published::Failed;
    }
}

/// How a report first goes to the broker, before any refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FirstCut {
    /// As it is.
    Whole,
    /// Truncated to the limit: its texts (error, traceback) alone come near it.
    Truncated,
    /// As a minimal report: what no cut can shrink (its test's id, the names) leaves no room.
    Minimal,
}

/// How `report` first goes out under `limit` bytes ([`FirstCut`]).
pub(super) fn first_cut(report: &TestReport, limit: usize) -> FirstCut {
    let texts = [&report.error, &report.traceback]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum::<usize>();
    // What no cut can shrink (the test id, the names) is already too large to leave room:
    // the minimal report at once, not a cut per step down to it.
    let uncuttable = report.case_name.len()
        + report
            .test
            .as_ref()
            .map_or(0, |t| t.id.len() + t.case_name.len());
    if uncuttable > MIN_REPORT_LIMIT / 2 {
        FirstCut::Minimal
    } else if texts > limit / 2 {
        FirstCut::Truncated
    } else {
        FirstCut::Whole
    }
}

/// The next limit when the broker refused a report of `size` bytes cut to `limit`: half its
/// size at most, never below [`MIN_REPORT_LIMIT`].
pub(super) fn smaller_limit(limit: usize, size: usize) -> usize {
    limit.min(size / 2).max(MIN_REPORT_LIMIT)
}

/// At most 64 bytes of a record's text, for a log line.
fn cut_text(text: &str) -> &str {
    crate::wire::signing::truncated(text)
}

/// The smallest report that still says what happened: case, state, test (its id shortened
/// with a hash when long, its timestamps kept, no arguments), attempt and trace; the error
/// says that the report was replaced.
pub(super) fn minimal_report(report: &TestReport) -> TestReport {
    TestReport {
        case_name: shorten(&report.case_name),
        state: report.state,
        test: report.test.as_ref().map(|test| TestExecution {
            traceparent: test.traceparent,
            ..TestExecution::new(
                shorten(&test.id),
                shorten(&test.case_name),
                test.timestamp,
                test.expires,
            )
        }),
        runtime: report.runtime,
        signal_latency: Default::default(),
        error: Some(
            "[report too large for the broker: replaced by a minimal report; long ids and \
             names are shortened with a SHA-256 hash]"
                .into(),
        ),
        traceback: None,
        attempt: report.attempt,
        timed_out_signal: None,
        trace_id: report.trace_id.clone(),
    }
}

/// `text` if at most 128 bytes, else its first 64 bytes, `…sha256:` and the first 32 hex
/// digits of its SHA-256: still told apart from others, and searchable.
pub(super) fn shorten(text: &str) -> String {
    if text.len() <= 128 {
        return text.to_owned();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}…sha256:{hex}", crate::wire::signing::truncated(text))
}

/// The smallest size a report is cut down to when the broker refuses larger ones.
pub(super) const MIN_REPORT_LIMIT: usize = 8 * 1024;
