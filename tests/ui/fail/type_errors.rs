// Type errors in what the user wrote are reported on the user's tokens, not inside the expansion.
// (A parameter type that is not serde is an error on the parameter too, but serde's message lists
// the types that do implement its traits, which changes with serde_json's features: no snapshot.)

async fn wrong_fake(_: u32) {}

#[livecheck::case(fake_request = wrong_fake)]
async fn with_wrong_fake() {}

#[livecheck::case]
async fn returns_a_number() -> u32 {
    1
}

#[livecheck::case]
async fn not_send() {
    let rc = std::rc::Rc::new(1);
    std::future::ready(()).await;
    drop(rc);
}

fn main() {}
