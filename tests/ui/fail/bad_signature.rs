struct Orders;

impl Orders {
    #[livecheck::case]
    async fn method(&self) {}
}

#[livecheck::case]
async fn generic<T: serde::de::DeserializeOwned>(_value: T) {}

#[livecheck::case]
async fn borrowed(_side: &str, _check: impl Fn() -> bool) {}

#[livecheck::case]
async fn order(order: u64) {
    let _ = order;
}

#[livecheck::case]
struct NotAFn;

fn main() {}
