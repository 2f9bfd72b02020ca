//! Keeping the deny list (suspended users, revoked tokens) current without asking identity on
//! each request: identity's snapshot of suspended users at start, recent revocations replayed
//! from the identity stream, then a tail of that stream from the id read before both.

use std::time::Duration;

use custodian_auth::DenyList;
use custodian_events::IdentityEvent;
use redis::{aio::ConnectionManager, AsyncCommands};
use tokio_util::sync::CancellationToken;

use crate::configuration::UpstreamUrl;

/// How far back revocations are replayed at start: longer than any token lives.
const REVOCATION_REPLAY: Duration = Duration::from_secs(24 * 3600);
/// At most this many stream entries are replayed.
const REPLAY_LIMIT: usize = 10_000;

/// `GET {IDENTITY_URL}/internal/suspended` -> the suspended users' ids.
pub async fn fetch_suspended(identity: &UpstreamUrl) -> Result<Vec<String>, String> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(2))
        .finish();
    let url = format!("{}/internal/suspended", identity.base());
    let mut response = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("identity answered {}", response.status()));
    }
    response
        .json::<Vec<String>>()
        .limit(64 << 20)
        .await
        .map_err(|e| e.to_string())
}

/// Loads the snapshot, trying `attempts` times. False when identity did not answer.
pub async fn load_snapshot(identity: &UpstreamUrl, deny: &DenyList, attempts: u32) -> bool {
    for attempt in 1..=attempts {
        match fetch_suspended(identity).await {
            Ok(users) => {
                tracing::info!(suspended = users.len(), "deny list snapshot loaded");
                deny.load_suspended(users);
                return true;
            }
            Err(e) if attempt == attempts => {
                tracing::warn!(error = %e, "identity's suspended-user snapshot is unavailable");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await,
        }
    }
    false
}

/// Retries the snapshot in the background until it loads or `token` is cancelled. Identity
/// publishes suspensions, so while it is down there are none to miss on the stream.
pub async fn retry_snapshot(identity: UpstreamUrl, deny: DenyList, token: CancellationToken) {
    let mut delay = Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        if load_snapshot(&identity, &deny, 1).await {
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(15));
    }
}

/// Applies the `TokenRevoked` events of the last day up to `until` (inclusive), so a restart
/// does not forget revocations of tokens that are still valid. Best effort.
pub async fn replay_revocations(
    redis: &mut ConnectionManager,
    stream: &str,
    until: &str,
    deny: &DenyList,
) {
    if until == "0-0" {
        return;
    }
    let since_ms = chrono::Utc::now().timestamp_millis() - REVOCATION_REPLAY.as_millis() as i64;
    let start = format!("{}-0", since_ms.max(0));
    let reply: Result<redis::streams::StreamRangeReply, _> = redis
        .xrange_count(stream, &start, until, REPLAY_LIMIT)
        .await;
    match reply {
        Ok(reply) => {
            let mut replayed = 0usize;
            for entry in reply.ids {
                let Some(payload) = entry.get::<String>("event") else {
                    continue;
                };
                if let Ok(event @ IdentityEvent::TokenRevoked { .. }) =
                    serde_json::from_str::<IdentityEvent>(&payload)
                {
                    deny.apply(&event);
                    replayed += 1;
                }
            }
            tracing::info!(replayed, "recent token revocations replayed");
        }
        Err(e) => tracing::warn!(error = %e, "token revocations could not be replayed"),
    }
}
