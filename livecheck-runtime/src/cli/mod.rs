//! The `livecheck` command line: [`main`] for a binary of your own, [`Options`] for its flags.
//!
//! Every flag can also be set by an environment variable (`LIVECHECK_*`, named in `--help`; its
//! value is never shown there, as it may be a secret). A bad value is a one-line error naming the
//! flag, with exit code 2; the value of `-X`, `--alert-webhook` and `--otlp-endpoint` is never
//! repeated in an error.
//! `docs/operations.md` lists the flags, the status server's endpoints and the metrics.
//!
//! Its files, one concern each: `flags` (the clap structs) and `values` (what their texts
//! become), `usage` (reading the command line, and a mistake in one line), `select` (the cases a
//! run takes), `error`, `setup` (the binary's set-up hook), `connect` (the broker), the two ways
//! to run — `run_worker` (a worker, until stopped) and `run_once` (`run --once`, for CI) — and
//! around them `signals`, `console` (stdout) and `logging` (stderr). [`main_with`] reads the
//! flags and starts one of the two.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

mod connect;
mod console;
mod error;
mod flags;
mod logging;
mod run_once;
mod run_worker;
mod select;
mod setup;
mod signals;
mod usage;
mod values;

pub(crate) use error::CliError;
pub use flags::{CodecArg, Command, LogFormat, Options, RunArgs};
pub use setup::{SetupGuard, SetupReady, Started};
use usage::parse_options;
pub use values::{MaxTestAge, Property};

use console::list_cases;
use logging::init_tracing;

/// Runs a livecheck worker with every case linked into this binary, until Ctrl-C or SIGTERM.
///
/// A binary of your own is one line:
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     livecheck::main()
/// }
/// ```
/// Cases are found with `inventory`, which sees only what the linker keeps: if your cases live in
/// a library crate that the binary does not otherwise use, add `use my_cases as _;` to the
/// binary so the crate is linked in.
pub fn main() -> ExitCode {
    main_with(|_| async {})
}

/// [`main`], plus a set-up hook run once the transport is up (e.g. to start services in the same
/// process for a demo); the hook's future is stopped at shutdown. With [`Started::ready`] the
/// hook holds `run --once` until its services are up, or fails the start.
pub fn main_with<F, Fut>(setup: F) -> ExitCode
where
    F: FnOnce(Started) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let options = match parse_options(std::env::args_os()) {
        Ok(options) => options,
        Err(code) => return code,
    };
    init_tracing(options.log_format);
    let result = options.selected_cases().and_then(|cases| {
        let once = match &options.command {
            Some(Command::Cases) => {
                list_cases(&cases);
                return Ok(ExitCode::SUCCESS);
            }
            Some(Command::Run(args)) if args.once => Some(args.clone()),
            _ => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        let result = match once {
            Some(args) => runtime.block_on(run_once::main(options, args, cases, setup)),
            None => runtime
                .block_on(run_worker::main(options, cases, setup))
                .map(|()| ExitCode::SUCCESS),
        };
        // Tasks still running (a set-up hook's services) are not waited for.
        runtime.shutdown_timeout(Duration::from_secs(1));
        result
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("livecheck: {error}");
            error.exit_code()
        }
    }
}

#[cfg(test)]
mod tests;
