#[livecheck::case(
    name = case_name,
    active = "yes",
    max_history = 1.5,
    max_consecutive_failures = 0,
    url_error_retries = 5000000000,
    url_error_delay_backoff = 0.5,
    warn_stalled_after = true,
    fake_request = |request| async {},
    crate = "not a path",
)]
async fn wrong_types() {}

#[livecheck::case(active)]
async fn missing_value() {}

fn main() {}
