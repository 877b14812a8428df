#[livecheck::case]
async fn test_order() {}

livecheck::signal! {
    pub BOUND: u64 for test_order;
    pub UNBOUND: Vec<u64>;
}

fn main() {}
