//! The membership replica `/consent/decide` decides with: who is in which CareTeam, Group and
//! PractitionerRole, as records reads it from clinical data.
//!
//! At start the relationships stream's newest id is read and the tail started from it (only
//! messages signed by records are obeyed), then the snapshot is loaded from
//! `GET {RECORDS_URL}/internal/memberships` (retried with backoff until records answers).
//! Changes are versioned per container, so applying both in any order converges. Until the
//! snapshot is loaded `/readyz` fails and `/consent/decide` answers 503: without memberships a
//! deny naming a care team would miss its members.

use std::time::Duration;

use custodian_access::MembershipStore;
use custodian_events::MembershipChange;
use tokio_util::sync::CancellationToken;

async fn fetch(url: &str) -> Result<Vec<MembershipChange>, String> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    // `/internal/*` needs the service credential (INTERNAL_TOKEN_FILE).
    let request = custodian_auth::internal::authorize(client.get(url));
    let mut response = request.send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("records answered {}", response.status()));
    }
    response
        .json::<Vec<MembershipChange>>()
        .limit(256 << 20)
        .await
        .map_err(|e| e.to_string())
}

/// Loads the snapshot, retrying with backoff (100 ms doubling to 5 s) until it succeeds or
/// `token` is cancelled. Runs on the actix runtime (awc is not `Send`).
pub async fn load_snapshot(records_url: String, store: MembershipStore, token: CancellationToken) {
    let url = format!("{}/internal/memberships", records_url.trim_end_matches('/'));
    let mut backoff = Duration::from_millis(100);
    loop {
        match fetch(&url).await {
            Ok(changes) => {
                let n = changes.len();
                store.load(changes);
                tracing::info!(containers = n, "membership replica loaded");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "membership snapshot not loaded; retrying");
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
