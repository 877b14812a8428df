//! The demo's cases crate: the `test_order` case and its signals, which the orders services
//! (they trigger the case and send its signals) and the livecheck worker (it runs the case) both
//! link.
//!
//! The case: an order placed through the API is written, passed on, stored and executed, with
//! its id and side unchanged.
//!
//! Services link this crate without features: livecheck's service line only. The case's two HTTP
//! calls (the fake request and the store check) are the worker's, behind the `worker` feature,
//! which the worker binary turns on; without it they return an error (a service never runs a case).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// An order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Order id (also the test id when the order is a test).
    pub id: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Ticker.
    pub symbol: String,
    /// How many.
    pub quantity: u32,
    /// Limit price.
    pub price: f64,
}

static SERVICE_URL: OnceLock<String> = OnceLock::new();

/// Where the orders API is (for the fake request and the store check). Set once at start-up;
/// otherwise `ORDERS_URL`, else `http://127.0.0.1:8080`.
pub fn set_service_url(url: impl Into<String>) {
    let _ = SERVICE_URL.set(url.into());
}

fn service_url() -> &'static str {
    SERVICE_URL.get_or_init(|| {
        std::env::var("ORDERS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into())
    })
}

/// An order placed through the API flows through every stage with its id and side intact.
#[livecheck::case(probability = 1.0, frequency = "2s", fake_request = send_fake_order,
                  warn_stalled_after = "1m", test_expires = "10m",
                  max_consecutive_failures = 3, state_transition_delay = "30s",
                  url_error_retries = 3, url_error_delay_min = "200ms")]
pub async fn test_order(side: String) -> livecheck::Result {
    let test_id = livecheck::current_test()
        .map(|t| t.id.clone())
        .unwrap_or_default();
    let order = ORDER_SENT_TO_DB.wait().timeout("10s").await?;
    livecheck::ensure!(
        order.id == test_id,
        "order id {} is not the test id {test_id}",
        order.id
    );
    livecheck::ensure!(
        order.side == side,
        "side changed from {side} to {}",
        order.side
    );
    ORDER_SENT_TO_KAFKA.wait().timeout("10s").await?;
    let cached = ORDER_CACHED.wait().timeout("10s").await?;
    livecheck::ensure!(
        cached == order.id,
        "cached {cached} instead of {}",
        order.id
    );
    let stored = get(&format!("{}/order/{}", service_url(), order.id)).await?;
    let stored: Order = serde_json::from_slice(&stored)?;
    livecheck::ensure!(stored == order, "the store holds {stored:?}, not {order:?}");
    ORDER_EXECUTED.wait().timeout("10s").await?;
    Ok(())
}

livecheck::signal! {
    /// The order was written to the database.
    pub ORDER_SENT_TO_DB: Order for test_order;
    /// The order was acknowledged on the execution topic.
    pub ORDER_SENT_TO_KAFKA: () for test_order;
    /// The order is in the store (its id).
    pub ORDER_CACHED: String for test_order;
    /// The order was executed (the execution id).
    pub ORDER_EXECUTED: String for test_order;
}

/// The fake request: place a sell order through the API, marked as fake.
#[cfg(feature = "worker")]
pub async fn send_fake_order(request: livecheck::FakeRequest) -> livecheck::Result {
    request
        .get_url(&format!("{}/order/init/sell/?fake=1", service_url()))
        .await?;
    Ok(())
}

/// The fake request, in a build without the `worker` feature: an error (only a worker sends it).
#[cfg(not(feature = "worker"))]
pub async fn send_fake_order(request: livecheck::FakeRequest) -> livecheck::Result {
    let _ = request;
    Err(worker_only("the fake request"))
}

/// GETs `url` with the current test's context (the worker's HTTP client, with retries).
#[cfg(feature = "worker")]
async fn get(url: &str) -> livecheck::Result<Vec<u8>> {
    Ok(livecheck::http::get_url(url).await?.to_vec())
}

/// In a build without the `worker` feature: an error (only a worker runs the case).
#[cfg(not(feature = "worker"))]
async fn get(url: &str) -> livecheck::Result<Vec<u8>> {
    let _ = url;
    Err(worker_only("the store check"))
}

#[cfg(not(feature = "worker"))]
fn worker_only(what: &str) -> livecheck::CaseError {
    livecheck::CaseError::msg(format!(
        "{what} calls the orders API over HTTP: build orders-cases with its `worker` feature"
    ))
}
