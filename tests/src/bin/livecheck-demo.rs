//! The orders demo's `livecheck` binary (examples/src/bin/livecheck.rs), built in this package so
//! its tests can run it (`CARGO_BIN_EXE_*` names only a package's own binaries).

fn main() -> std::process::ExitCode {
    livecheck_examples::demo::main()
}
