//! Procedural macros of [livecheck]: `#[case]` and `signal!`.
//!
//! Use them through the runtime crate, which re-exports them: `#[livecheck::case]` and
//! `livecheck::signal!`. The code they generate names only `::livecheck::...` (or the path given
//! with `crate = ...`; `signal!` is given the runtime's `$crate`), so a user crate depends on
//! `livecheck` alone, under any name.
//!
//! - [`macro@case`] turns an async fn into a registered test case and a typed handle with
//!   `trigger` / `maybe_trigger` methods taking the fn's own parameters.
//! - `signal!` declares typed signals bound to a case; it is a `macro_rules!` of the runtime
//!   that calls the hidden `signal_impl!` here with its `$crate`.
//!
//! Mistakes (an option that does not exist or is given twice, a probability outside `[0, 1]`, a
//! duration that does not parse, a signal bound to something that is not a case) are compile
//! errors pointing at the offending token.
//!
//! [livecheck]: https://docs.rs/livecheck

mod case;
mod errors;
mod faust_record;
mod signal;
mod values;

/// The tokens of `rust`, one space between each and none of the printer's spacing: what unit
/// tests compare, expected code written as Rust against an expansion's `to_string()` (both
/// through this), so that only the token sequence counts.
#[cfg(test)]
fn tokens(rust: &str) -> String {
    fn flat(stream: proc_macro2::TokenStream) -> Vec<String> {
        stream
            .into_iter()
            .flat_map(|tree| match tree {
                proc_macro2::TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                        proc_macro2::Delimiter::Brace => ("{", "}"),
                        proc_macro2::Delimiter::Bracket => ("[", "]"),
                        proc_macro2::Delimiter::None => ("", ""),
                    };
                    let mut inner = vec![open.to_owned()];
                    inner.extend(flat(group.stream()));
                    inner.push(close.to_owned());
                    inner
                }
                other => vec![other.to_string()],
            })
            .collect()
    }
    flat(rust.parse().expect("balanced tokens")).join(" ")
}

use proc_macro::TokenStream;

/// Makes an async fn a livecheck test case.
///
/// ```ignore
/// #[livecheck::case(probability = 0.5, frequency = "10s", fake_request = send_fake_order)]
/// async fn test_order(side: String) -> livecheck::Result {
///     let order = ORDER_SENT_TO_DB.wait().timeout("30s").await?;
///     livecheck::ensure!(order.side == side, "side changed to {}", order.side);
///     Ok(())
/// }
///
/// // In the service under test:
/// if let Some(test) = test_order.maybe_trigger(&order_id, side.clone()).await? { /* ... */ }
/// ```
///
/// The fn must be a free `async fn`, not generic, whose parameters are owned types that
/// implement `Serialize` and `DeserializeOwned` (they travel in the test execution), and which
/// returns `()` or `Result<(), E>` with `E` convertible into `livecheck::CaseError`.
///
/// # Options
///
/// All optional, as `key = value` separated by commas. Durations are in livecheck's one duration
/// grammar (crate `livecheck-duration`): a string such as `"10s"`, `"1m30s"`, `"1m 30s"`,
/// `"250ms"`, `"2 hours"`, `"1d"` (units `ns us ms s m h d` and their long names `sec`,
/// `second(s)`, `min`, `minute(s)`, `hour(s)`, `day(s)`...), or a number of seconds, as a literal
/// (`10`, `0.5`) or a string (`"0.5"`). No sign, no exponent.
///
/// | option | value | default |
/// |---|---|---|
/// | `name` | string | `module_path::fn_name` |
/// | `probability` | number in `[0, 1]`: how often `maybe_trigger` triggers | 0.5 |
/// | `warn_stalled_after` | duration without any test before a STALL report | 30 min |
/// | `active` | `bool`; an inactive case skips its tests | `true` |
/// | `test_expires` | duration a test (and its signals) stays valid | 3 h |
/// | `frequency` | duration between fake requests (needs `fake_request`) | none |
/// | `realtime_logs` | `bool`: write a test's logs as they happen | `false` |
/// | `max_history` | integer ≥ 1: samples the medians are taken over | 100 |
/// | `max_consecutive_failures` | integer ≥ 1: failures in a row that FAIL the case | 30 |
/// | `url_timeout_total` | duration | 300 s |
/// | `url_timeout_connect` | duration | none |
/// | `url_error_retries` | integer | 10 |
/// | `url_error_delay_min` | duration, at most `url_error_delay_max` | 0.5 s |
/// | `url_error_delay_backoff` | number ≥ 1.0 | 1.5 |
/// | `url_error_delay_max` | duration | 5 s |
/// | `state_transition_delay` | duration | 60 s |
/// | `max_runtime` | duration > 0: a test running longer is stopped, TIMEOUT | `min(test_expires, 1 h)` |
/// | `log_passes` | `bool`: a passing test's log at INFO (`false`: DEBUG) | `true` |
/// | `hooks` | path to a type implementing `livecheck::CaseHooks` and `Default` | none |
/// | `fake_request` | path to an `async fn(livecheck::FakeRequest) -> livecheck::Result` | none |
/// | `crate` | path to the runtime crate if renamed: `crate = ::my_livecheck` | `::livecheck` |
///
/// # What it generates
///
/// For `VIS async fn NAME(p1: T1, p2: T2) -> R`:
///
/// - `VIS struct NAME;`, a unit struct carrying the fn's docs: the case's handle. It implements
///   `livecheck::Case`, so signals can be bound to it.
/// - `NAME.trigger(id, p1, p2)` publishes a test with these arguments; `NAME.maybe_trigger(id,
///   p1, p2)` does so with the case's probability and returns `Ok(None)` when not drawn;
///   `NAME.maybe_trigger_scope(id, p1, p2, |test| async { .. })` also runs the block with the
///   test, if drawn, as the current test. `id` is a string or `livecheck::AutoId` (a new UUID).
/// - A registered descriptor (name, options, parameter names, how to run a test and send a fake
///   request), which livecheck workers discover at start-up. It and the impls are inside a
///   `const _: () = { ... };` block: they add no names to your module.
///
/// The fn's body is never parsed by the macro (a syntax error in it is rustc's own error, and the
/// handle is still generated). It runs as a hidden associated fn of the handle, unchanged but for
/// its assertions:
/// `assert!`, `assert_eq!`, `assert_ne!` and their `debug_` forms (bare, or by their `std::` or
/// `core::` path) become `livecheck::assertions::assert!` and so on, which fail the test (FAIL)
/// rather than error it (ERROR).
#[proc_macro_attribute]
pub fn case(args: TokenStream, item: TokenStream) -> TokenStream {
    case::expand(args.into(), item.into()).into()
}

/// `livecheck::signal!`'s expansion: `signal_impl! { $crate; declarations }`. The runtime's
/// `signal!` (a `macro_rules!`) calls it with its `$crate`, so the code names the runtime by
/// whatever name the user depends on it under. Not a public API; see `livecheck::signal!`.
#[doc(hidden)]
#[proc_macro]
pub fn signal_impl(input: TokenStream) -> TokenStream {
    signal::expand(input.into()).into()
}

/// Makes a struct a Faust record: its JSON ends with `"__faust": {"ns": NS}`, as Faust writes
/// records, so a Faust case receives it as an instance of the record class `NS` (not a dict); the
/// marker is skipped when reading.
///
/// ```ignore
/// #[livecheck::faust_record(ns = "myapp.models.Order")]
/// #[derive(Serialize, Deserialize)]
/// struct Order { id: String, side: String }
/// ```
///
/// Place it above `#[derive(Serialize, Deserialize)]`: it adds `#[serde(remote = "Self")]` so that
/// serde's derived code becomes inherent fns, and implements `Serialize`, `Deserialize` (for the
/// derives present) and `livecheck::faust::FaustRecord` around them. The struct must have named
/// fields and no generics. Options: `ns = "..."` (required), `crate = path` for a renamed runtime.
/// See `livecheck::faust` for what is written and read.
#[proc_macro_attribute]
pub fn faust_record(args: TokenStream, item: TokenStream) -> TokenStream {
    faust_record::expand(args.into(), item.into()).into()
}
