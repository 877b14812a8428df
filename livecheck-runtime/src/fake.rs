//! Fake requests: what a case's `fake_request` fn receives every `frequency`.

use crate::case::{CaseConfig, CaseOptions};
use crate::client::Client;

/// The context of one fake request: the case it is for, its options, and the client.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    case: CaseConfig,
    client: Client,
}

impl FakeRequest {
    pub(crate) fn new(case: CaseConfig, client: Client) -> Self {
        FakeRequest { case, client }
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
