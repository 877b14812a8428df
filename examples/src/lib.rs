//! Example cases for livecheck, run by the `livecheck` binary of this crate.
//!
//! `greeting` is a case whose fake request plays both parts: it triggers a test, then acts as
//! the service under test and sends the signals the case waits for. Run it with
//! `cargo run --bin livecheck`.

pub mod greeting;
