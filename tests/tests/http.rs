//! HTTP: the current test travels on requests both ways, and the URL helpers report a service
//! that is down, then its recovery.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use livecheck::propagation::http::TestContextLayer;
use livecheck::testing::TestKit;
use livecheck::State;

/// Serves `router` on a free loopback port; the server stops with the test's runtime.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

fn test(id: &str) -> livecheck::TestExecution {
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    livecheck::TestExecution::new(id, "http::pinger", now, now + chrono::Duration::hours(1))
}

#[tokio::test]
async fn the_test_travels_on_requests_and_handlers_see_it() {
    let router = Router::new()
        .route(
            "/current",
            get(|| async {
                livecheck::current_test().map_or("none".to_string(), |t| t.id.clone())
            }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let mut names: Vec<String> = headers
                    .keys()
                    .map(|k| k.as_str().to_owned())
                    .filter(|k| k.starts_with("livecheck-"))
                    .collect();
                names.sort();
                names.join(",")
            }),
        )
        .layer(TestContextLayer);
    let base = serve(router).await;
    let client = livecheck::propagation::http::client();

    let inside = livecheck::with_test(test("t-42"), async {
        let current = client.get(format!("{base}/current")).send().await.unwrap();
        let headers = client.get(format!("{base}/headers")).send().await.unwrap();
        (current.text().await.unwrap(), headers.text().await.unwrap())
    })
    .await;
    assert_eq!(inside.0, "t-42");
    assert_eq!(
        inside.1,
        "livecheck-test-expires,livecheck-test-id,livecheck-test-name,livecheck-test-timestamp"
    );

    let outside = client.get(format!("{base}/headers")).send().await.unwrap();
    assert_eq!(outside.text().await.unwrap(), "");
    let current = client.get(format!("{base}/current")).send().await.unwrap();
    assert_eq!(current.text().await.unwrap(), "none");

    // Malformed headers are ignored: the handler runs outside any test.
    let raw = livecheck::propagation::http::client()
        .get(format!("{base}/current"))
        .header("LiveCheck-Test-Id", "x")
        .header("LiveCheck-Test-Name", "c")
        .header("LiveCheck-Test-Timestamp", "yesterday")
        .header("LiveCheck-Test-Expires", "never")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.text().await.unwrap(), "none");
}

static TARGET: OnceLock<String> = OnceLock::new();

/// Pings the target service every 100 ms; the case itself only needs the pings to work.
#[livecheck::case(probability = 1.0, frequency = "100ms", fake_request = ping,
                  url_error_retries = 3, url_error_delay_min = "10ms",
                  url_error_delay_backoff = 2.0, url_error_delay_max = "40ms",
                  state_transition_delay = "1s", warn_stalled_after = "1h")]
async fn pinger() {}

async fn ping(request: livecheck::FakeRequest) -> livecheck::Result {
    request
        .get_url(&format!("{}/ping", TARGET.get().unwrap()))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_down_is_one_suite_failure_and_its_return_a_recovery() {
    let down = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicU32::new(0));
    let router = Router::new().route(
        "/ping",
        get({
            let (down, hits) = (down.clone(), hits.clone());
            move || async move {
                hits.fetch_add(1, Ordering::Relaxed);
                if down.load(Ordering::Relaxed) {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                } else {
                    (axum::http::StatusCode::OK, "pong")
                }
            }
        }),
    );
    TARGET.set(serve(router).await).unwrap();
    let mut kit = TestKit::builder().case(pinger).start();

    let failed = kit.suite_report("http::pinger").await;
    assert_eq!(failed.state, State::Fail);
    let error = failed.error.unwrap();
    assert!(error.starts_with("service down: GET "), "{error}");
    assert!(error.contains("failed 4 times; last: 503"), "{error}");
    // The service stays down for several more fake requests: no second suite report (one per
    // transition; the recovery comes state_transition_delay after the FAIL at the earliest).
    let before = hits.load(Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while hits.load(Ordering::Relaxed) < before + 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fake requests kept going"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(kit.drain().iter().all(|r| !r.is_suite()));

    down.store(false, Ordering::Relaxed);
    let recovered = kit.suite_report("http::pinger").await;
    assert_eq!(recovered.state, State::Pass);
    assert_eq!(kit.status("http::pinger").unwrap().state, State::Pass);
}

/// The test's trace travels on its requests (`traceparent`, `tracestate`), and a handler reading
/// a test from a request has it.
#[tokio::test]
async fn the_trace_of_a_test_travels_on_its_requests() {
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let router = Router::new()
        .route(
            "/trace",
            get(|headers: HeaderMap| async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map_or("-", |v| v.to_str().unwrap_or("?"))
                        .to_owned()
                };
                let current = livecheck::current_test()
                    .and_then(|t| t.traceparent)
                    .map_or("-".to_owned(), |p| p.trace_id());
                format!(
                    "{} {} {current}",
                    header("traceparent"),
                    header("tracestate")
                )
            }),
        )
        .layer(TestContextLayer);
    let base = serve(router).await;
    let client = livecheck::propagation::http::client();
    let traced = livecheck::TestExecution {
        traceparent: Some(PARENT.parse().unwrap()),
        tracestate: Some("congo=t61rcWkgMzE".into()),
        ..test("t-traced")
    };
    let seen = livecheck::with_test(traced, async {
        let response = client.get(format!("{base}/trace")).send().await.unwrap();
        response.text().await.unwrap()
    })
    .await;
    assert_eq!(
        seen,
        format!("{PARENT} congo=t61rcWkgMzE 4bf92f3577b34da6a3ce929d0e0e4736")
    );
    // A test without a trace sends none.
    let seen = livecheck::with_test(test("t-plain"), async {
        let response = client.get(format!("{base}/trace")).send().await.unwrap();
        response.text().await.unwrap()
    })
    .await;
    assert_eq!(seen, "- - -");
}
