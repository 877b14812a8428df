//! Faust's URL helpers for cases and fake requests: [`UrlClient`] (`get_url`, `post_url`,
//! `url_request`) applies the case's `url_timeout_total`, `url_timeout_connect`, and retries a
//! failing request `url_error_retries` times, waiting `url_error_delay_min` ×
//! `url_error_delay_backoff`ⁿ (capped at `url_error_delay_max`). Retries exhausted → a "service
//! down" suite FAIL report for the case; a later success recovers it. A fake request gets one
//! with its case's options ([`FakeRequest::http`](crate::FakeRequest::http)); so does a running
//! case ([`current`]). A service's answer is not trusted: redirects are not followed (a 3xx is
//! an [`HttpError::Status`]) and a body is read up to [`MAX_BODY_BYTES`] (8 MiB), no more
//! ([`HttpError::BodyTooLarge`]). Requests they make carry the test's headers
//! ([`crate::propagation::http`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use reqwest_middleware::ClientWithMiddleware;
use tokio::time::Instant;

use crate::service::case::CaseOptions;
use crate::service::context::current_execution;
use crate::service::propagation::http::with_propagation;

/// The largest response body the URL helpers read by default (8 MiB); a larger one is an
/// [`HttpError::BodyTooLarge`], read no further. [`UrlClient::max_body_bytes`] changes it.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// Why an HTTP helper failed.
///
/// Its URL is shown without user and password (`hide_url_secrets`): the error goes into the
/// test's report, which anyone who reads the report topic reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Every attempt failed (connection error, timeout or 5xx): the service counts as down.
    #[error("service down: {method} {url} failed {attempts} times; last: {last}")]
    ServiceDown {
        /// Method.
        method: Method,
        /// URL, without user and password.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The service answered with a client error (4xx), or a redirect (3xx), which is not
    /// followed: not retried.
    #[error("{method} {url}: {status}")]
    Status {
        /// Method.
        method: Method,
        /// URL, without user and password.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The response's body is larger than the client reads ([`MAX_BODY_BYTES`] by default):
    /// not retried, and not read further.
    #[error("{method} {url}: the response's body is larger than {limit} bytes")]
    BodyTooLarge {
        /// Method.
        method: Method,
        /// URL, without user and password.
        url: String,
        /// The most the client reads.
        limit: usize,
    },
    /// The request could not be built (bad URL, body that does not serialize).
    #[error("{0}")]
    Build(String),
}

/// What a [`UrlClient`] reports to its case's health.
pub(crate) trait ServiceHealth: Send + Sync {
    fn service_down(&self, message: String) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    fn service_up(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Faust's URL helpers with a case's timeouts and retries.
///
/// Unlike Faust's (aiohttp follows redirects), they do not follow redirects: a 3xx answer is an
/// [`HttpError::Status`]. And they read a body up to [`MAX_BODY_BYTES`].
#[derive(Clone)]
pub struct UrlClient {
    client: ClientWithMiddleware,
    options: CaseOptions,
    health: Option<Arc<dyn ServiceHealth>>,
    max_body: usize,
}

impl std::fmt::Debug for UrlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlClient")
            .field("url_timeout_total", &self.options.url_timeout_total)
            .field("url_error_retries", &self.options.url_error_retries)
            .field("max_body_bytes", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl UrlClient {
    /// Helpers with these options, reporting to no case (for use outside a worker).
    pub fn new(options: CaseOptions) -> Self {
        Self::with_health(options, None)
    }

    pub(crate) fn with_health(
        options: CaseOptions,
        health: Option<Arc<dyn ServiceHealth>>,
    ) -> Self {
        // A redirect could send the test's request, headers and body to a host of the
        // answer's choosing: not followed.
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(connect) = options.url_timeout_connect {
            builder = builder.connect_timeout(connect);
        }
        // Building fails only where the system's TLS set-up does; the request then says why.
        let client = builder.build().unwrap_or_else(|_| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        });
        UrlClient {
            client: with_propagation(client),
            options,
            health,
            max_body: MAX_BODY_BYTES,
        }
    }

    /// Reads response bodies up to `bytes` (default [`MAX_BODY_BYTES`]); a larger body is an
    /// [`HttpError::BodyTooLarge`].
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// `GET url`; the body of the response.
    pub async fn get_url(&self, url: &str) -> Result<Bytes, HttpError> {
        self.url_request(Method::GET, url, None).await
    }

    /// `POST url` with a JSON body; the body of the response.
    pub async fn post_url<T: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        body: &T,
    ) -> Result<Bytes, HttpError> {
        let body = serde_json::to_vec(body).map_err(|e| HttpError::Build(e.to_string()))?;
        self.url_request(Method::POST, url, Some(body)).await
    }

    /// Any request, with an optional JSON body, retried as the case's options say.
    pub async fn url_request(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, HttpError> {
        let max_body = self.max_body;
        let attempt = || {
            let mut request = self.client.request(method.clone(), url);
            if let Some(total) = self.options.url_timeout_total {
                request = request.timeout(total);
            }
            if let Some(body) = &body {
                request = request
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            async move {
                match request.send().await {
                    Ok(response) if response.status().is_server_error() => {
                        Err(Attempt::Retry(format!("{}", response.status())))
                    }
                    Ok(response)
                        if response.status().is_client_error()
                            || response.status().is_redirection() =>
                    {
                        Err(Attempt::Fatal(response.status()))
                    }
                    // Known too large before a byte is read.
                    Ok(response)
                        if response
                            .content_length()
                            .is_some_and(|length| length > max_body as u64) =>
                    {
                        Err(Attempt::TooLarge)
                    }
                    Ok(mut response) => match read_bounded(&mut response, max_body).await {
                        Ok((body, false)) => Ok(body),
                        Ok((_, true)) => Err(Attempt::TooLarge),
                        Err(e) => Err(Attempt::Retry(error_chain(&e.without_url()))),
                    },
                    Err(reqwest_middleware::Error::Reqwest(e)) if e.is_builder() => Err(
                        Attempt::Build(crate::text::hide_url_userinfo(&error_chain(&e))),
                    ),
                    // The URL is in the error already (shown without its user and password).
                    Err(reqwest_middleware::Error::Reqwest(e)) => {
                        Err(Attempt::Retry(error_chain(&e.without_url())))
                    }
                    Err(e) => Err(Attempt::Retry(crate::text::hide_url_userinfo(
                        &error_chain(&e),
                    ))),
                }
            }
        };
        let shown_url = || crate::text::hide_url_userinfo(url);
        match retry(&self.options, attempt).await {
            Ok(bytes) => {
                if let Some(health) = &self.health {
                    health.service_up().await;
                }
                Ok(bytes)
            }
            Err(Failure::Fatal(status)) => Err(HttpError::Status {
                method,
                url: shown_url(),
                status,
            }),
            Err(Failure::TooLarge) => Err(HttpError::BodyTooLarge {
                method,
                url: shown_url(),
                limit: max_body,
            }),
            Err(Failure::Build(message)) => Err(HttpError::Build(message)),
            Err(Failure::Exhausted { attempts, last }) => {
                let error = HttpError::ServiceDown {
                    method,
                    url: shown_url(),
                    attempts,
                    last,
                };
                if let Some(health) = &self.health {
                    health.service_down(error.to_string()).await;
                }
                Err(error)
            }
        }
    }
}

/// Reads `response`'s body chunk by chunk, at most `limit` bytes (never `bytes()`, which reads
/// whatever the peer sends): the body, and whether there was more, in which case what was read
/// is its first `limit` bytes and the rest is left unread.
pub(crate) async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Bytes, bool), reqwest::Error> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body.freeze(), true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), false))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The URL helpers of the running case (or default options outside one).
pub fn current() -> UrlClient {
    current_execution()
        .and_then(|execution| execution.http.clone())
        .and_then(|any| any.downcast::<UrlClient>().ok())
        .map(|client| UrlClient::clone(&client))
        .unwrap_or_else(|| UrlClient::new(CaseOptions::DEFAULT))
}

/// `GET url` with the running case's helpers.
pub async fn get_url(url: &str) -> Result<Bytes, HttpError> {
    current().get_url(url).await
}

/// `POST url` with a JSON body, with the running case's helpers.
pub async fn post_url<T: serde::Serialize + ?Sized>(
    url: &str,
    body: &T,
) -> Result<Bytes, HttpError> {
    current().post_url(url, body).await
}

/// One attempt's failure.
pub(crate) enum Attempt {
    /// Worth retrying: connection error, timeout, 5xx.
    Retry(String),
    /// Not worth retrying: 4xx, 3xx.
    Fatal(reqwest::StatusCode),
    /// Not worth retrying: the body is larger than the client reads.
    TooLarge,
    /// The request itself is wrong.
    Build(String),
}

pub(crate) enum Failure {
    Fatal(reqwest::StatusCode),
    TooLarge,
    Build(String),
    Exhausted { attempts: u32, last: String },
}

/// The delays before retry 1, 2, ...: `min × backoffⁿ⁻¹`, capped at `max` (Faust's schedule).
pub(crate) fn retry_delays(options: &CaseOptions) -> impl Iterator<Item = Duration> + '_ {
    let mut delay = options.url_error_delay_min;
    (0..options.url_error_retries).map(move |_| {
        let this = delay.min(options.url_error_delay_max);
        delay = delay
            .mul_f64(options.url_error_delay_backoff)
            .min(options.url_error_delay_max);
        this
    })
}

/// Runs `attempt` until it succeeds, fails fatally, or the retries are used up.
pub(crate) async fn retry<T, F, Fut>(options: &CaseOptions, mut attempt: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let mut delays = retry_delays(options);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let last = match attempt().await {
            Ok(value) => return Ok(value),
            Err(Attempt::Fatal(status)) => return Err(Failure::Fatal(status)),
            Err(Attempt::TooLarge) => return Err(Failure::TooLarge),
            Err(Attempt::Build(message)) => return Err(Failure::Build(message)),
            Err(Attempt::Retry(last)) => last,
        };
        match delays.next() {
            Some(delay) => {
                tracing::debug!(attempts, ?delay, %last, "HTTP request failed; retrying");
                tokio::time::sleep_until(Instant::now() + delay).await;
            }
            None => return Err(Failure::Exhausted { attempts, last }),
        }
    }
}

/// A peer for tests of HTTP clients (the URL helpers', the webhook's): a loopback server that
/// answers what the test says.
#[cfg(test)]
pub(crate) mod test_peer {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A peer on a thread: every connection's request head is read, then `answer` writes what
    /// it likes. The number of connections it took, to see that nobody came.
    pub(crate) fn peer(answer: fn(&mut TcpStream)) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    answer(&mut stream);
                });
            }
        });
        (port, connections)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::test_peer::peer;
    use super::*;

    /// A body that never ends (no length, the connection kept open): only a bounded read
    /// returns.
    fn endless(stream: &mut TcpStream, head: &str) {
        let _ = stream.write_all(head.as_bytes());
        let chunk = vec![b'A'; 64 * 1024];
        while stream.write_all(&chunk).is_ok() {}
    }

    fn once() -> CaseOptions {
        CaseOptions {
            url_error_retries: 0,
            ..CaseOptions::DEFAULT
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (elsewhere, visits) = peer(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nstolen");
        });
        static ELSEWHERE: AtomicUsize = AtomicUsize::new(0);
        ELSEWHERE.store(usize::from(elsewhere), Ordering::SeqCst);
        let (port, _) = peer(|stream| {
            let to = ELSEWHERE.load(Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{to}/stolen\r\n\
                 content-length: 0\r\n\r\n"
            );
        });
        let client = UrlClient::new(once());
        let url = format!("http://127.0.0.1:{port}/orders");
        let error = client.post_url(&url, &[1, 2]).await.unwrap_err();
        match &error {
            HttpError::Status { status, .. } => assert_eq!(status.as_u16(), 307),
            other => panic!("{other}"),
        }
        assert_eq!(
            visits.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_the_limit_and_no_further() {
        let within = std::time::Duration::from_secs(20);
        // No length, no end: an unbounded read never returns.
        let (port, _) = peer(|stream| endless(stream, "HTTP/1.1 200 OK\r\n\r\n"));
        let client = UrlClient::new(once()).max_body_bytes(100_000);
        let url = format!("http://127.0.0.1:{port}/");
        let result = tokio::time::timeout(within, client.get_url(&url))
            .await
            .expect("a bounded read returns");
        match result {
            Err(HttpError::BodyTooLarge { limit, .. }) => assert_eq!(limit, 100_000),
            other => panic!("{other:?}"),
        }
        // A length over the limit: refused before reading.
        let (port, _) = peer(|stream| {
            endless(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: 99999999999\r\n\r\n",
            )
        });
        let url = format!("http://127.0.0.1:{port}/");
        let result = tokio::time::timeout(within, client.get_url(&url)).await;
        assert!(matches!(result, Ok(Err(HttpError::BodyTooLarge { .. }))));
        // Up to the limit, the body whole.
        let (port, _) = peer(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
        });
        let body = UrlClient::new(once())
            .max_body_bytes(5)
            .get_url(&format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap();
        assert_eq!(&body[..], b"hello");
        assert_eq!(MAX_BODY_BYTES, 8 * 1024 * 1024);
    }

    /// The error goes into the report: the URL's user and password stay out of it.
    #[tokio::test]
    async fn errors_show_the_url_without_its_password() {
        let (port, _) = peer(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
        });
        let url = format!("http://me:hunter2@127.0.0.1:{port}/orders?id=7");
        let error = UrlClient::new(once()).get_url(&url).await.unwrap_err();
        let shown = error.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains(&format!("http://127.0.0.1:{port}/orders?id=7")),
            "{shown}"
        );
    }

    #[test]
    fn delays_follow_faust_backoff_and_cap() {
        let options = CaseOptions {
            url_error_retries: 6,
            url_error_delay_min: Duration::from_millis(500),
            url_error_delay_backoff: 1.5,
            url_error_delay_max: Duration::from_secs(2),
            ..CaseOptions::DEFAULT
        };
        let delays: Vec<u128> = retry_delays(&options).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [500, 750, 1125, 1687, 2000, 2000]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_the_backoff_on_the_paused_clock_then_give_up() {
        let options = CaseOptions {
            url_error_retries: 4,
            ..CaseOptions::DEFAULT
        };
        let start = Instant::now();
        let mut at = Vec::new();
        let result: Result<(), Failure> = retry(&options, || {
            at.push(start.elapsed().as_millis());
            async { Err(Attempt::Retry("connection refused".into())) }
        })
        .await;
        // 0, then +0.5 s, +0.75 s, +1.125 s, +1.6875 s (tokio's timer has 1 ms resolution).
        let want = [0, 500, 1250, 2375, 4062];
        assert_eq!(at.len(), want.len());
        for (got, want) in at.iter().zip(want) {
            assert!(got.abs_diff(want) <= 1, "attempts at {at:?} ms");
        }
        match result {
            Err(Failure::Exhausted { attempts, last }) => {
                assert_eq!(attempts, 5);
                assert_eq!(last, "connection refused");
            }
            _ => panic!("expected the retries to be exhausted"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_error_is_not_retried_and_a_success_stops_retrying() {
        let mut calls = 0;
        let result: Result<(), Failure> = retry(&CaseOptions::DEFAULT, || {
            calls += 1;
            async { Err(Attempt::Fatal(reqwest::StatusCode::NOT_FOUND)) }
        })
        .await;
        assert!(matches!(result, Err(Failure::Fatal(_))));
        assert_eq!(calls, 1);
        let mut calls = 0;
        let result = retry(&CaseOptions::DEFAULT, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(Attempt::Retry("503".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert!(matches!(result, Ok(3)));
    }
}
