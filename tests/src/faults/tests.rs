use std::collections::BTreeSet;

use livecheck::State;

use super::fleet::{current_assignment, orphan_alarms, status_url};
use super::judge::{judge, FaultWindow};
use super::readers::{Observed, SeenReport};

#[test]
fn reads_assignments_alarms_and_the_status_url_from_a_log() {
    let log = [
        r#"{"fields":{"message":"partitions assigned","partitions":"[0, 1, 2]"}}"#,
        "livecheck: status page at http://127.0.0.1:4321/ (JSON at api/cases)",
        r#"{"fields":{"message":"partitions revoked"}}"#,
        r#"{"fields":{"message":"partitions assigned","partitions":"[3]"}}"#,
    ];
    assert_eq!(
        current_assignment(&log[..1].join("\n")),
        Some(vec![0, 1, 2])
    );
    assert_eq!(current_assignment(&log[..3].join("\n")), Some(vec![]));
    assert_eq!(current_assignment(&log.join("\n")), Some(vec![3]));
    assert_eq!(current_assignment(""), None);
    let alarms = [
        r#"{"timestamp":"2026-12-07T10:00:00.5Z","level":"ERROR","fields":{"message":"orphaned partitions: tests on them are run by no worker","partitions":"[2, 6]"}}"#,
        r#"{"timestamp":"2026-12-07T10:00:10Z","level":"ERROR","fields":{"message":"orphaned partitions: tests on them are run by no worker","partitions":"[6]"}}"#,
        r#"{"level":"INFO","fields":{"message":"orphaned partitions: none any more"}}"#,
    ];
    let first = 1_796_637_600_500; // 2026-12-07T10:00:00.5Z
    assert_eq!(
        orphan_alarms(&alarms.join("\n")),
        (
            2,
            std::collections::BTreeMap::from([(2, first), (6, first)])
        )
    );
    assert_eq!(
        status_url(&log.join("\n")).as_deref(),
        Some("http://127.0.0.1:4321/")
    );
}

#[test]
fn judges_false_failures_duplicates_and_lost_tests() {
    let mut observed = Observed::default();
    let report = |state, at| SeenReport {
        state,
        at,
        attempt: None,
        error: None,
    };
    // a: in flight at the kill (t=1000); b: reported before the kill, then again; c: a TIMEOUT
    // naming no signal; d: lost on an orphaned partition.
    observed.tests.insert("a".into(), (0, 900, 1));
    observed.tests.insert("b".into(), (1, 100, 1));
    observed.tests.insert("c".into(), (2, 100, 1));
    observed.tests.insert("d".into(), (3, 100, 1));
    observed.reports.insert(
        "a".into(),
        vec![report(State::Pass, 1200), report(State::Pass, 1300)],
    );
    observed.reports.insert(
        "b".into(),
        vec![report(State::Pass, 200), report(State::Pass, 1300)],
    );
    observed
        .reports
        .insert("c".into(), vec![report(State::Timeout, 300)]);
    // e: its signal came 0.5 s before the TIMEOUT (late: a true verdict); f: 4 s before (false).
    let timeout = |at| SeenReport {
        error: Some("signal s did not arrive within 10.00s".into()),
        ..report(State::Timeout, at)
    };
    for (id, signal_at) in [("e", 4500), ("f", 1000)] {
        observed.tests.insert(id.into(), (4, 100, 1));
        observed.reports.insert(id.into(), vec![timeout(5000)]);
        observed.signals.insert((id.into(), "s".into()), signal_at);
    }
    let windows = [FaultWindow {
        from: 1000,
        to: 1000,
    }];
    let orphaned = BTreeSet::from([3]);
    let outcome = judge(&observed, 2000, &windows, &orphaned, 0);
    assert_eq!((outcome.triggered, outcome.reported), (6, 5));
    assert_eq!(outcome.twice, 2);
    assert_eq!(outcome.twice_unexplained.len(), 1);
    assert!(outcome.twice_unexplained[0].starts_with("b "));
    assert_eq!(outcome.true_timeouts, 1);
    assert_eq!(
        outcome.false_failures.len(),
        2,
        "{:?}",
        outcome.false_failures
    );
    assert!(outcome.false_failures[0].starts_with("TIMEOUT c "));
    assert!(outcome.false_failures[1].starts_with("TIMEOUT f "));
    assert_eq!(outcome.lost.len(), 1);
    assert!(outcome.lost[0].orphaned);
    assert_eq!(outcome.violations().len(), 3, "{:?}", outcome.violations());
}
