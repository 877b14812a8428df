//! A case with every option and a fake request, and documented signals, under
//! `#![deny(missing_docs)]`: the expansion adds nothing undocumented.
#![deny(missing_docs)]

use std::time::Duration;

use livecheck::Case;

/// An order as the services see it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// Buy or sell.
    pub side: String,
}

/// Sends a fake order, every `frequency`.
pub async fn send_fake_order(request: livecheck::FakeRequest) -> livecheck::Result {
    let _ = request.case_name();
    Ok(())
}

/// Hooks that keep every default.
#[derive(Default)]
pub struct QuietHooks;

impl livecheck::CaseHooks for QuietHooks {}

/// An order placed through the API reaches the database.
#[livecheck::case(
    name = "orders.test_order",
    probability = 0.25,
    warn_stalled_after = "1m 30s",
    test_expires = 3600,
    frequency = "10s",
    url_timeout_total = 2.5,
    url_timeout_connect = "250ms",
    url_error_delay_min = "1s",
    url_error_delay_max = "10s",
    state_transition_delay = "2m",
    active = false,
    realtime_logs = true,
    max_history = 7,
    max_consecutive_failures = 3,
    url_error_retries = 4,
    url_error_delay_backoff = 2.0,
    fake_request = send_fake_order,
    max_runtime = "20m",
    log_passes = false,
    hooks = QuietHooks,
    crate = ::livecheck,
)]
pub async fn test_order(side: String, quantity: u32) -> livecheck::Result {
    let order = ORDER_SENT_TO_DB.wait().timeout("30s").await?;
    livecheck::ensure!(order.side == side, "side changed to {}", order.side);
    livecheck::ensure!(quantity > 0);
    ORDER_EXECUTED.wait().await?;
    Ok(())
}

livecheck::signal! {
    /// The order reached the database.
    pub ORDER_SENT_TO_DB: Order for test_order;
    /// The order was executed.
    pub ORDER_EXECUTED: u64 for crate::test_order
}

/// What a service does: trigger a test with the case's probability, or always.
pub async fn place(order: Order) -> Result<(), livecheck::TriggerError> {
    if let Some(test) = test_order
        .maybe_trigger("order-1", order.side.clone(), 3)
        .await?
    {
        let _: livecheck::TestExecution = test;
    }
    let id = String::from("order-2");
    let _test: livecheck::TestExecution = test_order.trigger(&id, order.side, 3).await?;
    Ok(())
}

fn main() {
    let case = test_order.descriptor();
    assert_eq!(test_order::NAME, "orders.test_order");
    assert_eq!(case.name, "orders.test_order");
    assert_eq!(case.params, ["side", "quantity"]);
    assert!(case.fake_request.is_some());
    assert!(case.file.ends_with("full_case.rs"), "{}", case.file);
    let o = &case.options;
    assert_eq!(o.probability, 0.25);
    assert_eq!(o.warn_stalled_after, Duration::from_secs(90));
    assert_eq!(o.test_expires, Duration::from_secs(3600));
    assert_eq!(o.frequency, Some(Duration::from_secs(10)));
    assert_eq!(o.url_timeout_total, Some(Duration::from_millis(2500)));
    assert_eq!(o.url_timeout_connect, Some(Duration::from_millis(250)));
    assert_eq!(o.url_error_delay_min, Duration::from_secs(1));
    assert_eq!(o.url_error_delay_max, Duration::from_secs(10));
    assert_eq!(o.state_transition_delay, Duration::from_secs(120));
    assert!(!o.active);
    assert!(o.realtime_logs);
    assert_eq!(o.max_history, 7);
    assert_eq!(o.max_consecutive_failures, 3);
    assert_eq!(o.url_error_retries, 4);
    assert_eq!(o.url_error_delay_backoff, 2.0);
    assert_eq!(o.max_runtime, Some(Duration::from_secs(1200)));
    assert!(!o.log_passes);
    assert!(case.hooks.is_some());

    assert_eq!(ORDER_SENT_TO_DB.name(), "order_sent_to_db");
    assert_eq!(ORDER_SENT_TO_DB.case_name(), "orders.test_order");
    assert_eq!(ORDER_EXECUTED.case_name(), "orders.test_order");

    let registered = livecheck::__private::registered_cases().unwrap();
    assert!(registered.iter().any(|c| std::ptr::eq(*c, case)));
}
