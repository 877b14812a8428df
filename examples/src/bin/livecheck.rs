//! The `livecheck` demo: every case of the examples crate, on an in-process transport.
//!
//! Run: `cargo run --bin livecheck` — prints one line per test outcome; Ctrl-C stops it.

// Link the cases in: inventory only sees what the linker keeps.
use livecheck_examples as _;

fn main() -> std::process::ExitCode {
    livecheck::main()
}
