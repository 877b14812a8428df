// Bad values of the options of Faust's API in its Rust shape: each error is on its value.

#[livecheck::case(max_runtime = 0, log_passes = "yes", hooks = "Counts")]
async fn bad_values() {}

#[livecheck::case(max_runtime = "forever")]
async fn bad_duration() {}

fn main() {}
