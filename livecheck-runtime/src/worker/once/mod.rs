//! One-shot runs for CI: `livecheck run --once` triggers each selected case once, waits for
//! its report, retries failures if asked, and gives a verdict per case and an exit code.
//!
//! How a case is triggered once:
//! - a case with a `fake_request` gets one call of it, as its timer would make, and the first
//!   test of that case that reaches the run afterwards is the run's test of it (a test that live
//!   traffic triggered at the same moment may be taken instead: it tests the same thing);
//! - a case without a `fake_request` and without parameters is triggered directly, with a new id;
//! - a case with parameters and no `fake_request` cannot be triggered here (the run would have to
//!   invent its arguments): it is SKIP, and says so;
//! - an inactive case is SKIP.
//!
//! The run is a worker of its own ([`crate::Worker`]) that runs only the tests it triggered: any
//! other test on the topic is acknowledged without being run, so a CI run next to live workers
//! does not run their tests. Fake-request timers are off. A failed case is run again up to
//! `retries` times; one that passes on a retry is *flaky*, which is not a pass (see
//! [`Verdict::Flaky`]).
//!
//! Its files: `run` (the run: [`OnceRun`], [`OnceSettings`]) and `claims` (which tests are the
//! run's) orchestrate; `summary` holds what the run found ([`Summary`], [`Verdict`]); `render`
//! (the summary printed, the JSON) and [`junit`] (the JUnit XML) show it.

mod claims;
pub mod junit;
mod render;
mod run;
mod summary;

pub use run::{OnceRun, OnceSettings};
pub use summary::{Attempt, CaseOutcome, Summary, Verdict};

#[cfg(test)]
mod tests;
