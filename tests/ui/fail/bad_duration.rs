#[livecheck::case(warn_stalled_after = "10x")]
async fn unknown_unit() {}

#[livecheck::case(test_expires = "1m30")]
async fn missing_unit() {}

#[livecheck::case(state_transition_delay = "ten seconds", url_error_delay_min = -1)]
async fn not_a_number() {}

#[livecheck::case(frequency = 0, fake_request = fake)]
async fn zero_frequency() {}

#[livecheck::case(url_error_delay_min = "10s")]
async fn min_above_max() {}

#[livecheck::case(frequency = "10s")]
async fn frequency_without_fake_request() {}

async fn fake(_: livecheck::FakeRequest) {}

fn main() {}
