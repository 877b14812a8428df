//! A self-contained case: its fake request triggers a test every second and then, standing in
//! for a service, sends the two signals the case waits for.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the "service" sends back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Greeting {
    /// Who was greeted.
    pub name: String,
    /// The greeting.
    pub text: String,
}

/// A greeting requested for `name` is built for that name and then delivered.
#[livecheck::case(probability = 1.0, frequency = "1s", warn_stalled_after = "30s",
                  test_expires = "1m", fake_request = request_greeting)]
pub async fn greeting(name: String) -> livecheck::Result {
    let built = GREETING_BUILT.wait().timeout("5s").await?;
    livecheck::ensure!(
        built.name == name,
        "greeted {} instead of {name}",
        built.name
    );
    livecheck::ensure!(
        built.text.contains(&name),
        "greeting {:?} lacks the name",
        built.text
    );
    let delivered_ms = GREETING_DELIVERED.wait().timeout("5s").await?;
    livecheck::log!("delivered in {delivered_ms} ms");
    Ok(())
}

livecheck::signal! {
    /// The greeting was built.
    pub GREETING_BUILT: Greeting for greeting;
    /// The greeting was delivered, after this many milliseconds.
    pub GREETING_DELIVERED: u64 for greeting;
}

/// The fake request: trigger a test and play the service that answers it.
pub async fn request_greeting(_request: livecheck::FakeRequest) -> livecheck::Result {
    let id = format!("greet-{}", rand_suffix());
    let name = "Ada".to_string();
    let test = greeting.trigger(id, name.clone()).await?;
    livecheck::spawn(livecheck::with_test(test, greeting_service(name))).await?;
    Ok(())
}

/// The "service under test": builds and delivers the greeting, signalling each stage.
async fn greeting_service(name: String) {
    let text = format!("Hello, {name}!");
    let _ = GREETING_BUILT.send(&Greeting { name, text }).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = GREETING_DELIVERED.send(&20).await;
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
