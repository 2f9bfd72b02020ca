//! The consent replica: every records instance holds every active consent's rules in memory.
//!
//! At start the consent stream's newest id is read, the tail is started from it, and the
//! snapshot is loaded from `GET {CONSENT_URL}/internal/consents` (retried with backoff until the
//! consent service answers). Changes on the stream and in the snapshot are ordered by their
//! version, so applying both in any order converges. Until the snapshot is loaded `/readyz`
//! fails and consent-dependent requests answer 503: deciding on a partial replica could deny
//! wrongly, or permit what a not-yet-seen newer consent revoked.

use custodian_access::Kernel;

use custodian_events::consumer::{Handler, HandlerError};
use custodian_policy::{ConsentChange, ConsentStore};
use custodian_telemetry::health::{ProbeFuture, ReadinessProbe};
use tokio_util::sync::CancellationToken;

/// The kernel's consents, as this service loads and follows them.
#[derive(Clone)]
pub struct Replica {
    kernel: Kernel,
}

impl Replica {
    pub fn new(kernel: Kernel) -> Self {
        Self { kernel }
    }

    pub fn store(&self) -> &ConsentStore {
        self.kernel.consents()
    }

    pub fn is_loaded(&self) -> bool {
        self.kernel.consents_loaded()
    }

    pub fn mark_loaded(&self) {
        self.kernel.mark_consents_loaded();
    }

    /// Applies a snapshot and marks the replica loaded.
    pub fn load(&self, changes: Vec<ConsentChange>) {
        let n = changes.len();
        for change in changes {
            self.store().apply(change);
        }
        self.mark_loaded();
        tracing::info!(consents = n, "consent replica loaded");
    }
}

/// Applies `ConsentChange` messages from the consent stream.
pub struct ReplicaUpdater(pub Replica);

impl Handler for ReplicaUpdater {
    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        let change: ConsentChange =
            serde_json::from_str(payload).map_err(|e| HandlerError::Reject(e.to_string()))?;
        self.0.store().apply(change);
        Ok(())
    }
}

/// `/readyz` fails until the snapshot is loaded.
pub struct ReplicaProbe(pub Replica);

impl ReadinessProbe for ReplicaProbe {
    fn name(&self) -> &'static str {
        "consent_replica"
    }
    fn check(&self) -> ProbeFuture {
        let loaded = self.0.is_loaded();
        Box::pin(async move {
            if loaded {
                Ok(())
            } else {
                Err("consent snapshot not loaded yet".into())
            }
        })
    }
}

/// Loads the snapshot, retrying until the consent service answers or `token` is cancelled.
pub async fn load_snapshot(consent_url: String, replica: Replica, token: CancellationToken) {
    let url = format!("{}/internal/consents", consent_url.trim_end_matches('/'));
    if let Some(changes) =
        custodian_auth::internal::fetch_snapshot::<Vec<ConsentChange>>(&url, "consents", &token)
            .await
    {
        replica.load(changes);
    }
}
