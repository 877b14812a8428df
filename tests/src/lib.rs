//! Helpers shared by livecheck's integration tests.
//!
//! [`broker`] starts and stops a real Kafka-compatible broker ([tansu](https://tansu.io)) for tests
//! that need one.

pub mod broker;
pub mod cases;
pub mod services;
pub mod support;
