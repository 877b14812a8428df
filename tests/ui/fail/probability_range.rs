#[livecheck::case(probability = 1.5)]
async fn above_one() {}

#[livecheck::case(probability = -0.1)]
async fn negative() {}

#[livecheck::case(probability = 2)]
async fn integer() {}

#[livecheck::case(probability = "0.5")]
async fn string() {}

fn main() {}
