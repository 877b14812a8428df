//! Fake requests: what a case's `fake_request` fn receives every `frequency`.

#[cfg(feature = "http")]
use bytes::Bytes;

use crate::service::case::{CaseConfig, CaseOptions};
use crate::service::client::Client;
#[cfg(feature = "http")]
use crate::service::http::{HttpError, UrlClient};

/// The context of one fake request: the case it is for, its options, and the client.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    case: CaseConfig,
    client: Client,
    #[cfg(feature = "http")]
    http: UrlClient,
}

impl FakeRequest {
    #[cfg(feature = "worker")]
    pub(crate) fn new(case: CaseConfig, client: Client, http: UrlClient) -> Self {
        FakeRequest { case, client, http }
    }

    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    /// The case's URL helpers (its timeouts and retries; retries exhausted is a "service down"
    /// suite failure of the case).
    pub fn http(&self) -> &UrlClient {
        &self.http
    }

    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    /// `GET url` with the case's helpers.
    pub async fn get_url(&self, url: &str) -> Result<Bytes, HttpError> {
        self.http.get_url(url).await
    }

    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    /// `POST url` with a JSON body, with the case's helpers.
    pub async fn post_url<T: serde::Serialize + ?Sized>(
        &self,
        url: &str,
        body: &T,
    ) -> Result<Bytes, HttpError> {
        self.http.post_url(url, body).await
    }

    /// The case's name.
    pub fn case_name(&self) -> &'static str {
        self.case.name()
    }

    /// The case's options in effect (its URL timeouts and retries apply to HTTP helpers).
    pub fn options(&self) -> &CaseOptions {
        &self.case.options
    }

    /// The client the worker publishes through.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
