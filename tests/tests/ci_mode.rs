//! `livecheck run --once`, the CI mode, on the orders demo as a user runs it: the demo binary
//! (`examples/src/demo.rs`, built here as `livecheck-demo`), on the embedded broker and on a
//! real one; a passing run exits 0 with a JUnit file that parses, a broken stage exits 1 with a
//! `<failure>` carrying the error and the traceback.
//!
//! Every server here listens on 127.0.0.1; every process is stopped by the test that started
//! it, and every run is bounded in time.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use livecheck_examples::orders::{self, OrdersConfig};
use livecheck_tests::broker::Broker;
use livecheck_tests::support::{read_log, service_client};
use quick_xml::events::Event;

const DEMO: &str = env!("CARGO_BIN_EXE_livecheck-demo");

/// What a finished process left: its exit status, stdout and stderr.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` to its end, its output in files of `dir`; kills it (and fails) past `within`.
fn run_bounded(mut command: Command, dir: &Path, within: Duration) -> Finished {
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start the demo binary");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {within:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                read_log(&out),
                read_log(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Finished {
        status,
        stdout: read_log(&out),
        stderr: read_log(&err),
    }
}

/// The demo binary on the embedded broker, its API on a free port.
fn demo_once(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(DEMO);
    command
        .current_dir(dir)
        .env_remove("LIVECHECK_BROKERS")
        .env_remove("ORDERS_BREAK")
        .env("ORDERS_BIND", "127.0.0.1:0")
        .args(["run", "--once", "--timeout", "90s"])
        .args(extra);
    command
}

/// An XML element, as parsed by quick-xml: enough of a tree to check a JUnit file.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: BTreeMap<String, String>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn all(&self, name: &str) -> Vec<&Element> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    fn attribute(&self, name: &str) -> &str {
        self.attributes
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("<{}> has no {name}: {self:?}", self.name))
    }
}

/// Parses a whole XML document (failing on any malformed part) into its root element.
fn parse_xml(xml: &str) -> Element {
    fn open(e: &quick_xml::events::BytesStart<'_>) -> Element {
        let mut element = Element {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            ..Element::default()
        };
        for attribute in e.attributes() {
            let attribute = attribute.expect("a well-formed attribute");
            element.attributes.insert(
                String::from_utf8(attribute.key.as_ref().to_vec()).unwrap(),
                attribute
                    .unescape_value()
                    .expect("an attribute value")
                    .into_owned(),
            );
        }
        element
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("bad XML: {e}\n{xml}"))
        {
            Event::Start(e) => stack.push(open(&e)),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(open(&e)),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().expect("balanced").children.push(done);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().expect("a character reference") {
                    Some(c) => c,
                    None => match &*r.decode().unwrap() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity &{other};"),
                    },
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements in:\n{xml}");
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element:\n{xml}");
    document.children.pop().unwrap()
}

/// The one test case of the demo's JUnit file, after checking the suite's totals.
fn only_testcase<'a>(junit: &'a Element, failures: &str) -> &'a Element {
    assert_eq!(junit.name, "testsuites");
    assert_eq!(junit.attribute("tests"), "1");
    assert_eq!(junit.attribute("failures"), failures);
    let suites = junit.all("testsuite");
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0].attribute("tests"), "1");
    assert_eq!(suites[0].attribute("failures"), failures);
    let cases = suites[0].all("testcase");
    assert_eq!(cases.len(), 1, "{junit:?}");
    assert_eq!(cases[0].attribute("name"), "orders_cases::test_order");
    assert!(cases[0].attribute("time").parse::<f64>().unwrap() > 0.0);
    cases[0]
}

#[test]
fn run_once_on_the_demo_passes_with_a_junit_file_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let done = run_bounded(
        demo_once(dir.path(), &["--junit", "out.xml", "--json", "out.json"]),
        dir.path(),
        Duration::from_secs(120),
    );
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout.contains("1 case in ")
            && done
                .stdout
                .contains("1 passed, 0 flaky, 0 failed, 0 skipped"),
        "{}",
        done.stdout
    );
    let junit = parse_xml(&std::fs::read_to_string(dir.path().join("out.xml")).unwrap());
    let case = only_testcase(&junit, "0");
    assert!(case.child("failure").is_none(), "{case:?}");
    assert!(case.child("skipped").is_none(), "{case:?}");
    assert!(case
        .child("system-out")
        .unwrap()
        .text
        .starts_with("attempt 1: PASS test="));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["cases"][0]["verdict"], "PASS");
    let report = &json["cases"][0]["attempts"][0]["report"];
    assert_eq!(
        report["state"], "111/***/111",
        "the report as on the topic: {report}"
    );
    assert_eq!(report["signal_latency"].as_object().unwrap().len(), 4);
}

/// `LIVECHECK_ONCE=true` with no subcommand is `run --once`, with the flags of `run` from their
/// variables; it used to start a worker that ran until stopped.
#[test]
fn livecheck_once_without_the_run_subcommand_is_a_one_shot_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(DEMO);
    command
        .current_dir(dir.path())
        .env_remove("LIVECHECK_BROKERS")
        .env_remove("ORDERS_BREAK")
        .env("ORDERS_BIND", "127.0.0.1:0")
        .env("LIVECHECK_ONCE", "true")
        .env("LIVECHECK_TIMEOUT", "90s")
        .env("LIVECHECK_JUNIT", "out.xml");
    let done = run_bounded(command, dir.path(), Duration::from_secs(120));
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout
            .contains("1 passed, 0 flaky, 0 failed, 0 skipped"),
        "{}",
        done.stdout
    );
    let junit = parse_xml(&std::fs::read_to_string(dir.path().join("out.xml")).unwrap());
    only_testcase(&junit, "0");
}

#[test]
fn run_once_on_a_broken_demo_exits_1_with_the_failure_in_the_junit_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = demo_once(dir.path(), &["--junit", "out.xml", "--retries", "1"]);
    command.env("ORDERS_BREAK", "execution");
    let done = run_bounded(command, dir.path(), Duration::from_secs(120));
    assert_eq!(
        done.status.code(),
        Some(1),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout.contains("0 passed, 0 flaky, 1 failed"),
        "{}",
        done.stdout
    );
    let junit = parse_xml(&std::fs::read_to_string(dir.path().join("out.xml")).unwrap());
    let case = only_testcase(&junit, "1");
    let failure = case.child("failure").expect("a <failure>");
    assert_eq!(failure.attribute("type"), "TIMEOUT");
    assert_eq!(
        failure.attribute("message"),
        "signal order_executed did not arrive within 10.00s"
    );
    // The error, then the traceback: where the case waited.
    let (error, traceback) = failure
        .text
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no traceback in {:?}", failure.text));
    assert_eq!(error, "signal order_executed did not arrive within 10.00s");
    assert!(
        traceback.contains("examples/orders-cases/src/lib.rs:"),
        "{traceback}"
    );
    // Retried once: both attempts are listed, each a test of its own.
    let attempts = &case.child("system-out").unwrap().text;
    assert!(attempts.contains("attempt 1: TIMEOUT test="), "{attempts}");
    assert!(attempts.contains("attempt 2: TIMEOUT test="), "{attempts}");
}

#[test]
fn run_once_selects_cases_and_a_run_that_tests_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    // Every case left out: a usage error, before anything starts.
    let done = run_bounded(
        demo_once(dir.path(), &["--exclude", "*test_order"]),
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("--exclude"), "{}", done.stderr);
    let done = run_bounded(
        demo_once(dir.path(), &["--case", "nothing*"]),
        dir.path(),
        Duration::from_secs(30),
    );
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("--case \"nothing*\" matches no"),
        "{}",
        done.stderr
    );
    // The flags of the CI mode need --once.
    let mut command = Command::new(DEMO);
    command.args(["run", "--junit", "x.xml"]);
    let done = run_bounded(command, dir.path(), Duration::from_secs(30));
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("--once"), "{}", done.stderr);
}

#[test]
fn help_lists_the_flags_of_the_ci_mode_and_of_the_clear_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(DEMO);
    command.args(["run", "--help"]);
    let done = run_bounded(command, dir.path(), Duration::from_secs(30));
    assert!(done.status.success(), "{}", done.stderr);
    for (flag, variable) in [
        ("--once", "LIVECHECK_ONCE"),
        ("--junit <FILE>", "LIVECHECK_JUNIT"),
        ("--json <FILE>", "LIVECHECK_JSON"),
        ("--timeout <DURATION>", "LIVECHECK_TIMEOUT"),
        ("--retries <N>", "LIVECHECK_RETRIES"),
        ("--fail-on-flaky", "LIVECHECK_FAIL_ON_FLAKY"),
        ("--case <GLOB>", "LIVECHECK_CASE"),
        ("--exclude <GLOB>", "LIVECHECK_EXCLUDE"),
    ] {
        assert!(
            done.stdout.contains(flag),
            "run --help lacks {flag}:\n{}",
            done.stdout
        );
        assert!(
            done.stdout.contains(variable),
            "run --help lacks {variable}"
        );
    }
    let mut command = Command::new(DEMO);
    command.arg("--help");
    let done = run_bounded(command, dir.path(), Duration::from_secs(30));
    for (flag, variable) in [
        ("--max-test-age <DURATION>", "LIVECHECK_MAX_TEST_AGE"),
        ("--connect-timeout <DURATION>", "LIVECHECK_CONNECT_TIMEOUT"),
        ("--exclude <GLOB>", "LIVECHECK_EXCLUDE"),
    ] {
        assert!(
            done.stdout.contains(flag),
            "--help lacks {flag}:\n{}",
            done.stdout
        );
        assert!(done.stdout.contains(variable), "--help lacks {variable}");
    }
}

/// On a real broker without topic auto-creation: the orders services create their topics and
/// run in this process (as `cargo run --bin orders` would), the demo binary runs the case once
/// with `--brokers`, on a group of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_on_real_brokers_next_to_services_that_created_their_topics() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config = OrdersConfig::new(broker.bootstrap());
    config.orders_topic = Broker::unique("orders");
    config.execution_topic = Broker::unique("order-execution");
    config.group_prefix = Broker::unique("orders-group");
    let kafka = livecheck_tests::support::unique_topics(&broker.bootstrap(), "lc", 2);
    orders::ensure_topics(&config, &kafka)
        .await
        .expect("the services create their topics");
    let topics = broker.topics();
    for topic in [
        &config.orders_topic,
        &config.execution_topic,
        &kafka.topics.tests,
        &kafka.topics.bus,
        &kafka.topics.reports,
    ] {
        assert!(topics.contains(topic), "{topic} not in {topics:?}");
    }
    // Again: topics that exist are fine.
    orders::ensure_topics(&config, &kafka).await.unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let services = tokio::spawn(orders::run(config, service_client(&kafka), listener));

    let mut command = Command::new(DEMO);
    command
        .current_dir(dir.path())
        .env("ORDERS_URL", &url)
        .args(["--brokers", &broker.bootstrap()])
        .args(["--tests-topic", &kafka.topics.tests])
        .args(["--bus-topic", &kafka.topics.bus])
        .args(["--report-topic", &kafka.topics.reports])
        .args(["--group-id", &kafka.group_id])
        .args(["run", "--once", "--timeout", "90s", "--junit", "out.xml"]);
    let dir_path = dir.path().to_owned();
    let done = tokio::task::spawn_blocking(move || {
        run_bounded(command, &dir_path, Duration::from_secs(120))
    })
    .await
    .unwrap();
    services.abort();
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}\n{}",
        done.stdout,
        done.stderr
    );
    assert!(!done.stderr.contains("embedded"), "{}", done.stderr);
    let junit = parse_xml(&std::fs::read_to_string(dir.path().join("out.xml")).unwrap());
    let case = only_testcase(&junit, "0");
    assert!(case.child("failure").is_none(), "{case:?}");
}
