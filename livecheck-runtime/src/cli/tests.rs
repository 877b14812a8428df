//! The command line's unit tests: flags, their values and errors, set-up hooks, output.

use std::time::Duration;

use clap::{CommandFactory, Parser};

use super::console::format_report_line;
use super::flags::DEFAULT_WEB_BIND;
use super::logging::use_colour;
use super::select::glob_match;
use super::setup::spawn_setup;
use super::usage::one_line;
use super::values::{parse_properties_env, PROPERTIES_ENV};
use super::*;
use crate::service::client::Client;
use crate::transport::kafka::KafkaConfig;
use crate::wire::model::TestReport;

#[test]
fn globs_match_case_names() {
    assert!(glob_match("orders::*", "orders::test_order"));
    assert!(glob_match("*order*", "orders::test_order"));
    assert!(glob_match("it.fl?w", "it.flow"));
    assert!(glob_match("*", ""));
    assert!(glob_match("a*b*c", "a-b-b-c"));
    assert!(!glob_match("orders::*", "payments::test_pay"));
    assert!(!glob_match("it.flow", "it.flows"));
    assert!(!glob_match("a*b*c", "a-b-b-d"));
}

#[test]
fn every_flag_has_an_environment_variable_whose_value_help_hides() {
    let command = Options::command();
    let subcommands = command.get_subcommands().flat_map(|c| c.get_arguments());
    for arg in command.get_arguments().chain(subcommands) {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" || arg.is_global_set() {
            continue;
        }
        if id == "properties" {
            // Read by parse_options (one property per line, not clap's one value), and named
            // in the flag's help.
            let help = arg
                .get_long_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(help.contains(PROPERTIES_ENV), "{help}");
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert!(
            env.as_deref().is_some_and(|e| e.starts_with("LIVECHECK_")),
            "--{id} has no LIVECHECK_* variable"
        );
        assert!(
            arg.is_hide_env_values_set(),
            "--{id} shows its variable's value"
        );
    }
    command.debug_assert();
}

#[test]
fn one_property_per_flag_commas_and_equal_signs_included() {
    let options = Options::try_parse_from([
        "livecheck",
        "-X",
        "sasl.password=ab,cd=ef",
        "-X",
        " security.protocol =SASL_SSL",
    ])
    .unwrap();
    let pairs: Vec<_> = options
        .kafka_config("b:9092")
        .properties
        .into_iter()
        .collect();
    assert_eq!(
        pairs,
        [
            ("sasl.password".to_owned(), "ab,cd=ef".to_owned()),
            ("security.protocol".to_owned(), "SASL_SSL".to_owned())
        ]
    );
    assert_eq!(
        format!("{:?}", options.properties[0]),
        "sasl.password=<hidden>"
    );
}

#[test]
fn the_environment_holds_one_property_per_line() {
    let properties =
        parse_properties_env("sasl.password=a,b\n\n# a comment\r\nsasl.username=u=v\n").unwrap();
    let pairs: Vec<_> = properties
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(pairs, [("sasl.password", "a,b"), ("sasl.username", "u=v")]);
    let error = parse_properties_env("a=b\nhunter2").unwrap_err();
    assert!(error.contains("line 2"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn errors_never_repeat_a_secret() {
    for args in [
        &["livecheck", "-X", "hunter2"][..],
        &["livecheck", "-X", "=hunter2"],
        &["livecheck", "-X", "sasl.password=ab", "hunter2"],
        &["livecheck", "-X", "sasl.password=ab", "--", "hunter2"],
        &[
            "livecheck",
            "--alert-webhook",
            "ftp://hooks.example/T0/hunter2",
        ],
        &[
            "livecheck",
            "--alert-webhook",
            "https//hooks.example/T0/hunter2",
        ],
    ] {
        let error = Options::try_parse_from(args).unwrap_err();
        let line = one_line(&error);
        assert!(!line.contains("hunter2"), "{args:?}: {line}");
        assert!(!line.is_empty(), "{args:?}");
    }
    #[cfg(feature = "otel")]
    for args in [
        &["livecheck", "--otlp-endpoint", "ftp://me:hunter2@collector"][..],
        &["livecheck", "--otlp-endpoint", "hunter2"],
    ] {
        let error = Options::try_parse_from(args).unwrap_err();
        let line = one_line(&error);
        assert!(!line.contains("hunter2"), "{args:?}: {line}");
        assert!(line.contains("--otlp-endpoint"), "{args:?}: {line}");
    }
    // Values that are no secret are still shown.
    let error = Options::try_parse_from(["livecheck", "--web-bind", "nowhere"]).unwrap_err();
    assert!(one_line(&error).contains("nowhere"));
}

#[test]
fn mistakes_are_one_line_naming_the_flag() {
    let error = Options::try_parse_from(["livecheck", "--web-bind", "nowhere"]).unwrap_err();
    let line = one_line(&error);
    assert!(line.contains("--web-bind"), "{line}");
    assert!(!line.contains('\n'));
    let error = Options::try_parse_from(["livecheck", "--alert-webhook", "ftp://x/"]).unwrap_err();
    assert!(one_line(&error).contains("--alert-webhook"));
}

fn started(ready: SetupReady) -> Started {
    let kafka = KafkaConfig::new("127.0.0.1:1");
    Started {
        brokers: kafka.brokers.clone(),
        embedded: None,
        client: Client::new(crate::MemoryTransport::new()),
        kafka,
        status: None,
        ready,
    }
}

#[tokio::test]
async fn a_set_up_is_done_after_its_first_poll_unless_it_defers_or_fails() {
    let within = Duration::from_secs(5);
    // A hook that holds `Started` for ever without deferring: done at once.
    let (ready, mut watch) = SetupReady::new();
    let hook = spawn_setup(
        |started| async move {
            let _kept = started;
            std::future::pending::<()>().await
        },
        started(ready),
    );
    let outcome = tokio::time::timeout(within, watch.outcome()).await;
    assert_eq!(outcome.expect("done at once"), Ok(()));
    hook.abort();

    // A hook that defers: done once it says so.
    let (ready, mut watch) = SetupReady::new();
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let hook = spawn_setup(
        |started| async move {
            let guard = started.ready.defer();
            let _ = wait.await;
            guard.done();
            std::future::pending::<()>().await
        },
        started(ready),
    );
    let early = tokio::time::timeout(Duration::from_millis(200), watch.outcome()).await;
    assert!(early.is_err(), "not done while deferred");
    go.send(()).unwrap();
    let outcome = tokio::time::timeout(within, watch.outcome()).await;
    assert_eq!(outcome.expect("done"), Ok(()));
    hook.abort();

    // A hook that fails.
    let (ready, mut watch) = SetupReady::new();
    let hook = spawn_setup(
        |started| async move { started.ready.defer().fail("port taken") },
        started(ready),
    );
    let outcome = tokio::time::timeout(within, watch.outcome()).await;
    assert_eq!(outcome.expect("failed"), Err("port taken".to_owned()));
    let _ = hook.await;
}

#[test]
fn colours_only_on_a_terminal_without_no_color() {
    assert!(use_colour(true, None));
    assert!(use_colour(true, Some("".into())));
    assert!(!use_colour(true, Some("1".into())));
    assert!(!use_colour(false, None));
}

#[test]
fn once_flags_need_once_and_parse_durations() {
    let options =
        Options::try_parse_from(["livecheck", "run", "--once", "--timeout", "90s"]).unwrap();
    match options.command {
        Some(Command::Run(args)) => {
            assert!(args.once);
            assert_eq!(args.timeout, Duration::from_secs(90));
            assert_eq!(args.retries, 0);
        }
        other => panic!("{other:?}"),
    }
    assert!(Options::try_parse_from(["livecheck", "run", "--junit", "x.xml"]).is_err());
    assert!(Options::try_parse_from(["livecheck", "run", "--once", "--timeout", "0"]).is_err());
    let options = Options::try_parse_from(["livecheck", "--max-test-age", "off"]).unwrap();
    assert_eq!(options.max_test_age, MaxTestAge(None));
    let options = Options::try_parse_from(["livecheck"]).unwrap();
    assert_eq!(
        options.max_test_age,
        MaxTestAge(Some(Duration::from_secs(600)))
    );
}

/// Every duration flag reads the one duration grammar (`livecheck-duration`).
#[test]
fn duration_flags_use_the_one_grammar() {
    let options = Options::try_parse_from([
        "livecheck",
        "--connect-timeout",
        "1 minute",
        "--max-test-age",
        "1h 30m",
        "--report-replay",
        "2 hours",
        "--suite-reminder",
        "0.5",
    ])
    .unwrap();
    assert_eq!(options.connect_timeout, Duration::from_secs(60));
    assert_eq!(
        options.max_test_age,
        MaxTestAge(Some(Duration::from_secs(5400)))
    );
    assert_eq!(options.report_replay, Duration::from_secs(7200));
    assert_eq!(options.suite_reminder, Some(Duration::from_millis(500)));
    for flag in [
        "--connect-timeout",
        "--max-test-age",
        "--report-replay",
        "--suite-reminder",
    ] {
        let error = Options::try_parse_from(["livecheck", flag, "1e3"]).unwrap_err();
        assert!(
            error.to_string().contains("invalid duration \"1e3\""),
            "{flag}: {error}"
        );
    }
    let options =
        Options::try_parse_from(["livecheck", "run", "--once", "--timeout", "3 mins"]).unwrap();
    match options.command {
        Some(Command::Run(args)) => assert_eq!(args.timeout, Duration::from_secs(180)),
        other => panic!("{other:?}"),
    }
}

/// A test from a record: anyone may write one, with any id.
fn hostile_report(id: &str, error: &str) -> TestReport {
    let test: crate::TestExecution = serde_json::from_value(serde_json::json!({
        "id": id,
        "case_name": "orders::test_order",
        "timestamp": "2026-12-07T00:00:00Z",
        "expires": "2026-12-07T03:00:00Z",
    }))
    .unwrap();
    let mut report: TestReport = serde_json::from_value(serde_json::json!({
        "case_name": "orders::test_order",
        "state": "FAIL",
        "test": null,
        "runtime": 0.5,
        "error": error,
        "traceback": null,
    }))
    .unwrap();
    report.test = Some(test);
    report
}

#[test]
fn a_report_line_stays_one_line_whatever_the_record_holds() {
    let report = hostile_report("x\n\x1b[31m", "lost\nPASS     orders::x  id=1\r\u{2028}");
    let line = format_report_line(&report);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert_eq!(
        line,
        "FAIL     orders::test_order  id=x\\n\\u{1b}[31m  500ms  \
         lost\\nPASS     orders::x  id=1\\r\\u{2028}"
    );
    let mut suite = hostile_report("t", "3 failures; last: a\x1b]0;title\x07");
    suite.test = None;
    let line = format_report_line(&suite);
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(line.ends_with("last: a\\u{1b}]0;title\\u{7}"), "{line}");
}

/// `Debug` of the options hides secrets (they end up in logs) and shows every other field.
#[test]
fn the_options_debug_hides_secrets_and_shows_every_field() {
    #[allow(unused_mut)]
    let mut args = vec![
        "livecheck",
        "--brokers",
        "SASL_SSL://me:hunter2@broker:9092",
        "-X",
        "sasl.password=hunter2",
        "--alert-webhook",
        "http://hooks.example/services/T0/hunter2",
        "--trace-url",
        "https://jaeger.example/trace/{trace_id}?token=hunter2",
    ];
    #[cfg(feature = "otel")]
    args.extend([
        "--otlp-endpoint",
        "https://otel:hunter2@collector:4318/?api_key=hunter2",
    ]);
    let options = Options::try_parse_from(args).unwrap();
    let shown = format!("{options:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("sasl.password=<hidden>"), "{shown}");
    assert!(
        shown.contains("https://jaeger.example/trace/{trace_id}?<hidden>"),
        "{shown}"
    );
    #[cfg(feature = "otel")]
    assert!(
        shown.contains("https://collector:4318/?<hidden>"),
        "{shown}"
    );
    for arg in Options::command().get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        assert!(shown.contains(&format!("{id}: ")), "no {id} in {shown}");
    }
}

#[test]
fn defaults_are_loopback_with_the_status_page_on() {
    let options = Options::try_parse_from(["livecheck"]).unwrap();
    assert_eq!(options.web_bind, DEFAULT_WEB_BIND.parse().unwrap());
    assert!(options.web_bind.ip().is_loopback());
    assert!(!options.no_web);
    assert!(options.alert_webhook.is_none());
}

/// `LIVECHECK_ONCE=true` with no subcommand is `run --once`, the other flags of `run` read from
/// their variables (it used to start a worker that ran until stopped). The variables are set in
/// a child process — this test binary again, running this test alone — since setting them here
/// would reach the tests running beside it.
#[test]
fn the_once_variable_without_a_subcommand_is_run_once() {
    const CHILD: &str = "LIVECHECK_CLI_TEST_CHILD";
    const NAME: &str = "cli::tests::the_once_variable_without_a_subcommand_is_run_once";
    if std::env::var_os(CHILD).is_some() {
        let options = parse_options(["livecheck"]).expect("the flags parse");
        match options.command {
            Some(Command::Run(args)) => {
                assert!(args.once);
                assert_eq!(args.retries, 2);
                assert_eq!(args.timeout, Duration::from_secs(90));
            }
            other => panic!("not run --once: {other:?}"),
        }
        // `cases` is still `cases`.
        let options = parse_options(["livecheck", "cases"]).expect("the flags parse");
        assert!(
            matches!(options.command, Some(Command::Cases)),
            "{options:?}"
        );
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--test-threads=1"])
        .env(CHILD, "1")
        .env(super::usage::ONCE_ENV, "true")
        .env("LIVECHECK_RETRIES", "2")
        .env("LIVECHECK_TIMEOUT", "90s")
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the test did not run: {stdout}"
    );
    // The variable the decision reads is the one of `run --once`.
    let run = Options::command()
        .find_subcommand("run")
        .and_then(|run| run.get_arguments().find(|a| a.get_id() == "once"))
        .and_then(|once| once.get_env())
        .map(|env| env.to_string_lossy().into_owned());
    assert_eq!(run.as_deref(), Some(super::usage::ONCE_ENV));
}
