#[livecheck::case(probability = 0.1, frequency = "1s", probability = 0.2, fake_request = fake)]
async fn twice() {}

#[livecheck::case(crate = ::livecheck, name = "a", crate = ::livecheck)]
async fn crate_twice() {}

async fn fake(_: livecheck::FakeRequest) -> livecheck::Result {
    Ok(())
}

fn main() {}
