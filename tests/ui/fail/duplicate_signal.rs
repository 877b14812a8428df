#[livecheck::case]
async fn test_order() {}

livecheck::signal! {
    pub ORDER_SENT: u64 for test_order;
    pub ORDER_EXECUTED: u64 for test_order;
    pub ORDER_SENT: String for test_order;
    pub order_executed: u64 for test_order;
}

fn main() {}
