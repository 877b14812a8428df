struct Plain;

async fn plain_fn() {}

mod cases {
    pub struct Nested;
}

livecheck::signal! {
    TO_A_STRUCT: u64 for Plain;
    TO_A_FN: u64 for plain_fn;
    TO_A_PATH: u64 for cases::Nested;
    TO_NOTHING: u64 for does_not_exist;
}

fn main() {}
