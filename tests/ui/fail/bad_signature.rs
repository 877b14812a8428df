struct Orders;

impl Orders {
    #[livecheck::case]
    async fn method(&self) {}
}

#[livecheck::case]
async fn generic<T: serde::de::DeserializeOwned>(value: T) {}

#[livecheck::case]
async fn borrowed(side: &str, check: impl Fn() -> bool) {}

#[livecheck::case]
async fn order(order: u64) {}

#[livecheck::case]
struct NotAFn;

fn main() {}
