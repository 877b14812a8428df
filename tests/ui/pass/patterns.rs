//! Parameters that are not plain idents, a parameter named `id` (like `trigger`'s own), and a
//! case returning `()`: the descriptor's run fn decodes each argument and calls the body.

use std::sync::atomic::{AtomicU32, Ordering};

use livecheck::Case;

static SUM: AtomicU32 = AtomicU32::new(0);

#[livecheck::case]
async fn pairs((a, b): (u8, u8), mut n: u32, id: String, _: bool) {
    n += u32::from(a) + u32::from(b);
    assert_eq!(id, "x");
    SUM.store(n, Ordering::SeqCst);
}

#[livecheck::case]
#[allow(unused_variables)]
async fn failing(r#type: String) -> Result<(), std::io::Error> {
    let unused = 1;
    Err(std::io::Error::other("boom"))
}

/// Both trigger methods take the case's own parameters, patterns and all.
pub async fn trigger() -> Result<(), livecheck::TriggerError> {
    pairs
        .trigger("t-1", (1, 2), 3, "x".to_owned(), true)
        .await?;
    pairs
        .maybe_trigger("t-2", (1, 2), 3, "x".to_owned(), false)
        .await?;
    failing
        .trigger(String::from("t-3"), "kind".to_owned())
        .await?;
    Ok(())
}

fn execution(case: &str, args: serde_json::Value) -> livecheck::TestExecution {
    serde_json::from_value(serde_json::json!({
        "id": "t-1",
        "case_name": case,
        "timestamp": "2026-11-24T22:11:29.940777Z",
        "test_args": args,
        "expires": "2026-11-25T01:11:29.940777Z",
    }))
    .unwrap()
}

fn main() {
    assert_eq!(pairs.descriptor().params, ["arg0", "n", "id", "arg3"]);
    assert_eq!(failing.descriptor().params, ["type"]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = pairs.descriptor().run;
    let test = execution(pairs::NAME, serde_json::json!([[1, 2], 3, "x", true]));
    rt.block_on(run(&test)).unwrap();
    assert_eq!(SUM.load(Ordering::SeqCst), 6);

    let bad = execution(pairs::NAME, serde_json::json!([[1, 2], "three"]));
    let error = rt.block_on(run(&bad)).unwrap_err().to_string();
    assert!(error.contains("argument n (#1) does not decode"), "{error}");

    let run = failing.descriptor().run;
    let error = rt
        .block_on(run(&execution(failing::NAME, serde_json::json!(["k"]))))
        .unwrap_err();
    assert_eq!(error.to_string(), "boom");
}
