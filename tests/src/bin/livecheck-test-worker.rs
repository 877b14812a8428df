//! A `livecheck` worker binary running the integration-test cases, for tests that need a worker
//! in a process of its own (to SIGKILL it, or to run the CLI as a user would).

use livecheck_tests as _;

fn main() -> std::process::ExitCode {
    livecheck::main()
}
