//! # livecheck
//!
//! End-to-end testing of asynchronous systems, in production and staging — Faust's LiveCheck,
//! rebuilt for Rust.
//!
//! A **case** is an async fn marked [`#[livecheck::case]`](macro@case). Live traffic triggers it
//! (`maybe_trigger`, with the case's probability) or a timer does (its `fake_request`, every
//! `frequency`). The services the request passes through send typed **signals** (declared with
//! [`signal!`]); the case waits for them, checks contracts on their values with [`ensure!`], and
//! every outcome becomes a [`TestReport`]: PASS, FAIL, ERROR, TIMEOUT or SKIP. Cases that stop
//! receiving tests (STALL) or fail many times in a row raise suite reports. Faust's per-case
//! hooks are [`CaseHooks`]; a case skips itself with [`skip!`].
//!
//! ```no_run
//! # mod demo {
//! # #[derive(serde::Serialize, serde::Deserialize)] pub struct Order { side: String }
//! /// An order placed through the API reaches the database and is executed.
//! #[livecheck::case(probability = 0.5, frequency = "10s", warn_stalled_after = "1m",
//!                   fake_request = send_fake_order)]
//! async fn test_order(side: String) -> livecheck::Result {
//!     let order = ORDER_SENT_TO_DB.wait().timeout("30s").await?;
//!     livecheck::ensure!(order.side == side, "side changed to {}", order.side);
//!     ORDER_EXECUTED.wait().timeout("30s").await?;
//!     Ok(())
//! }
//!
//! livecheck::signal! {
//!     /// The order reached the database.
//!     pub ORDER_SENT_TO_DB: Order for test_order;
//!     /// The order was executed.
//!     pub ORDER_EXECUTED: u64 for test_order;
//! }
//!
//! // Every `frequency`, on one worker: make a request as real traffic would.
//! async fn send_fake_order(_request: livecheck::FakeRequest) -> livecheck::Result {
//!     Ok(())
//! }
//!
//! // In a service: trigger (with the case's probability) and handle the request in the test's
//! // scope, where signals are keyed by the test.
//! async fn place(order: Order) -> Result<(), Box<dyn std::error::Error>> {
//!     test_order
//!         .maybe_trigger_scope("order-1", order.side.clone(), |_test| async {
//!             ORDER_SENT_TO_DB.send(&order).await
//!         })
//!         .await??;
//!     Ok(())
//! }
//! # }
//! ```
//!
//! A binary of your own runs every case linked into it with [`main()`]; see `docs/guide.md`.
//! Such a worker serves a status page, a JSON API and Prometheus metrics ([`status`],
//! [`metrics`]) and posts suite alerts to a webhook ([`alerts`]); see `docs/operations.md`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

// Lets the runtime's own tests and docs use the macros, which name `::livecheck`.
#[allow(unused_extern_crates)]
extern crate self as livecheck;

// The tiers, each in its folder (docs/architecture.md): `wire` (what travels), `service` (what
// a service links), `transport` (Kafka and in-memory), `worker` (runs cases, keeps their
// health), `ops` (status page, metrics, alerts, OpenTelemetry) and `cli`. Their modules are
// public at the root, where users have always found them.
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
mod lock;
#[cfg(feature = "ops")]
mod ops;
mod service;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
mod text;
mod throttle;
pub mod transport;
mod wire;
#[cfg(feature = "worker")]
#[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
pub mod worker;

#[cfg(feature = "ops")]
#[cfg_attr(docsrs, doc(cfg(feature = "ops")))]
pub use ops::{alerts, metrics, status};
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use service::http;
pub use service::{case, client, context, hooks, propagation, signal};
pub use wire::{codec, duration, error, faust, limits, model, signing, trace};
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use worker::otel;
#[cfg(feature = "worker")]
#[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
pub use worker::{health, once};

#[doc(inline)]
pub use livecheck_macros::case;
/// Makes a struct a Faust record; see [`faust`].
#[doc(inline)]
pub use livecheck_macros::faust_record;

pub use case::FakeRequest;
pub use case::{AutoId, Case, CaseConfig, CaseDescriptor, CaseOptions, IntoTestId};
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub use cli::{main, main_with};
pub use client::Client;
pub use context::{current_test, propagate, with_test, with_trace};
pub use duration::IntoDuration;
pub use error::{
    AssertionFailed, CaseError, Result, SendError, StartError, TriggerError, WaitError,
};
#[cfg(feature = "worker")]
#[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
pub use health::CaseStatus;
pub use hooks::CaseHooks;
pub use model::{SignalEvent, State, TestExecution, TestReport};
pub use signal::Signal;
pub use transport::{Consume, Introspect, MemoryTransport, Publish, Transport, TransportSnapshot};
#[cfg(feature = "worker")]
#[cfg_attr(docsrs, doc(cfg(feature = "worker")))]
pub use worker::{Observer, Worker, WorkerHandle, WorkerSettings};

/// Fails the test (FAIL) with a message unless `cond` holds.
///
/// ```
/// fn check(side: &str) -> livecheck::Result {
///     livecheck::ensure!(side == "sell", "side changed to {side}");
///     Ok(())
/// }
/// assert!(check("buy").is_err());
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr $(,)?) => {
        if !$cond {
            return ::core::result::Result::Err($crate::CaseError::failed(
                ::core::concat!("condition failed: ", ::core::stringify!($cond)),
            ).into());
        }
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return ::core::result::Result::Err(
                $crate::CaseError::failed(::std::format!($($arg)+)).into()
            );
        }
    };
}

/// Fails the test (FAIL) with a message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)+) => {
        return ::core::result::Result::Err(
            $crate::CaseError::failed(::std::format!($($arg)+)).into()
        )
    };
}

/// Skips the test (SKIP) with a reason: the case decided it has nothing to check this time
/// (Faust's `LiveCheckTestSkipped`, runners.py:82-84). A skip is no failure for the case's
/// health.
///
/// ```
/// fn check(market_open: bool) -> livecheck::Result {
///     if !market_open {
///         livecheck::skip!("the market is closed");
///     }
///     Ok(())
/// }
/// assert!(check(false).is_err());
/// ```
#[macro_export]
macro_rules! skip {
    () => {
        return ::core::result::Result::Err(
            $crate::CaseError::skipped("skipped by the case").into()
        )
    };
    ($($arg:tt)+) => {
        return ::core::result::Result::Err(
            $crate::CaseError::skipped(::std::format!($($arg)+)).into()
        )
    };
}

/// Writes a line to the current test's log: buffered and written as one block when the test
/// ends, or at once for cases with `realtime_logs = true`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)+) => {
        $crate::__private::log(::core::format_args!($($arg)+))
    };
}

pub mod assertions;

/// Declares typed signals, each bound to a case.
///
/// ```ignore
/// livecheck::signal! {
///     /// The order reached the database.
///     pub ORDER_SENT_TO_DB: Order for test_order;
///     pub ORDER_EXECUTED: ExecutionId for test_order;
/// }
/// ```
///
/// Each declaration `VIS IDENT: Type for CASE;` (the last `;` optional) becomes
/// `VIS static IDENT: livecheck::Signal<Type>`, sent under the name `ident` in lower case
/// (`"order_sent_to_db"`) for the case `CASE`, a path to a `#[livecheck::case]` fn. Naming
/// something that is not a case, declaring a signal twice, or leaving out `for CASE` is a compile
/// error on that declaration; the other declarations are still made.
///
/// The expansion names this crate through `$crate`, so it works under any name the crate is
/// depended on (`lc = { package = "livecheck", ... }`, then `lc::signal!`).
#[macro_export]
macro_rules! signal {
    ($($declarations:tt)*) => {
        $crate::__private::signal_impl! { $crate; $($declarations)* }
    };
}

/// What the macros expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::service::case::registry::{registered_cases, BoxFuture, CaseRegistration};
    pub use crate::service::case::trigger::{
        encode_arg, run_in_scope, should_trigger, test_id, trigger,
    };
    pub use crate::service::case::{CaseDescriptor, CaseOptions};
    pub use crate::service::hooks::erased::{instance as hooks, ErasedHooks};
    pub use crate::service::runner::log;
    pub use inventory;
    pub use livecheck_macros::signal_impl;

    /// A livecheck assertion failed: panics with an [`AssertionFailed`](crate::AssertionFailed)
    /// payload, located where the assertion is.
    #[cold]
    #[track_caller]
    pub fn assertion_failed(message: String) -> ! {
        crate::service::runner::install_panic_hook();
        std::panic::panic_any(crate::wire::error::AssertionFailed::new(message))
    }

    /// `assert_eq!`/`assert_ne!` failed: the message the std macros write.
    #[cold]
    #[track_caller]
    pub fn assert_cmp_failed<L: core::fmt::Debug + ?Sized, R: core::fmt::Debug + ?Sized>(
        op: &str,
        left: &L,
        right: &R,
        message: Option<core::fmt::Arguments<'_>>,
    ) -> ! {
        let message = match message {
            Some(message) => format!(
                "assertion `left {op} right` failed: {message}\n  left: {left:?}\n right: {right:?}"
            ),
            None => {
                format!("assertion `left {op} right` failed\n  left: {left:?}\n right: {right:?}")
            }
        };
        assertion_failed(message)
    }

    use crate::wire::error::{ArgumentError, CaseError, IntoCaseResult};
    use crate::wire::model::TestExecution;

    /// Reads a parameter of the case fn from a test execution.
    pub fn argument<T: serde::de::DeserializeOwned>(
        test: &TestExecution,
        index: usize,
        name: &'static str,
    ) -> Result<T, ArgumentError> {
        crate::service::case::argument(test, index, name)
    }

    /// A run that fails at once (arguments that do not decode).
    pub fn ready_err(error: impl Into<CaseError>) -> BoxFuture<crate::Result> {
        let error = error.into();
        Box::pin(async move { Err(error) })
    }

    /// Converts what a case fn returned.
    pub fn into_case_result<R: IntoCaseResult>(result: R) -> crate::Result {
        result.into_case_result()
    }
}
