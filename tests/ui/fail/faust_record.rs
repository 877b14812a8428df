use serde::{Deserialize, Serialize};

#[livecheck::faust_record]
#[derive(Serialize, Deserialize)]
struct NoNamespace {
    x: u8,
}

#[livecheck::faust_record(ns = "a.Misspelled", namespace = "a.B")]
#[derive(Serialize)]
struct Misspelled {
    x: u8,
}

#[livecheck::faust_record(ns = "a.Tuple")]
#[derive(Serialize)]
struct Tuple(u8);

#[derive(Serialize, Deserialize)]
#[livecheck::faust_record(ns = "a.BelowDerive")]
struct BelowDerive {
    x: u8,
}

#[livecheck::faust_record(ns = "a.Transparent")]
#[derive(Serialize)]
#[serde(transparent)]
struct Transparent {
    x: u8,
}

#[livecheck::faust_record(ns = "a.Generic")]
#[derive(Serialize)]
struct Generic<T> {
    x: T,
}

// Each type keeps its own derives: using it adds no error.
fn uses() -> String {
    serde_json::to_string(&NoNamespace { x: 1 }).unwrap()
}

fn main() {}
