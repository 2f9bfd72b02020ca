//! The membership replica `/consent/decide` decides with: who is in which CareTeam, Group and
//! PractitionerRole, as records reads it from clinical data.
//!
//! At start the relationships stream's newest id is read and the tail started from it (only
//! messages signed by records are obeyed), then the snapshot is loaded from
//! `GET {RECORDS_URL}/internal/memberships` (retried with backoff until records answers).
//! Changes are versioned per container, so applying both in any order converges. Until the
//! snapshot is loaded `/consent/decide` answers 503 (without memberships a deny naming a care
//! team would miss its members); `/readyz` does not wait for it, since records waits for
//! consent's own snapshot.

use custodian_access::MembershipStore;
use custodian_events::MembershipChange;
use tokio_util::sync::CancellationToken;

/// Loads the snapshot, retrying until records answers or `token` is cancelled.
pub async fn load_snapshot(records_url: String, store: MembershipStore, token: CancellationToken) {
    let url = format!("{}/internal/memberships", records_url.trim_end_matches('/'));
    if let Some(changes) = custodian_auth::internal::fetch_snapshot::<Vec<MembershipChange>>(
        &url,
        "memberships",
        &token,
    )
    .await
    {
        let n = changes.len();
        store.load(changes);
        tracing::info!(containers = n, "membership replica loaded");
    }
}
