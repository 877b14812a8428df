//! The harness of the fault scenarios (`tests/tests/faults.rs`): worker *processes* in one
//! consumer group ([`Fleet`]) on tansu or a mock cluster ([`Host`]), a steady load of orders
//! ([`Load`]), plain consumers reading back what was triggered and reported ([`Readers`]), and
//! the verdict on what they saw ([`judge`], [`Outcome::violations`]).

use std::time::{SystemTime, UNIX_EPOCH};

mod fleet;
mod host;
mod judge;
mod load;
mod readers;
#[cfg(test)]
mod tests;

pub use fleet::{owned_partitions, split_between_all, Fleet};
pub use host::{Host, Kind, MockHost};
pub use judge::{judge, FaultWindow, Lost, Outcome};
pub use load::Load;
pub use readers::{Observed, Readers, SeenReport};

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
