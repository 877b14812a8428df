//! Signed test context (opt-in): with a key shared by the services and the workers, whoever
//! starts a test signs it, and every entry point verifies before it honours a test context.
//!
//! Without a key (the default, as Faust), anyone who can send an HTTP request to a service
//! can make it a test with `LiveCheck-Test-*` headers, and anyone who can write to the bus can
//! deliver a value to a running test. Strip those headers at your edge, or set a key:
//!
//! - `LIVECHECK_TEST_KEY` (the secret itself) or `LIVECHECK_TEST_KEY_FILE` (a file holding it),
//!   read on first use; or [`install`] from code. Every service and worker of a deployment
//!   needs the same key.
//! - Signing: `maybe_trigger` / `trigger` (and so the worker's fake requests, which go through
//!   the service) put an HMAC-SHA256 of the test's id, case, timestamp and expires in the test
//!   ([`TestExecution::signature`](crate::TestExecution::signature)); it travels in the
//!   `LiveCheck-Test-Signature` header beside the `LiveCheck-Test-*` ones, over HTTP and Kafka,
//!   and in the test record. Records a service or worker writes to the bus (signals, markers)
//!   and to the report topic carry an HMAC of their key and payload in the
//!   `livecheck-signature` header.
//! - Verifying: the tower layer ([`TestContextLayer`](crate::propagation::http::TestContextLayer)), Kafka
//!   header extraction ([`test_from_message`](crate::propagation::kafka::test_from_message)), the
//!   worker for test records, and the Kafka transport for signals, markers and peers' reports.
//!   Unsigned or badly signed context is dropped — a request runs as an ordinary request, a
//!   record is skipped — counted ([`untrusted`], `livecheck_untrusted_test_context_total
//!   {source}`) and logged at most once a minute.
//!
//! A signed deployment cannot take Faust services' tests or signals: Faust does not sign
//! (docs/kafka.md, "Mixed deployments with Faust").

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use ring::hmac;

use crate::throttle::Throttle;
use crate::wire::model::TestExecution;

#[cfg(any(feature = "http", feature = "kafka"))]
pub(crate) use crate::wire::model::HEADER_TEST_SIGNATURE;
/// Header carrying a record's signature on the bus and the report topic (Kafka).
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) const HEADER_RECORD_SIGNATURE: &str = "livecheck-signature";
/// The environment variable holding the key.
pub(crate) const KEY_ENV: &str = "LIVECHECK_TEST_KEY";
/// The environment variable naming a file that holds the key.
pub(crate) const KEY_FILE_ENV: &str = "LIVECHECK_TEST_KEY_FILE";

/// The shared secret of a deployment. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct TestKey(hmac::Key);

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TestKey(<hidden>)")
    }
}

/// A key that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read.
    #[error("{KEY_FILE_ENV}={path}: {cause}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The key (or its file) is empty.
    #[error("the test key in {0} is empty")]
    Empty(&'static str),
}

impl TestKey {
    /// A key from a secret (any bytes; 32 random bytes or more are a good secret).
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        TestKey(hmac::Key::new(hmac::HMAC_SHA256, secret.as_ref()))
    }

    /// The key the environment gives: `LIVECHECK_TEST_KEY`, else the file named by
    /// `LIVECHECK_TEST_KEY_FILE` (its content, trailing newline trimmed), else none.
    ///
    /// # Errors
    /// The file cannot be read, or the key is empty.
    pub fn from_env() -> Result<Option<TestKey>, KeyError> {
        if let Some(secret) = std::env::var_os(KEY_ENV) {
            if secret.is_empty() {
                return Err(KeyError::Empty(KEY_ENV));
            }
            return Ok(Some(TestKey::new(secret.as_encoded_bytes())));
        }
        let Some(path) = std::env::var_os(KEY_FILE_ENV).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(|cause| KeyError::File { path, cause })?;
        let secret = bytes.trim_ascii_end();
        if secret.is_empty() {
            return Err(KeyError::Empty(KEY_FILE_ENV));
        }
        Ok(Some(TestKey::new(secret)))
    }

    /// The signature of a test: HMAC-SHA256 of its id, case, timestamp and expires, in hex.
    pub(crate) fn sign_test(&self, test: &TestExecution) -> String {
        hex(hmac::sign(&self.0, &test_message(test)).as_ref())
    }

    /// Whether `test` carries a valid signature.
    pub(crate) fn verify_test(&self, test: &TestExecution) -> bool {
        let Some(signature) = test.signature.as_deref().and_then(unhex) else {
            return false;
        };
        hmac::verify(&self.0, &test_message(test), &signature).is_ok()
    }

    /// The signature of a Kafka record (`kind`: what the record is, so that one kind's
    /// signature is not another's), over its key and payload, in hex.
    #[cfg(feature = "kafka")]
    pub(crate) fn sign_record(&self, kind: &str, key: &[u8], payload: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        for part in [kind.as_bytes(), key] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        context.update(payload);
        hex(context.sign().as_ref())
    }

    /// Whether `signature` (hex) signs this record.
    #[cfg(feature = "kafka")]
    pub(crate) fn verify_record(
        &self,
        kind: &str,
        key: &[u8],
        payload: &[u8],
        signature: Option<&[u8]>,
    ) -> bool {
        let Some(signature) = signature
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(unhex)
        else {
            return false;
        };
        let mut data = Vec::with_capacity(kind.len() + key.len() + payload.len() + 16);
        for part in [kind.as_bytes(), key] {
            data.extend((part.len() as u64).to_be_bytes());
            data.extend(part);
        }
        data.extend(payload);
        hmac::verify(&self.0, &data, &signature).is_ok()
    }
}

/// What a test's signature covers: its id, case, timestamp and expires (microseconds), each
/// length-prefixed so that no two tests share a message.
fn test_message(test: &TestExecution) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + test.id.len() + test.case_name.len());
    out.extend(b"livecheck-test-v1");
    for part in [test.id.as_bytes(), test.case_name.as_bytes()] {
        out.extend((part.len() as u64).to_be_bytes());
        out.extend(part);
    }
    out.extend(test.timestamp.timestamp_micros().to_be_bytes());
    out.extend(test.expires.timestamp_micros().to_be_bytes());
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    // A SHA-256 tag: 64 hex digits, nothing longer is worth reading.
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The key of this process, `None` before anything asked.
fn slot() -> &'static RwLock<Option<Arc<TestKey>>> {
    static KEY: OnceLock<RwLock<Option<Arc<TestKey>>>> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = match TestKey::from_env() {
            Ok(key) => key,
            Err(error) => {
                // Fail closed: a deployment that meant to sign must not fall back to
                // trusting everything. A random key verifies nothing anybody else signed.
                tracing::error!(%error, "the test key cannot be read: no test context will be \
                    trusted, and tests started here verify nowhere else");
                Some(TestKey::new(uuid::Uuid::new_v4().as_bytes()))
            }
        };
        RwLock::new(key.map(Arc::new))
    })
}

/// Sets the key of this process (services and worker alike), replacing what the environment
/// gave; `None` turns signing off.
pub fn install(key: Option<TestKey>) {
    *slot().write().unwrap_or_else(|e| e.into_inner()) = key.map(Arc::new);
}

/// The key of this process: what [`install`] set, else what the environment gives.
pub(crate) fn key() -> Option<Arc<TestKey>> {
    slot().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Whether test context is signed and verified in this process.
#[cfg_attr(not(feature = "worker"), allow(dead_code))]
pub(crate) fn is_enabled() -> bool {
    key().is_some()
}

/// Where untrusted test context was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// `LiveCheck-Test-*` headers of an HTTP request (the tower layer).
    Http,
    /// `LiveCheck-Test-*` headers of a Kafka record a service consumes.
    KafkaHeaders,
    /// A record of the tests topic.
    TestRecord,
    /// A signal on the bus.
    Signal,
    /// A worker's marker (claim, progress) on the bus.
    Marker,
    /// A peer's report on the report topic.
    Report,
}

impl Source {
    /// Every source.
    #[cfg_attr(not(feature = "ops"), allow(dead_code))]
    pub(crate) const ALL: [Source; 6] = [
        Source::Http,
        Source::KafkaHeaders,
        Source::TestRecord,
        Source::Signal,
        Source::Marker,
        Source::Report,
    ];

    /// The `source` label: `http`, `kafka_headers`, `test_record`, `signal`, `marker`,
    /// `report`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::KafkaHeaders => "kafka_headers",
            Source::TestRecord => "test_record",
            Source::Signal => "signal",
            Source::Marker => "marker",
            Source::Report => "report",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

static UNTRUSTED: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
#[cfg_attr(not(any(feature = "http", feature = "kafka")), allow(dead_code))]
static UNTRUSTED_LOG: Throttle = Throttle::new();

/// Test context from `source` dropped in this process so far (unsigned or badly signed).
pub fn untrusted(source: Source) -> u64 {
    UNTRUSTED[source.index()].load(Ordering::Relaxed)
}

/// Counts test context from `source` that was dropped, and logs it at most once a minute.
#[cfg_attr(not(any(feature = "http", feature = "kafka")), allow(dead_code))]
pub(crate) fn reject(source: Source, id: &str) {
    let n = UNTRUSTED[source.index()].fetch_add(1, Ordering::Relaxed) + 1;
    if UNTRUSTED_LOG.ready() {
        tracing::warn!(
            source = source.as_str(),
            test = %crate::text::Escaped(truncated(id)),
            dropped = n,
            "unsigned or badly signed test context dropped (logged at most once a minute; \
             livecheck_untrusted_test_context_total counts every one)"
        );
    }
}

/// Whether `source` is test context carried by a request or a message (not a test record).
fn carried(source: Source) -> bool {
    matches!(source, Source::Http | Source::KafkaHeaders)
}

fn expired(test: &TestExecution) -> bool {
    test.is_expired_at(chrono::Utc::now())
}

/// At most 64 bytes of `id`, for a log line.
#[cfg_attr(not(any(feature = "http", feature = "kafka")), allow(dead_code))]
pub(crate) fn truncated(id: &str) -> &str {
    let mut end = id.len().min(64);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

/// Whether the test context `test` (read from `source`) is to be honoured: always without a
/// key; with one, only if it carries a valid signature and — for context carried by a request
/// or a message — has not expired (a signed context replayed after its test is over is no test
/// either; an expired test *record* is the worker's to skip and report); else it is counted and
/// dropped.
#[cfg_attr(not(any(feature = "http", feature = "kafka")), allow(dead_code))]
pub(crate) fn admit(source: Source, test: &TestExecution) -> bool {
    match key() {
        None => true,
        Some(key) if key.verify_test(test) && !(carried(source) && expired(test)) => true,
        Some(_) => {
            reject(source, &test.id);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn test() -> TestExecution {
        let t = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        TestExecution::new(
            "order-1",
            "orders.test_order",
            t,
            t + chrono::Duration::hours(3),
        )
    }

    #[test]
    fn a_signed_test_verifies_and_any_change_breaks_it() {
        let key = TestKey::new("s3cret");
        let mut signed = test();
        signed.signature = Some(key.sign_test(&signed).into());
        assert!(key.verify_test(&signed));
        assert!(!TestKey::new("other").verify_test(&signed), "another key");
        assert!(!key.verify_test(&test()), "unsigned");
        let changes: [fn(&mut TestExecution); 4] = [
            |t| t.id.push('x'),
            |t| t.case_name.push('x'),
            |t| t.timestamp += chrono::Duration::microseconds(1),
            |t| t.expires += chrono::Duration::hours(1),
        ];
        for change in changes {
            let mut forged = signed.clone();
            change(&mut forged);
            assert!(!key.verify_test(&forged), "{forged:?}");
        }
        // Arguments are not covered: they are the test's data, not its identity.
        let mut args = signed.clone();
        args.test_args.push("sell".into());
        assert!(key.verify_test(&args));
        for bad in ["", "zz", &"0".repeat(64), &"a".repeat(10_000)] {
            let mut forged = signed.clone();
            forged.signature = Some(bad.into());
            assert!(!key.verify_test(&forged), "{bad:?}");
        }
    }

    #[test]
    fn id_and_case_cannot_trade_bytes() {
        let key = TestKey::new("k");
        let mut a = test();
        a.id = "ab".into();
        a.case_name = "c".into();
        let mut b = test();
        b.id = "a".into();
        b.case_name = "bc".into();
        assert_ne!(key.sign_test(&a), key.sign_test(&b));
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn records_are_signed_by_kind_key_and_payload() {
        let key = TestKey::new("k");
        let sig = key.sign_record("signal", b"t1", b"{}");
        assert!(key.verify_record("signal", b"t1", b"{}", Some(sig.as_bytes())));
        assert!(!key.verify_record("report", b"t1", b"{}", Some(sig.as_bytes())));
        assert!(!key.verify_record("signal", b"t2", b"{}", Some(sig.as_bytes())));
        assert!(!key.verify_record("signal", b"t1", b"{ }", Some(sig.as_bytes())));
        assert!(!key.verify_record("signal", b"t1", b"{}", None));
    }

    #[test]
    fn a_signed_context_carried_after_its_test_expired_is_not_honoured() {
        let key = TestKey::new("k");
        let mut old = test(); // expired in 2026-12-07 15:00
        old.signature = Some(key.sign_test(&old).into());
        assert!(key.verify_test(&old));
        assert!(carried(Source::Http) && carried(Source::KafkaHeaders));
        assert!(
            !carried(Source::TestRecord),
            "the worker skips and reports expired records"
        );
        assert!(expired(&old));
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", TestKey::new("hunter2")),
            "TestKey(<hidden>)"
        );
    }
}
