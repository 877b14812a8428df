#[livecheck::case]
fn not_async() -> livecheck::Result {
    Ok(())
}

#[livecheck::case(probability = 0.5)]
pub fn also_not_async(side: String) {
    let _ = side;
}

fn main() {}
