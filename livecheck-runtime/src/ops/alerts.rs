//! Alerts: a case's suite FAIL, STALL and recovery, POSTed as JSON to a webhook.
//!
//! [`Webhook`] is an [`Observer`]: it turns every suite report (a `TestReport` with no test)
//! into an `Alert` and queues it; a task of its own delivers the queue in order, retrying with
//! backoff, so a slow or dead endpoint never holds up the worker's tasks. The payload has a
//! Slack-compatible `text` field (a Slack incoming webhook, or anything that accepts the same —
//! Mattermost, Rocket.Chat — shows it as is) plus structured fields for other receivers:
//!
//! ```json
//! {"text": ":red_circle: livecheck: case `orders::test_order` is failing: 30 consecutive failures (max 30); last: ...",
//!  "event": "fail", "case": "orders::test_order", "state": "FAIL",
//!  "error": "30 consecutive failures (max 30); last: ...",
//!  "timestamp": "2026-11-24T22:11:29.940777Z", "source": "livecheck"}
//! ```
//!
//! Which reports become alerts is case health's business ([`crate::health`]): one per transition
//! — a suite FAIL after `max_consecutive_failures` (or a service down), a STALL after
//! `warn_stalled_after`, one recovery when a newer test passes — with reminders only if the
//! worker's `suite_reminder` asks. Only the group's leader publishes suite reports, so with the
//! same webhook on every worker an incident is still one alert.
//!
//! # Text from records is data
//!
//! The case name and the error text come from reports, and anyone who can write to the topics
//! can write those. In `text`, Slack's control characters `&`, `<` and `>` are escaped
//! (`slack_escape`), so an error holding `<!channel>` or `<https://x|login>` is shown as
//! written, not turned into a mention or a disguised link (by Slack, nor by Mattermost's Slack
//! compatibility, which reads the same `<...>` forms). The
//! structured fields (`case`, `error`) are the report's text unchanged: JSON is their escaping.
//! Mattermost also renders `text` as Markdown and acts on a bare `@channel`, `@here` or `@all`
//! in it, which no escaping Slack shows as written can prevent: for a Mattermost channel, turn
//! channel-wide mentions off (channel moderation, or each member's "Ignore mentions for
//! @channel, @here and @all").
//!
//! # An endpoint is not trusted either
//!
//! Redirects are not followed: a 307 or 308 would POST the alert again wherever it points. A
//! 3xx is a refusal, logged as such. Of an answer that refuses an alert, at most
//! `MAX_ERROR_BODY` (2048) bytes are read, for the log, escaped.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::text::{slack_escape, Escaped};
use crate::wire::model::{State, TestReport};
use crate::worker::Observer;

/// The most of a refused alert's answer read, for the log (Slack says why in a few words:
/// `invalid_payload`, `no_text`): an endpoint cannot make the worker read more.
pub(crate) const MAX_ERROR_BODY: usize = 2048;

/// What happened to the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub(crate) enum AlertEvent {
    /// The case failed `max_consecutive_failures` times in a row.
    Fail,
    /// The case received no test for `warn_stalled_after`.
    Stall,
    /// The case passes again (or its service answers again) after a FAIL or STALL.
    Recovery,
}

/// The JSON body POSTed to the webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Alert {
    /// One line for humans (Slack's `text`), with an emoji by event; the case name and error
    /// in it escaped for Slack's markup (`&`, `<`, `>`).
    pub(crate) text: String,
    /// What happened.
    pub(crate) event: AlertEvent,
    /// The case.
    pub(crate) case: String,
    /// The suite report's state: FAIL, STALL, or PASS for a recovery.
    pub(crate) state: String,
    /// Why (the suite report's error text); none for a recovery.
    pub(crate) error: Option<String>,
    /// When the alert was raised.
    pub(crate) timestamp: DateTime<Utc>,
    /// Always `"livecheck"`, for receivers that take several sources.
    pub(crate) source: &'static str,
}

impl Alert {
    /// The alert a report raises: only suite reports do (FAIL, STALL, and PASS = recovery).
    pub(crate) fn from_report(report: &TestReport) -> Option<Alert> {
        if !report.is_suite() {
            return None;
        }
        // Record text in our markup: escaped, so it shows as written (module docs).
        let case = slack_escape(&report.case_name);
        let why = report
            .error
            .as_deref()
            .map(|e| format!(": {}", slack_escape(e)))
            .unwrap_or_default();
        let (event, text) = match report.state {
            State::Fail => (
                AlertEvent::Fail,
                format!(":red_circle: livecheck: case `{case}` is failing{why}"),
            ),
            State::Stall => (
                AlertEvent::Stall,
                format!(":warning: livecheck: case `{case}` stalled{why}"),
            ),
            State::Pass => (
                AlertEvent::Recovery,
                format!(":large_green_circle: livecheck: case `{case}` recovered"),
            ),
            _ => return None,
        };
        Some(Alert {
            text,
            event,
            case: report.case_name.clone(),
            state: report.state.as_str().to_owned(),
            error: report.error.clone(),
            timestamp: Utc::now(),
            source: "livecheck",
        })
    }
}

/// Where and how alerts are delivered. Its `Debug` shows the URL redacted.
/// `#[non_exhaustive]`: made by [`WebhookConfig::new`], then fields set.
#[derive(Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The endpoint (http, or https with the `tls` feature).
    pub url: reqwest::Url,
    /// Retries of a failed delivery after the first attempt (5).
    pub retries: u32,
    /// Delay before the first retry (1 s); it doubles with each retry.
    pub first_retry_delay: Duration,
    /// Largest delay between retries (30 s); also caps a server's `Retry-After`.
    pub max_retry_delay: Duration,
    /// Timeout of one attempt (10 s).
    pub timeout: Duration,
    /// Alerts waiting for delivery at most (256); more are dropped and counted.
    pub queue: usize,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redacted(&self.url))
            .field("retries", &self.retries)
            .field("first_retry_delay", &self.first_retry_delay)
            .field("max_retry_delay", &self.max_retry_delay)
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .finish()
    }
}

impl WebhookConfig {
    /// Defaults for this URL; it must be http or https (https needs the `tls` feature).
    pub fn new(url: &str) -> Result<Self, AlertError> {
        // The URL is a secret (a Slack webhook's path is its token): errors show it redacted.
        let url = reqwest::Url::parse(url).map_err(|e| AlertError::BadUrl {
            url: "(does not parse)".to_owned(),
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "http" => {}
            "https" if cfg!(feature = "tls") => {}
            "https" => return Err(AlertError::TlsNotBuilt),
            other => {
                return Err(AlertError::BadUrl {
                    url: redacted(&url),
                    reason: format!("scheme {other} is not http or https"),
                })
            }
        }
        Ok(WebhookConfig {
            url,
            retries: 5,
            first_retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            queue: 256,
        })
    }
}

/// A webhook's counters: a snapshot ([`Webhook::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlertStats {
    /// Alerts the endpoint accepted (2xx).
    pub sent: u64,
    /// Alerts given up on (retries exhausted, or refused with a 4xx other than 408/429).
    pub failed: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// HTTP attempts made, retries included.
    pub attempts: u64,
}

/// The counters as the delivery task updates them (read by [`Webhook::stats`] and the
/// worker's metrics).
#[derive(Debug, Default)]
pub(crate) struct AlertCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) attempts: AtomicU64,
}

impl AlertCounters {
    pub(crate) fn snapshot(&self) -> AlertStats {
        AlertStats {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
        }
    }
}

/// Why a webhook could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The URL does not parse or is not http(s).
    #[error("bad webhook URL {url}: {reason}")]
    BadUrl {
        /// The URL given, redacted (scheme and host only), as it may hold a secret.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An https URL, but this build has no TLS.
    #[error("https webhooks need livecheck's `tls` feature (this build has no TLS)")]
    TlsNotBuilt,
    /// Started outside a tokio runtime (the delivery task needs one).
    #[error("the alert webhook must be started inside a tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

enum Message {
    Alert(Alert),
    Flush(oneshot::Sender<()>),
}

/// Delivers alerts to a webhook; add it to a worker as an [`Observer`]. Clones share the queue.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use livecheck::alerts::{Webhook, WebhookConfig};
///
/// let webhook = Webhook::start(WebhookConfig::new("http://127.0.0.1:8080/hooks/livecheck")?)?;
/// let worker = livecheck::Worker::builder(livecheck::MemoryTransport::new())
///     .observer(webhook.clone())
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Webhook {
    queue: mpsc::Sender<Message>,
    stats: Arc<AlertCounters>,
    url: reqwest::Url,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &redacted(&self.url))
            .field("stats", &self.stats)
            .finish()
    }
}

impl Webhook {
    /// Starts the delivery task on the current tokio runtime. It ends once every clone is
    /// dropped and the queue is delivered.
    pub fn start(config: WebhookConfig) -> Result<Webhook, AlertError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AlertError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("livecheck/", env!("CARGO_PKG_VERSION")))
            // A 307/308 would POST the alert again wherever it points: a 3xx is a refusal.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(AlertError::Client)?;
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        let stats = Arc::new(AlertCounters::default());
        let url = config.url.clone();
        runtime.spawn(deliver(client, config, rx, stats.clone()));
        Ok(Webhook { queue, stats, url })
    }

    /// The webhook's counters now.
    pub fn stats(&self) -> AlertStats {
        self.stats.snapshot()
    }

    /// The live counters, for the worker's metrics.
    pub(crate) fn counters(&self) -> Arc<AlertCounters> {
        self.stats.clone()
    }

    /// Queues an alert without waiting; false (and counted as dropped) if the queue is full.
    pub(crate) fn send(&self, alert: Alert) -> bool {
        match self.queue.try_send(Message::Alert(alert)) {
            Ok(()) => true,
            Err(error) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                let alert = match error.into_inner() {
                    Message::Alert(alert) => alert,
                    Message::Flush(_) => return false,
                };
                tracing::error!(case = %Escaped(&alert.case), event = ?alert.event,
                    "alert dropped: the webhook queue is full");
                false
            }
        }
    }

    /// Waits until every alert queued before this call is delivered or given up on, at most
    /// `within`; true if it got there. Call it before exiting so a last alert is not lost.
    pub async fn flush(&self, within: Duration) -> bool {
        let (done, flushed) = oneshot::channel();
        let queued = tokio::time::timeout(within, self.queue.send(Message::Flush(done)));
        let deadline = tokio::time::Instant::now() + within;
        match queued.await {
            Ok(Ok(())) => matches!(tokio::time::timeout_at(deadline, flushed).await, Ok(Ok(()))),
            _ => false,
        }
    }
}

impl Observer for Webhook {
    fn on_report(&self, report: &TestReport) {
        if let Some(alert) = Alert::from_report(report) {
            self.send(alert);
        }
    }
}

async fn deliver(
    client: reqwest::Client,
    config: WebhookConfig,
    mut queue: mpsc::Receiver<Message>,
    stats: Arc<AlertCounters>,
) {
    // One alert at a time, in order: a recovery must not overtake the FAIL it ends.
    while let Some(message) = queue.recv().await {
        match message {
            Message::Alert(alert) => deliver_one(&client, &config, &alert, &stats).await,
            Message::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn deliver_one(
    client: &reqwest::Client,
    config: &WebhookConfig,
    alert: &Alert,
    stats: &AlertCounters,
) {
    let mut delay = config.first_retry_delay;
    for attempt in 0..=config.retries {
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        let mut wait = delay;
        match client.post(config.url.clone()).json(alert).send().await {
            Ok(response) if response.status().is_success() => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(case = %Escaped(&alert.case), event = ?alert.event, "alert sent");
                return;
            }
            Ok(mut response) => {
                let status = response.status();
                let after = retry_after(&response);
                // What the endpoint says, a few bytes of it, escaped: its text, not ours.
                let body =
                    match crate::service::http::read_bounded(&mut response, MAX_ERROR_BODY).await {
                        Ok((body, _)) => String::from_utf8_lossy(&body).into_owned(),
                        Err(_) => String::new(),
                    };
                let body = Escaped(body.trim());
                let case = Escaped(&alert.case);
                if !retryable(status) {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    if status.is_redirection() {
                        tracing::error!(%case, event = ?alert.event, %status,
                            "alert refused: the webhook redirects, and redirects are not \
                             followed; give the URL it redirects to");
                    } else {
                        tracing::error!(%case, event = ?alert.event, %status, %body,
                            "alert refused by the webhook; not retried");
                    }
                    return;
                }
                if let Some(after) = after {
                    wait = after;
                }
                tracing::warn!(%case, %status, %body, attempt, "alert not accepted; will retry");
            }
            Err(error) => {
                // reqwest's message names the URL, whose path is a secret.
                let error = error.without_url();
                tracing::warn!(case = %Escaped(&alert.case), %error, attempt,
                    "alert not delivered; will retry");
            }
        }
        if attempt < config.retries {
            tokio::time::sleep(wait.min(config.max_retry_delay)).await;
            delay = (delay * 2).min(config.max_retry_delay);
        }
    }
    stats.failed.fetch_add(1, Ordering::Relaxed);
    tracing::error!(case = %Escaped(&alert.case), event = ?alert.event,
        attempts = config.retries + 1, "alert not delivered: giving up");
}

/// The URL without its path, query and credentials, for logs: webhook URLs carry secrets (a
/// Slack webhook's path is its token).
pub(crate) fn redacted(url: &reqwest::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}/…",
        url.scheme(),
        url.host_str().unwrap_or("?")
    )
}

/// Server errors, throttling and request timeouts may pass; other client errors will not.
fn retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

/// A `Retry-After` in seconds (what Slack sends when it throttles).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn suite(state: State, error: Option<&str>) -> TestReport {
        TestReport {
            case_name: "orders::test_order".into(),
            state,
            test: None,
            runtime: None,
            signal_latency: BTreeMap::new(),
            error: error.map(Into::into),
            traceback: None,
            attempt: 1,
            timed_out_signal: None,
            trace_id: None,
        }
    }

    #[test]
    fn suite_reports_become_alerts() {
        let fail = Alert::from_report(&suite(State::Fail, Some("3 consecutive failures"))).unwrap();
        assert_eq!(fail.event, AlertEvent::Fail);
        assert_eq!(fail.state, "FAIL");
        assert!(fail
            .text
            .contains("`orders::test_order` is failing: 3 consecutive failures"));
        let stall = Alert::from_report(&suite(State::Stall, Some("no test"))).unwrap();
        assert_eq!(stall.event, AlertEvent::Stall);
        let recovery = Alert::from_report(&suite(State::Pass, None)).unwrap();
        assert_eq!(recovery.event, AlertEvent::Recovery);
        assert!(recovery.text.contains("recovered"));
        let json = serde_json::to_value(&recovery).unwrap();
        assert_eq!(json["event"], "recovery");
        assert_eq!(json["state"], "PASS");
        assert_eq!(json["case"], "orders::test_order");
    }

    #[test]
    fn test_reports_raise_no_alert() {
        let mut report = suite(State::Fail, Some("x"));
        let now = Utc::now();
        report.test = Some(crate::TestExecution::new("t", &report.case_name, now, now));
        assert_eq!(Alert::from_report(&report), None);
    }

    #[test]
    fn urls_are_checked() {
        assert!(WebhookConfig::new("http://127.0.0.1:1/x").is_ok());
        assert!(matches!(
            WebhookConfig::new("ftp://example.invalid/"),
            Err(AlertError::BadUrl { .. })
        ));
        assert!(matches!(
            WebhookConfig::new("not a url"),
            Err(AlertError::BadUrl { .. })
        ));
        let https = WebhookConfig::new("https://example.invalid/hook");
        assert_eq!(https.is_ok(), cfg!(feature = "tls"));
    }

    #[tokio::test]
    async fn urls_are_logged_without_their_secret_path() {
        let url = reqwest::Url::parse("http://hooks.example:8080/services/T0/B0/secret").unwrap();
        assert_eq!(redacted(&url), "http://hooks.example:8080/…");
        let webhook = Webhook::start(WebhookConfig::new(url.as_str()).unwrap()).unwrap();
        let shown = format!("{webhook:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    /// Slack's (and Mattermost's) `<...>` forms in record text are shown as written; our own
    /// markup (emoji, the case in a code span) still works; the structured fields are unchanged.
    #[test]
    fn record_text_in_the_alert_is_escaped_for_slack() {
        let error = "<!channel> & <https://x|login> <@U012AB3CD>";
        let fail = Alert::from_report(&suite(State::Fail, Some(error))).unwrap();
        assert_eq!(
            fail.text,
            ":red_circle: livecheck: case `orders::test_order` is failing: \
             &lt;!channel&gt; &amp; &lt;https://x|login&gt; &lt;@U012AB3CD&gt;"
        );
        assert!(
            !fail.text.contains('<') && !fail.text.contains('>'),
            "{}",
            fail.text
        );
        assert_eq!(fail.error.as_deref(), Some(error));
        let mut report = suite(State::Stall, None);
        report.case_name = "orders::<!here>".into();
        let stall = Alert::from_report(&report).unwrap();
        assert!(
            stall.text.contains("`orders::&lt;!here&gt;` stalled"),
            "{}",
            stall.text
        );
        assert_eq!(stall.case, "orders::<!here>");
    }

    use crate::service::http::test_peer::peer;

    fn quick(port: u16) -> WebhookConfig {
        let mut config = WebhookConfig::new(&format!("http://127.0.0.1:{port}/hook")).unwrap();
        config.retries = 0;
        config
    }

    /// A 307 would POST the alert again wherever it points: not followed, a refusal.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        static ELSEWHERE: AtomicU64 = AtomicU64::new(0);
        let (elsewhere, visits) = peer(|stream| {
            let _ =
                std::io::Write::write_all(stream, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        });
        ELSEWHERE.store(u64::from(elsewhere), Ordering::SeqCst);
        let (port, _) = peer(|stream| {
            use std::io::Write as _;
            let to = ELSEWHERE.load(Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{to}/stolen\r\n\
                 content-length: 0\r\n\r\n"
            );
        });
        let webhook = Webhook::start(quick(port)).unwrap();
        webhook.send(Alert::from_report(&suite(State::Fail, Some("x"))).unwrap());
        assert!(webhook.flush(Duration::from_secs(20)).await);
        let stats = webhook.stats();
        assert_eq!((stats.sent, stats.failed, stats.attempts), (0, 1, 1));
        assert_eq!(
            visits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
    }

    #[derive(Clone, Default)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Of a refusal's body, a few KiB are read for the log, escaped; a body that never ends
    /// does not hold the delivery.
    #[tokio::test]
    async fn a_refusal_body_is_logged_bounded_and_escaped() {
        let logs = Logs::default();
        let writer = logs.clone();
        let _default = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        );
        let (port, _) = peer(|stream| {
            use std::io::Write as _;
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\n\r\ninvalid_payload\n\x1b[31mFORGED LINE\n",
            );
            let chunk = vec![b'A'; 64 * 1024];
            while stream.write_all(&chunk).is_ok() {}
        });
        let webhook = Webhook::start(quick(port)).unwrap();
        webhook.send(Alert::from_report(&suite(State::Fail, Some("x"))).unwrap());
        assert!(
            webhook.flush(Duration::from_secs(20)).await,
            "delivery held"
        );
        assert_eq!(webhook.stats().failed, 1);
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("alert refused"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            line.contains("body=invalid_payload\\n\\u{1b}[31mFORGED LINE\\nAAA"),
            "{line}"
        );
        assert!(!text.contains('\x1b') && !text.lines().any(|l| l.starts_with("FORGED")));
        assert!(line.len() < MAX_ERROR_BODY + 500, "{} bytes", line.len());
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        assert!(retryable(reqwest::StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable(reqwest::StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(reqwest::StatusCode::NOT_FOUND));
        assert!(!retryable(reqwest::StatusCode::BAD_REQUEST));
    }
}
