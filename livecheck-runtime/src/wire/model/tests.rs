//! The records: their headers, cut-downs and state names.

use super::*;
use chrono::TimeZone;

fn sample() -> TestExecution {
    let t = Utc.with_ymd_and_hms(2026, 11, 24, 22, 11, 29).unwrap()
        + chrono::Duration::microseconds(940_777);
    let expires = t + chrono::Duration::hours(3);
    TestExecution {
        test_args: vec![Value::from("sell")],
        ..TestExecution::new("order-1", "orders::test_order", t, expires)
    }
}

#[test]
fn an_oversized_report_is_cut_to_fit_and_says_so() {
    let size = |r: &TestReport| serde_json::to_vec(r).unwrap().len();
    let mut test = sample();
    test.test_args.push(Value::String("a".repeat(400_000)));
    test.test_kwargs
        .insert("big".into(), serde_json::json!(["é".repeat(100_000)]));
    let mut report = TestReport {
        case_name: "c".into(),
        state: State::Error,
        test: Some(test),
        runtime: Some(1.0),
        signal_latency: (0..5_000).map(|i| (format!("s{i}"), 0.5)).collect(),
        error: Some("é".repeat(700_000)),
        traceback: Some("at x.rs:1:1\n".repeat(50_000)),
        attempt: 1,
        timed_out_signal: None,
        trace_id: None,
    };
    let before = size(&report);
    for limit in [500_000, 100_000, 8_192] {
        let mut cut = report.clone();
        assert!(cut.truncate_to(limit, size));
        assert!(size(&cut) <= limit, "{} > {limit}", size(&cut));
        let error = cut.error.as_deref().unwrap();
        assert!(
            error.ends_with(&format!(
                "[report truncated from {before} bytes to fit {limit}]"
            )),
            "{}",
            &error[error.len() - 80..]
        );
        assert_eq!(
            cut.test.as_ref().unwrap().id,
            "order-1",
            "the test stays identifiable"
        );
        assert_eq!(cut.state, State::Error);
    }
    // A report that fits is left alone.
    report = TestReport {
        error: None,
        traceback: None,
        test: Some(sample()),
        signal_latency: BTreeMap::new(),
        ..report
    };
    let unchanged = report.clone();
    assert!(!report.truncate_to(500_000, size));
    assert_eq!(report, unchanged);
}

#[test]
fn header_time_writes_what_chrono_writes() {
    let chrono = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let mut t = DateTime::parse_from_rfc3339("1999-12-31T23:59:59.999999Z")
        .unwrap()
        .with_timezone(&Utc);
    for _ in 0..2_000 {
        assert_eq!(header_time(t), chrono(t));
        t += chrono::Duration::microseconds(987_654_321_123);
    }
    let odd = [
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.000001Z",
        "2026-11-24T22:11:29.940777123Z",
    ];
    for text in odd {
        let t = DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(header_time(t), chrono(t), "{text}");
    }
    let far = DateTime::<Utc>::from_timestamp(400_000_000_000, 0).unwrap();
    assert_eq!(header_time(far), chrono(far));
}

#[test]
fn headers_round_trip() {
    let test = sample();
    let headers = test.headers();
    let back = TestExecution::from_headers(|name| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    })
    .unwrap()
    .unwrap();
    assert_eq!(back.id, test.id);
    assert_eq!(back.case_name, test.case_name);
    assert_eq!(back.timestamp, test.timestamp);
    assert_eq!(back.expires, test.expires);
    assert_eq!(headers[2].1, "2026-11-24T22:11:29.940777+00:00");
}

#[test]
fn no_headers_is_not_a_test_and_bad_headers_are_errors() {
    assert_eq!(TestExecution::from_headers(|_| None), Ok(None));
    let bad = TestExecution::from_headers(|name| match name {
        HEADER_TEST_ID => Some(b"x".as_slice()),
        HEADER_TEST_NAME => Some(b"case".as_slice()),
        _ => Some(b"yesterday".as_slice()),
    });
    assert!(matches!(bad, Err(HeaderError::BadTimestamp(..))));
}

#[test]
fn json_matches_faust_shape() {
    let json = serde_json::to_value(sample()).unwrap();
    assert_eq!(json["timestamp"], "2026-11-24T22:11:29.940777Z");
    assert_eq!(json["test_args"], serde_json::json!(["sell"]));
    assert_eq!(json["test_kwargs"], serde_json::json!({}));
    let report = TestReport {
        case_name: "c".into(),
        state: State::Pass,
        test: None,
        runtime: None,
        signal_latency: BTreeMap::new(),
        error: None,
        traceback: None,
        attempt: 1,
        timed_out_signal: None,
        trace_id: None,
    };
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["state"], "111/***/111");
    let back: TestReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.state, State::Pass);
    assert_eq!("PASS".parse::<State>().unwrap(), State::Pass);
}
