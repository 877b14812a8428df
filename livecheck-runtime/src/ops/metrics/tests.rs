//! The figures counted from reports, the registry's definitions against the docs and the
//! Grafana dashboard, and the mirrored counters.

use std::collections::BTreeMap;

use prometheus::IntCounter;

use super::families::{LATENCY_BUCKETS, RUNTIME_BUCKETS};
use super::refresh::{case_states, mirror, test_states};
use super::*;
use crate::transport::GroupView;

fn report(case: &str, state: State, suite: bool) -> TestReport {
    let now = chrono::Utc::now();
    TestReport {
        case_name: case.into(),
        state,
        test: (!suite).then(|| crate::TestExecution::new("t", case, now, now)),
        runtime: (!suite).then_some(0.02),
        signal_latency: if suite {
            BTreeMap::new()
        } else {
            BTreeMap::from([("sig".to_owned(), 0.003)])
        },
        error: None,
        traceback: None,
        attempt: 1,
        timed_out_signal: None,
        trace_id: None,
    }
}

#[test]
fn reports_are_counted_by_case_and_state() {
    let metrics = Metrics::new();
    metrics.on_report(&report("a", State::Pass, false));
    metrics.on_report(&report("a", State::Pass, false));
    metrics.on_report(&report("a", State::Fail, false));
    metrics.on_report(&report("a", State::Fail, true));
    let m = &*metrics.0;
    assert_eq!(m.tests.with_label_values(&["a", "PASS"]).get(), 2);
    assert_eq!(m.tests.with_label_values(&["a", "FAIL"]).get(), 1);
    assert_eq!(m.suite_reports.with_label_values(&["a", "FAIL"]).get(), 1);
    assert_eq!(
        m.runtime.with_label_values(&["a"]).get_sample_count(),
        3,
        "suite reports have no runtime"
    );
    assert_eq!(
        m.signal_latency
            .with_label_values(&["a", "sig"])
            .get_sample_count(),
        3
    );
}

#[test]
fn two_instances_do_not_share_figures() {
    let (a, b) = (Metrics::new(), Metrics::new());
    a.on_report(&report("a", State::Pass, false));
    assert_eq!(a.0.tests.with_label_values(&["a", "PASS"]).get(), 1);
    assert_eq!(b.0.tests.with_label_values(&["a", "PASS"]).get(), 0);
}

#[test]
fn a_timeout_is_counted_against_the_signal_it_waited_for() {
    let metrics = Metrics::new();
    // A signal that arrived has a timeout series at 0 before its first timeout.
    metrics.on_report(&report("a", State::Pass, false));
    let m = &*metrics.0;
    let text = metrics.encode();
    assert!(
        text.contains("livecheck_signal_timeouts_total{case=\"a\",signal=\"sig\"} 0"),
        "{text}"
    );
    let mut timeout = report("a", State::Timeout, false);
    timeout.signal_latency.clear();
    timeout.timed_out_signal = Some("late".into());
    metrics.on_report(&timeout);
    metrics.on_report(&timeout);
    assert_eq!(m.signal_timeouts.with_label_values(&["a", "late"]).get(), 2);
    assert_eq!(m.signal_timeouts.with_label_values(&["a", "sig"]).get(), 0);
    // A failure that is not a timeout counts against no signal.
    let mut fail = report("a", State::Fail, false);
    fail.timed_out_signal = Some("late".into());
    metrics.on_report(&fail);
    assert_eq!(m.signal_timeouts.with_label_values(&["a", "late"]).get(), 2);
}

#[test]
fn last_test_and_last_failure_are_unix_timestamps() {
    let metrics = Metrics::new();
    let m = &*metrics.0;
    let before = unix_now();
    metrics.on_report(&report("a", State::Pass, false));
    let passed = m.last_test.with_label_values(&["a"]).get();
    assert!(
        passed >= before && passed <= unix_now(),
        "{passed} vs {before}"
    );
    assert!(
        !metrics
            .encode()
            .contains("livecheck_last_failure_timestamp_seconds{"),
        "no failure yet, no series"
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    metrics.on_report(&report("a", State::Timeout, false));
    let failed = m.last_failure.with_label_values(&["a"]).get();
    assert!(failed > passed, "{failed} vs {passed}");
    assert_eq!(m.last_test.with_label_values(&["a"]).get(), failed);
    // Suite reports are not tests.
    metrics.on_report(&report("a", State::Fail, true));
    assert_eq!(m.last_failure.with_label_values(&["a"]).get(), failed);
}

#[test]
fn build_info_names_this_version() {
    let text = Metrics::new().encode();
    let line = format!(
        "livecheck_build_info{{arch=\"{}\",os=\"{}\",version=\"{}\"}} 1",
        std::env::consts::ARCH,
        std::env::consts::OS,
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&line), "{line} not in\n{text}");
}

#[test]
fn latency_buckets_reach_the_longest_wait() {
    let longest = crate::service::case::DEFAULT_MAX_RUNTIME_BOUND.as_secs_f64();
    for buckets in [LATENCY_BUCKETS, RUNTIME_BUCKETS] {
        assert_eq!(buckets.last().copied(), Some(longest));
        assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{buckets:?}");
    }
    // The default signal timeout in the examples and docs, 30 s, has a bucket of its own.
    assert!(LATENCY_BUCKETS.contains(&30.0));
}

#[test]
fn consumer_lag_is_per_topic_and_partition() {
    let metrics = Metrics::new();
    let mut view = GroupView {
        group: "g".into(),
        topic: "livecheck".into(),
        state: "Stable".into(),
        members: 1,
        partitions: vec![
            crate::transport::PartitionView {
                partition: 0,
                owner: None,
                lag: Some(7),
            },
            crate::transport::PartitionView {
                partition: 1,
                owner: None,
                lag: None,
            },
        ],
        orphaned: vec![0],
    };
    metrics.read_group(&view);
    let m = &*metrics.0;
    assert_eq!(m.orphaned_partitions.get(), 1);
    let text = metrics.encode();
    assert!(
        text.contains("livecheck_consumer_lag{partition=\"0\",topic=\"livecheck\"} 7"),
        "{text}"
    );
    assert!(!text.contains("partition=\"1\""), "unknown lag: {text}");
    view.partitions[0].lag = None;
    view.orphaned.clear();
    metrics.read_group(&view);
    assert!(!metrics.encode().contains("livecheck_consumer_lag{"));
    assert_eq!(m.orphaned_partitions.get(), 0);
}

/// The table of docs/operations.md, "## Metrics": name, type, label names of each row.
fn documented() -> Vec<(String, String, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    let doc = std::fs::read_to_string(path).expect("docs/operations.md");
    let section = doc
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Metrics section");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    section
        .lines()
        .filter(|l| l.starts_with("| `livecheck_"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = ticked(cells[1]).remove(0);
            (name, cells[2].to_owned(), ticked(cells[3]))
        })
        .collect()
}

#[test]
fn docs_list_every_metric_with_its_type_and_labels() {
    let mut registered: Vec<(String, String, Vec<String>)> = Metrics::new()
        .0
        .families
        .iter()
        .map(|f| {
            let labels = f.labels.iter().map(|l| (*l).to_owned()).collect();
            (f.name.to_owned(), f.kind.to_owned(), labels)
        })
        .collect();
    let mut documented = documented();
    registered.sort();
    documented.sort();
    assert_eq!(registered, documented, "docs/operations.md, ## Metrics");
}

/// Every `livecheck_*` name in `text`.
fn names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("livecheck_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_that_exist() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("docs/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let metrics = Metrics::new();
    let families = &metrics.0.families;
    let known = |name: &str| {
        families.iter().any(|f| {
            f.name == name
                || (f.kind == "histogram"
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(f.name)))
        })
    };
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            for name in names_in(expr) {
                assert!(known(&name), "{name} in {:?} is no metric", panel["title"]);
                used.push(name);
            }
        }
    }
    // What the dashboard is for: a panel for each of these series.
    for wanted in [
        "livecheck_case_state",
        "livecheck_tests_total",
        "livecheck_signal_timeouts_total",
        "livecheck_signal_latency_seconds_bucket",
        "livecheck_consumer_lag",
    ] {
        assert!(used.iter().any(|n| n == wanted), "no panel uses {wanted}");
    }
    assert!(text.contains("histogram_quantile("));
}

#[test]
fn names_follow_the_prometheus_conventions() {
    for family in &Metrics::new().0.families {
        let name = family.name;
        assert!(name.starts_with("livecheck_"), "{name}");
        assert_eq!(
            family.kind == "counter",
            name.ends_with("_total"),
            "{name}: counters, and only they, end in _total"
        );
        if name.contains("timestamp") {
            assert!(name.ends_with("_timestamp_seconds"), "{name}");
        }
        assert!(
            !name.contains("since") && !name.contains("last_hour"),
            "{name}: export timestamps and counters, let PromQL do the arithmetic"
        );
    }
}

#[test]
fn mirrored_counters_follow_their_source() {
    let counter = IntCounter::new("x_total", "x").unwrap();
    mirror(&counter, 5);
    mirror(&counter, 5);
    mirror(&counter, 7);
    assert_eq!(counter.get(), 7);
}

// The `state` labels are those of State::ALL a test report, or a case, can have.
#[test]
fn state_labels_are_those_a_test_or_a_case_can_have() {
    let names = |states: Vec<State>| states.into_iter().map(State::as_str).collect::<Vec<_>>();
    assert_eq!(
        names(test_states().collect()),
        ["PASS", "FAIL", "ERROR", "TIMEOUT", "SKIP"]
    );
    assert_eq!(
        names(case_states().collect()),
        ["INIT", "PASS", "FAIL", "ERROR", "TIMEOUT", "STALL"]
    );
}
