//! Which tests are the run's: those it triggered, and the first of a case after its fake
//! request ([`Claims`]); the run's worker sees only those ([`OnlyClaimed`]), and their reports
//! go back to the attempts waiting for them ([`Reports`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::oneshot;

use crate::lock::lock;
use crate::transport::{Consume, Subscription, TransportFuture};
use crate::wire::model::{TestExecution, TestReport};
use crate::worker::Observer;

/// A fake request waiting for the test it makes.
pub(super) struct FakeClaim {
    pub(super) test: oneshot::Sender<String>,
    pub(super) report: oneshot::Sender<TestReport>,
}

/// Which tests belong to the run, and where their reports go.
#[derive(Default)]
pub(super) struct Claims {
    /// Tests of the run, by id.
    pub(super) by_id: HashMap<String, oneshot::Sender<TestReport>>,
    /// Fake requests waiting for their test, by case.
    pub(super) by_case: HashMap<String, VecDeque<FakeClaim>>,
    /// Tests seen that were not the run's.
    pub(super) ignored: u64,
}

impl Claims {
    /// Whether `test` is the run's: triggered by it, or the first of its case after a fake
    /// request of the run.
    fn admit(&mut self, test: &TestExecution) -> bool {
        if self.by_id.contains_key(&test.id) {
            return true;
        }
        if let Some(waiting) = self.by_case.get_mut(&test.case_name) {
            while let Some(claim) = waiting.pop_front() {
                if claim.test.send(test.id.clone()).is_ok() {
                    self.by_id.insert(test.id.clone(), claim.report);
                    return true;
                }
                // That attempt gave up: the next one, if any, takes the test.
            }
        }
        self.ignored += 1;
        false
    }
}

pub(super) type SharedClaims = Arc<Mutex<Claims>>;

/// Sends each report of the run to its attempt.
pub(super) struct Reports(pub(super) SharedClaims);

impl Observer for Reports {
    fn on_report(&self, report: &TestReport) {
        let Some(test) = &report.test else { return };
        if let Some(waiting) = lock(&self.0).by_id.remove(&test.id) {
            let _ = waiting.send(report.clone());
        }
    }
}

/// What the run's worker consumes: the real transport's subscription, whose tests stream holds
/// only the run's tests (others are acknowledged unrun). The worker publishes and is looked at
/// through the real transport.
pub(super) struct OnlyClaimed {
    pub(super) inner: Arc<dyn Consume>,
    pub(super) claims: SharedClaims,
}

impl fmt::Debug for OnlyClaimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnlyClaimed")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Consume for OnlyClaimed {
    fn subscribe(&self) -> TransportFuture<'_, Subscription> {
        let claims = self.claims.clone();
        Box::pin(async move {
            let subscription = self.inner.subscribe().await?;
            let tests = subscription
                .tests
                .filter_map(move |delivery| {
                    let admitted = lock(&claims).admit(&delivery.value);
                    let kept = if admitted {
                        Some(delivery)
                    } else {
                        tracing::debug!(
                            case = %crate::text::Escaped(&delivery.value.case_name),
                            test = %crate::text::Escaped(&delivery.value.id),
                            "not a test of this run: not run"
                        );
                        delivery.ack();
                        None
                    };
                    std::future::ready(kept)
                })
                .boxed();
            Ok(Subscription {
                tests,
                ..subscription
            })
        })
    }

    fn publish_report<'a>(
        &'a self,
        report: &'a TestReport,
        at: chrono::DateTime<chrono::Utc>,
    ) -> TransportFuture<'a, ()> {
        self.inner.publish_report(report, at)
    }

    fn close(&self) -> TransportFuture<'_, ()> {
        self.inner.close()
    }

    fn is_assigned(&self) -> bool {
        self.inner.is_assigned()
    }
}
