//! Limits on what a record may hold, checked before any work is done on it.
//!
//! Anyone who can write to livecheck's topics can write a test id of 600 KB: its report then
//! never fits the broker, and a worker that tried to run it held a slot for good.
//! Records over a limit are skipped, counted by reason
//! (`livecheck_skipped_messages_total{topic, reason}`), logged at most once a minute, and
//! acknowledged, so they are not read again. The defaults are far above anything a real
//! deployment writes.

use crate::wire::model::{SignalEvent, TestExecution, TestReport};

/// The largest test id, case name, signal name and record a worker reads.
/// `#[non_exhaustive]`: start from [`Limits::default`] and set fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes of a test id (the key of its records): 1,024.
    pub max_id_bytes: usize,
    /// Bytes of a case name or signal name: 1,024.
    pub max_name_bytes: usize,
    /// Bytes of one record (its payload) read from any of the three topics: 1 MiB, Kafka's
    /// default `message.max.bytes`.
    pub max_record_bytes: usize,
}

impl Limits {
    /// 1 KiB ids and names, 1 MiB records.
    pub const DEFAULT: Limits = Limits {
        max_id_bytes: 1024,
        max_name_bytes: 1024,
        max_record_bytes: 1024 * 1024,
    };

    /// Checks the size of a record's payload, before it is decoded.
    ///
    /// # Errors
    /// The record is larger than [`max_record_bytes`](Self::max_record_bytes).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn check_record(&self, bytes: usize) -> Result<(), OverLimit> {
        over(OverLimit::Record, bytes, self.max_record_bytes)
    }

    /// Checks a test execution's id and case name.
    ///
    /// # Errors
    /// The first field over its limit.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn check_test(&self, test: &TestExecution) -> Result<(), OverLimit> {
        over(OverLimit::Id, test.id.len(), self.max_id_bytes)?;
        over(OverLimit::Name, test.case_name.len(), self.max_name_bytes)
    }

    /// Checks a signal's test id (its key), case name and signal name.
    ///
    /// # Errors
    /// The first field over its limit.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn check_signal(&self, signal: &SignalEvent) -> Result<(), OverLimit> {
        over(OverLimit::Id, signal.key.len(), self.max_id_bytes)?;
        over(OverLimit::Name, signal.case_name.len(), self.max_name_bytes)?;
        over(
            OverLimit::Name,
            signal.signal_name.len(),
            self.max_name_bytes,
        )
    }

    /// Checks a report's case name, its test (if any), and the signal names it carries.
    ///
    /// # Errors
    /// The first field over its limit.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn check_report(&self, report: &TestReport) -> Result<(), OverLimit> {
        over(OverLimit::Name, report.case_name.len(), self.max_name_bytes)?;
        if let Some(test) = &report.test {
            self.check_test(test)?;
        }
        let names = report
            .signal_latency
            .keys()
            .chain(report.timed_out_signal.as_ref());
        for name in names {
            over(OverLimit::Name, name.len(), self.max_name_bytes)?;
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
fn over(kind: fn(usize, usize) -> OverLimit, bytes: usize, limit: usize) -> Result<(), OverLimit> {
    if bytes > limit {
        Err(kind(bytes, limit))
    } else {
        Ok(())
    }
}

/// What was over a [`Limits`] limit: (bytes, limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum OverLimit {
    /// The record.
    #[error("record of {0} bytes (limit {1})")]
    Record(usize, usize),
    /// A test id.
    #[error("test id of {0} bytes (limit {1})")]
    Id(usize, usize),
    /// A case or signal name.
    #[error("name of {0} bytes (limit {1})")]
    Name(usize, usize),
}

impl OverLimit {
    /// The `reason` label it is counted under: `record_too_large`, `id_too_long`,
    /// `name_too_long`.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            OverLimit::Record(..) => "record_too_large",
            OverLimit::Id(..) => "id_too_long",
            OverLimit::Name(..) => "name_too_long",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(id: &str, case: &str) -> TestExecution {
        let now = chrono::Utc::now();
        TestExecution::new(id, case, now, now)
    }

    #[test]
    fn each_field_has_its_limit_and_reason() {
        let limits = Limits::DEFAULT;
        assert_eq!(limits.check_test(&test(&"x".repeat(1024), "c")), Ok(()));
        let long_id = limits.check_test(&test(&"x".repeat(600_000), "c"));
        assert_eq!(long_id, Err(OverLimit::Id(600_000, 1024)));
        assert_eq!(long_id.unwrap_err().reason(), "id_too_long");
        let long_case = limits.check_test(&test("t", &"c".repeat(1025)));
        assert_eq!(long_case.unwrap_err().reason(), "name_too_long");
        assert_eq!(
            limits.check_record(2 << 20).unwrap_err().to_string(),
            "record of 2097152 bytes (limit 1048576)"
        );
        let signal = SignalEvent {
            signal_name: "s".repeat(2000),
            case_name: "c".into(),
            key: "t".into(),
            value: serde_json::Value::Null,
        };
        assert_eq!(
            limits.check_signal(&signal).unwrap_err().reason(),
            "name_too_long"
        );
        let report = TestReport {
            case_name: "c".into(),
            state: crate::State::Pass,
            test: Some(test(&"x".repeat(5000), "c")),
            runtime: None,
            signal_latency: Default::default(),
            error: None,
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
        };
        assert_eq!(
            limits.check_report(&report).unwrap_err().reason(),
            "id_too_long"
        );
    }
}
