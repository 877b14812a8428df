//! [`CaseLink`]: how a case's HTTP helpers tell its health that a service went down or came back.

use std::future::Future;
use std::sync::{Arc, Weak};

use crate::service::case::CaseConfig;
use crate::service::http::ServiceHealth;
use crate::worker::health::CaseHealth;

use super::shared::Shared;

/// Lets a case's HTTP helpers report a service down or back to the case's health.
///
/// Weak: `Shared` keeps each case's helpers, which keep this link.
pub(super) struct CaseLink {
    shared: Weak<Shared>,
    case: &'static str,
}

impl CaseLink {
    pub(super) fn link(shared: &Weak<Shared>, case: CaseConfig) -> Arc<dyn ServiceHealth> {
        Arc::new(CaseLink {
            shared: shared.clone(),
            case: case.name(),
        })
    }

    /// Only the leader's view of the service counts: it runs the fake requests, and a
    /// follower's "service down" could not reach the group (its test's own report does).
    async fn apply(&self, change: impl FnOnce(&mut CaseHealth)) {
        let Some(shared) = self.shared.upgrade() else {
            return; // the worker is gone
        };
        if !shared.is_leader() {
            tracing::debug!(
                case = self.case,
                "service health seen by a follower: left to the leader"
            );
            return;
        }
        shared.judge(self.case, change);
    }
}

impl ServiceHealth for CaseLink {
    fn service_down(
        &self,
        message: String,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.apply(move |health| health.on_service_down(message)))
    }

    fn service_up(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.apply(CaseHealth::on_service_up))
    }
}
