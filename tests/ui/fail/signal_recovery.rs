// One bad declaration is reported on itself; the declarations around it are still made, so
// their uses add no "cannot find value" errors.

#[livecheck::case]
async fn test_order() {}

livecheck::signal! {
    pub BEFORE: u64 for test_order;
    pub NO_CASE: Vec<u64>;
    pub NO_COLON u64 for test_order;
    pub AFTER: [u8; 4] for test_order;
}

fn main() {
    let _ = (BEFORE.name(), AFTER.name());
}
