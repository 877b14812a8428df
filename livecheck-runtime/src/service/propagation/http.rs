//! Test context over HTTP: the current test travels in `LiveCheck-Test-*` headers, beside its
//! W3C `traceparent` / `tracestate`, as it does over Kafka ([`super::kafka`]).
//!
//! - Outgoing: [`PropagateTest`], a `reqwest-middleware` middleware, adds the current test's
//!   headers to every request made inside a test scope (nothing is patched globally; requests
//!   outside a scope are left alone). [`client`] builds a client with it.
//! - Incoming: [`TestContextLayer`], a tower `Layer` (axum: `.layer(TestContextLayer)`), reads
//!   those headers and runs the handler with that test as the current test; malformed headers
//!   are ignored with a debug log. A request that is no test but carries a W3C `traceparent`
//!   runs in that trace, so a test it triggers joins it ([`crate::wire::trace`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};

use crate::service::context::{current_test, with_test};
use crate::wire::model::TestExecution;
use crate::wire::trace::{TRACEPARENT, TRACESTATE};

/// Adds the current test's `LiveCheck-Test-*` headers to outgoing requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateTest;

#[async_trait::async_trait]
impl Middleware for PropagateTest {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if let Some(test) = current_test() {
            insert_test_headers(request.headers_mut(), &test);
        }
        next.run(request, extensions).await
    }
}

/// Inserts `test`'s headers into an HTTP header map: the `LiveCheck-Test-*` ones, its signature
/// where it has one ([`crate::signing`]), and its `traceparent` / `tracestate` when it has a
/// trace ([`crate::trace`]).
pub fn insert_test_headers(headers: &mut HeaderMap, test: &TestExecution) {
    for (name, value) in test.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    match test.signature.as_deref().map(HeaderValue::from_str) {
        Some(Ok(value)) => {
            headers.insert(crate::wire::signing::HEADER_TEST_SIGNATURE, value);
        }
        _ => {
            headers.remove(crate::wire::signing::HEADER_TEST_SIGNATURE);
        }
    }
    if let Some(parent) = test.traceparent {
        if let Ok(value) = HeaderValue::from_str(&parent.to_string()) {
            headers.insert(TRACEPARENT, value);
        }
        match test.tracestate.as_deref().map(HeaderValue::from_str) {
            Some(Ok(value)) => {
                headers.insert(TRACESTATE, value);
            }
            _ => {
                headers.remove(TRACESTATE);
            }
        }
    }
}

/// The test an incoming request is part of; malformed headers are ignored with a debug log.
pub fn test_from_headers(headers: &HeaderMap) -> Option<TestExecution> {
    match TestExecution::from_headers(|name| headers.get(name).map(HeaderValue::as_bytes)) {
        Ok(test) => test,
        Err(error) => {
            tracing::debug!(%error, "malformed livecheck headers ignored");
            None
        }
    }
}

/// A reqwest client that propagates the current test.
pub fn client() -> ClientWithMiddleware {
    with_propagation(reqwest::Client::new())
}

/// Wraps a reqwest client of your own so that it propagates the current test.
pub fn with_propagation(client: reqwest::Client) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(client)
        .with(PropagateTest)
        .build()
}

/// A tower layer running each request's handler with the request's test as the current test.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestContextLayer;

impl<S> tower::Layer<S> for TestContextLayer {
    type Service = TestContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TestContext { inner }
    }
}

/// The service [`TestContextLayer`] wraps around a handler.
#[derive(Debug, Clone)]
pub struct TestContext<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TestContext<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // With a key, only signed test context is honoured; the rest runs as an ordinary
        // request (counted, crate::signing).
        let test = test_from_headers(request.headers())
            .filter(|test| crate::wire::signing::admit(crate::wire::signing::Source::Http, test));
        // A request that is not a test may still carry a trace: a test it triggers joins it.
        let trace = match test {
            Some(_) => None,
            None => crate::wire::trace::from_headers(|name| {
                request.headers().get(name).map(HeaderValue::as_bytes)
            }),
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            match (test, trace) {
                (Some(test), _) => with_test(test, future).await,
                (None, Some((parent, state))) => {
                    crate::service::context::with_trace(parent, state, future).await
                }
                (None, None) => future.await,
            }
        })
    }
}
