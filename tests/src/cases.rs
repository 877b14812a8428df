//! Cases of the integration tests, shared by the test binaries and `livecheck-test-worker`.

use serde::{Deserialize, Serialize};

/// What the services under test tell the case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Which stage.
    pub stage: u32,
    /// What it saw.
    pub value: String,
}

/// Waits for the first stage's value and checks it; then (if `stages` is 2) for the second.
#[livecheck::case(
    name = "it.flow",
    probability = 1.0,
    test_expires = "10m",
    warn_stalled_after = "1h"
)]
pub async fn flow(expect: String, stages: u32, timeout_ms: u64) -> livecheck::Result {
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let first = FIRST.wait().timeout(timeout).await?;
    livecheck::ensure!(
        first.value == expect,
        "first stage saw {:?}, want {expect:?}",
        first.value
    );
    if stages >= 2 {
        let second = SECOND.wait().timeout(timeout).await?;
        livecheck::ensure!(
            second.value == expect,
            "second stage saw {:?}",
            second.value
        );
    }
    Ok(())
}

livecheck::signal! {
    /// The first stage happened.
    pub FIRST: Step for flow;
    /// The second stage happened.
    pub SECOND: Step for flow;
}
