//! The `livecheck` demo: the orders system and a livecheck worker watching it.
//!
//! `cargo run --bin livecheck` — with no `--brokers`, an embedded Kafka, the orders services on
//! 127.0.0.1:8080 (`ORDERS_BIND` to change) and the worker, all in this process; a fake order
//! every 2 s and one line per test outcome. With `--brokers`, only the worker: run the services
//! with `cargo run --bin orders`. `ORDERS_BREAK=execution` breaks the execution stage on purpose.
//! `cargo run --bin livecheck -- run --once --junit out.xml` runs the case once, for CI.

fn main() -> std::process::ExitCode {
    livecheck_examples::demo::main()
}
