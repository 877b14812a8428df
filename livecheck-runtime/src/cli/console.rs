//! What the command prints on stdout: one line per report as it comes, and the list of cases
//! of `livecheck cases`.

use std::time::Duration;

use crate::service::case::CaseDescriptor;
use crate::wire::model::TestReport;
use crate::worker::Observer;

/// `livecheck cases`: each case, with its options and where it is defined.
pub(super) fn list_cases(cases: &[&'static CaseDescriptor]) {
    for case in cases {
        let o = &case.options;
        println!("{}", case.name);
        println!(
            "    probability={} active={} frequency={} fake_request={} \
             warn_stalled_after={:?} test_expires={:?}",
            o.probability,
            o.active,
            o.frequency.map_or("none".into(), |f| format!("{f:?}")),
            case.fake_request.is_some(),
            o.warn_stalled_after,
            o.test_expires,
        );
        println!(
            "    max_consecutive_failures={} state_transition_delay={:?} \
             max_history={} realtime_logs={} defined at {}:{}",
            o.max_consecutive_failures,
            o.state_transition_delay,
            o.max_history,
            o.realtime_logs,
            case.file,
            case.line
        );
    }
}

/// Prints one line per outcome to stdout.
pub(crate) struct ConsoleReports;

impl Observer for ConsoleReports {
    fn on_report(&self, report: &TestReport) {
        println!("{}", format_report_line(report));
    }
}

/// `PASS     orders::test_order  id=...  1.23ms`, or a suite line: always one line. The case
/// name, the test id and the error come from records (anyone may write them), so their control
/// characters are escaped (`\n`, `\u{1b}`): they cannot start a line of their own nor drive the
/// terminal.
pub(crate) fn format_report_line(report: &TestReport) -> String {
    use crate::text::Escaped;
    let error = report
        .error
        .as_deref()
        .map(|e| format!("  {}", Escaped(e)))
        .unwrap_or_default();
    match &report.test {
        Some(test) => format!(
            "{:<8} {}  id={}  {}{}",
            report.state.as_str(),
            Escaped(&report.case_name),
            Escaped(&test.id),
            report
                .runtime
                .map(|r| crate::wire::duration::humanize(Duration::from_secs_f64(r)))
                .unwrap_or_default(),
            error
        ),
        None => format!(
            "SUITE {:<8} {}{}",
            if report.state == crate::State::Pass {
                "RECOVER"
            } else {
                report.state.as_str()
            },
            Escaped(&report.case_name),
            error
        ),
    }
}
