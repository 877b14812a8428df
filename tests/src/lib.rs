//! Helpers shared by livecheck's integration tests.
//!
//! [`broker`] starts and stops a real Kafka-compatible broker ([tansu](https://tansu.io)) for tests
//! that need one.

pub mod broker;
pub mod cases;
pub mod faults;
pub mod services;
pub mod support;

/// The Rust blocks of README.md and docs/*.md, compiled by `cargo test --workspace` as doc tests
/// of this crate: an example in the docs that no longer compiles fails the tests. A block that
/// needs a broker is `no_run`; one that cannot stand alone is `ignore`, with the reason beside it.
#[cfg(doctest)]
pub mod docs {
    #[doc = include_str!("../../README.md")]
    pub struct Readme;
    #[doc = include_str!("../../docs/guide.md")]
    pub struct Guide;
    #[doc = include_str!("../../docs/kafka.md")]
    pub struct Kafka;
    #[doc = include_str!("../../docs/operations.md")]
    pub struct Operations;
    #[doc = include_str!("../../docs/architecture.md")]
    pub struct Architecture;
    #[doc = include_str!("../../docs/benchmarks.md")]
    pub struct Benchmarks;
}
