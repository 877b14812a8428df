// A syntax error in a case's body is rustc's own error, on the body (the body is kept as raw
// tokens, never parsed by the macro). The case's handle is still generated, so the signal bound
// to it and the trigger below add no "cannot find" errors.

#[livecheck::case]
async fn check_order(side: String) {
    let quantity = ;
    let _ = (side, quantity);
}

livecheck::signal! {
    pub ORDER_SEEN: u64 for check_order;
}

async fn service() {
    let _ = check_order.trigger("order-1", "buy".to_owned()).await;
    let _ = ORDER_SEEN.name();
}

fn main() {
    let _ = service();
}
