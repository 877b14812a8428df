//! Examples for livecheck: the orders system of Faust's stock-order example, its services and the
//! case that watches it.
//!
//! - `cargo run --bin livecheck`: an embedded broker, the orders services and a livecheck worker
//!   in one process; a fake order every 2 s; one line per test outcome.
//! - `cargo run --bin livecheck -- --brokers HOST:PORT`: only the worker, against real brokers;
//!   run the services with `cargo run --bin orders -- --brokers HOST:PORT` (and tell the worker
//!   where their API is with `ORDERS_URL`, default `http://127.0.0.1:8080`).
//! - `cargo run --bin livecheck -- run --once --junit out.xml`: each case once, a summary, a
//!   JUnit file and an exit code, for CI.
//! - `ORDERS_BREAK=execution` breaks the execution agent on purpose: TIMEOUT reports, then a
//!   suite FAIL after three in a row.

pub mod demo;
pub mod orders;
