//! Reading the command line: [`parse_options`], the command a binary runs when none is given,
//! and the one line a mistake is told in.

use std::process::ExitCode;

use clap::Parser;

use super::flags::{Command, Options, RunArgs};
use super::values::{parse_properties_env, PROPERTIES_ENV};

/// Parses the flags as `livecheck` does: `--help` and `--version` print and exit 0; a mistake
/// is one line naming the flag — or the environment variable, when the bad value came from one
/// — and exit code 2. The properties of [`PROPERTIES_ENV`] come first in
/// [`Options::properties`], the `-X` flags after them (a flag wins over the same key).
pub(crate) fn parse_options<I, T>(args: I) -> Result<Options, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut options = Options::try_parse_from(&args).map_err(|error| report(&error, &args))?;
    if options.command.is_none() {
        options.command = default_command().map_err(|error| report(&error, &args))?;
    }
    if let Some(text) = std::env::var_os(PROPERTIES_ENV) {
        let Some(text) = text.to_str() else {
            eprintln!("livecheck: {PROPERTIES_ENV} is not UTF-8");
            return Err(ExitCode::from(2));
        };
        let mut properties = parse_properties_env(text).map_err(|error| {
            eprintln!("livecheck: {error}");
            ExitCode::from(2)
        })?;
        properties.append(&mut options.properties);
        options.properties = properties;
    }
    Ok(options)
}

/// Prints what clap says (help, version: as it is; a mistake: in one line) and gives the exit
/// code: 0 for help and version, 2 for a mistake.
fn report(error: &clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            if error.exit_code() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        _ => {
            eprintln!("livecheck: {} (see --help)", describe(error, args));
            ExitCode::from(2)
        }
    }
}

/// The variable of `run --once`.
pub(super) const ONCE_ENV: &str = "LIVECHECK_ONCE";

/// The command when none is given: the worker (`None`), or `run --once` when [`ONCE_ENV`] says
/// so. Then the flags of `run` are read from their variables as `livecheck run` reads them
/// (`LIVECHECK_TIMEOUT`, `LIVECHECK_JUNIT`, ...): `LIVECHECK_ONCE=true livecheck` is
/// `livecheck run --once`, not a worker that runs until it is stopped. Without `LIVECHECK_ONCE`
/// the variables of `run` are not read (a worker ignores them, as before).
fn default_command() -> Result<Option<Command>, clap::Error> {
    if std::env::var_os(ONCE_ENV).is_none() {
        return Ok(None);
    }
    let args = run_args_from_env()?;
    Ok(args.once.then_some(Command::Run(args)))
}

/// The flags of `run` from their variables and defaults alone: no argument is given.
pub(super) fn run_args_from_env() -> Result<RunArgs, clap::Error> {
    use clap::{Args, FromArgMatches};
    let command = RunArgs::augment_args(clap::Command::new("livecheck run"));
    RunArgs::from_arg_matches(&command.try_get_matches_from(["livecheck run"])?)
}

/// The one line of a parse error; when the bad value came from an environment variable (its
/// flag is not on the command line), the variable leads, since that is what to fix.
fn describe(error: &clap::Error, args: &[std::ffi::OsString]) -> String {
    use clap::error::{ContextKind, ContextValue};
    let line = one_line(error);
    let Some(ContextValue::String(invalid)) = error.get(ContextKind::InvalidArg) else {
        return line;
    };
    let flag = invalid.split_whitespace().next().unwrap_or_default();
    let command = <Options as clap::CommandFactory>::command();
    let all_args = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()));
    let found = all_args.into_iter().find(|arg| {
        arg.get_long().is_some_and(|l| flag == format!("--{l}"))
            || arg.get_short().is_some_and(|c| flag == format!("-{c}"))
    });
    let Some(arg) = found else { return line };
    let Some(variable) = arg.get_env() else {
        return line;
    };
    let on_command_line = args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&format!("{flag}=")) || (flag.len() == 2 && a.starts_with(flag))
    });
    if on_command_line || std::env::var_os(variable).is_none() {
        return line;
    }
    // `one_line` has already left out the values that may be secrets.
    format!("{}: {line}", variable.to_string_lossy())
}

/// The first line of clap's message, without its `error: ` prefix: it names the flag and the
/// problem; the usage and tips that follow are what `--help` is for. What the user typed is left
/// out where it may be a secret: the value of `-X`, `--alert-webhook` or `--otlp-endpoint`, and
/// a stray word (the tail of a value split by the shell, as in `-X sasl.password=ab cd`).
pub(super) fn one_line(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = error.to_string();
    // The first paragraph: one line, or a line ending in ':' and the list under it (e.g. the
    // required flags missing).
    let paragraph: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    let mut line = line
        .strip_prefix("error: ")
        .unwrap_or(&line)
        .trim()
        .to_owned();
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let hidden = match error.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => context(ContextKind::InvalidArg)
            .filter(|arg| {
                arg.starts_with("-X")
                    || arg.starts_with("--alert-webhook")
                    || arg.starts_with("--otlp-endpoint")
            })
            .and(context(ContextKind::InvalidValue)),
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => {
            context(ContextKind::InvalidArg)
                .or(context(ContextKind::InvalidSubcommand))
                .filter(|word| !word.starts_with('-') || word.contains('='))
        }
        _ => None,
    };
    if let Some(secret) = hidden.filter(|s| !s.is_empty()) {
        line = line.replace(secret, "<not shown>");
    }
    line
}
