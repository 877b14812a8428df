#[livecheck::case(probabilty = 0.5)]
async fn misspelled() {}

#[livecheck::case(name = "ok", timeout = "10s", probability = 0.5)]
async fn not_an_option() {}

// The case still expands, so using its handle adds no error.
async fn uses() {
    let _ = misspelled.maybe_trigger("t").await;
}

fn main() {}
