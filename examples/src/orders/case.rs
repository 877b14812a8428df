//! The case: an order placed through the API is written, passed on, stored and executed, with
//! its id and side unchanged.

use std::sync::OnceLock;

use super::Order;

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
    let stored = livecheck::http::get_url(&format!("{}/order/{}", service_url(), order.id)).await?;
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
pub async fn send_fake_order(request: livecheck::FakeRequest) -> livecheck::Result {
    request
        .get_url(&format!("{}/order/init/sell/?fake=1", service_url()))
        .await?;
    Ok(())
}
