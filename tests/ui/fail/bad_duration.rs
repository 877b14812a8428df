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

// One grammar with the runtime: no exponent, in a string or as a literal.
#[livecheck::case(test_expires = "1e3", warn_stalled_after = 1e3)]
async fn exponent() {}

// Long unit names are fine.
#[livecheck::case(test_expires = "2 hours", warn_stalled_after = "10 minutes")]
async fn long_units() {}

async fn fake(_: livecheck::FakeRequest) {}

fn main() {}
