//! Suspended users and revoked tokens, and keeping them current in every service that verifies
//! tokens: [`follow`] reads identity's snapshot (`GET {IDENTITY_URL}/internal/suspended`, with
//! the service credential) and tails the identity stream (signed by identity) from the position
//! read before it.
//!
//! Order: the stream's position is read first and the tail starts at once; until the snapshot
//! arrives, the events the tail applies are also remembered, and replayed on top of the
//! snapshot when it loads. So a suspension published while identity's snapshot was being taken
//! (or while identity was down and the snapshot retried) is enforced at once and never undone by
//! an older snapshot.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use custodian_events::{
    consumer::{latest_id, Handler, HandlerError, StreamTail},
    EventError, IdentityEvent,
};
use custodian_telemetry::{shutdown::BackgroundTasks, ReadinessProbe};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::internal::InternalToken;

/// Events remembered while waiting for the snapshot, at most (then the oldest are dropped and
/// the snapshot decides for them).
const MAX_PENDING: usize = 100_000;

/// What identity's `GET /internal/suspended` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DenySnapshot {
    /// Ids of the suspended users.
    pub suspended: Vec<String>,
    /// Tokens revoked before they expire.
    #[serde(default)]
    pub revoked: Vec<RevokedToken>,
}

/// A revoked token: its `jti` and when it would have expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokedToken {
    pub jti: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Default)]
pub struct DenyList {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    suspended: HashSet<String>,
    revoked: HashMap<String, DateTime<Utc>>,
    /// Some while a snapshot is awaited: events applied meanwhile, to replay on top of it.
    pending: Option<VecDeque<IdentityEvent>>,
    loaded: bool,
}

impl Inner {
    fn apply(&mut self, event: &IdentityEvent) {
        match event {
            IdentityEvent::UserSuspended { user_id, .. } => {
                self.suspended.insert(user_id.clone());
            }
            IdentityEvent::UserReinstated { user_id, .. } => {
                self.suspended.remove(user_id);
            }
            IdentityEvent::TokenRevoked { jti, expires_at } => {
                let now = Utc::now();
                // Expired tokens are refused anyway; forget them so the map stays small.
                self.revoked.retain(|_, exp| *exp > now);
                if *expires_at > now {
                    self.revoked.insert(jti.clone(), *expires_at);
                }
            }
        }
    }
}

impl DenyList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply(&self, event: &IdentityEvent) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        inner.apply(event);
        if let Some(pending) = inner.pending.as_mut() {
            if pending.len() >= MAX_PENDING {
                pending.pop_front();
            }
            pending.push_back(event.clone());
        }
    }

    pub fn is_suspended(&self, user_id: &str) -> bool {
        self.inner
            .read()
            .map(|i| i.suspended.contains(user_id))
            .unwrap_or(false)
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.inner
            .read()
            .map(|i| i.revoked.contains_key(jti))
            .unwrap_or(false)
    }

    /// Replaces the suspended set (identity loads its own from its database).
    pub fn load_suspended(&self, users: impl IntoIterator<Item = String>) {
        if let Ok(mut inner) = self.inner.write() {
            inner.suspended = users.into_iter().collect();
            inner.loaded = true;
        }
    }

    /// From now until [`DenyList::load`], remember applied events to replay on the snapshot.
    pub fn await_snapshot(&self) {
        if let Ok(mut inner) = self.inner.write() {
            inner.pending.get_or_insert_with(VecDeque::new);
        }
    }

    /// Loads identity's snapshot, then replays the events applied since [`DenyList::await_snapshot`]
    /// (they may be newer than the snapshot; replaying older ones changes nothing, since each
    /// user's last event is also what the snapshot reflects).
    pub fn load(&self, snapshot: DenySnapshot) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        let now = Utc::now();
        inner.suspended = snapshot.suspended.into_iter().collect();
        for token in snapshot.revoked {
            if token.expires_at > now {
                inner.revoked.insert(token.jti, token.expires_at);
            }
        }
        for event in inner.pending.take().unwrap_or_default() {
            inner.apply(&event);
        }
        inner.loaded = true;
    }

    /// Whether decisions can rely on it: the awaited snapshot has loaded, or no snapshot is
    /// awaited (identity's own list, which it keeps from its database). A verifier refuses
    /// every token (503) until then, so a suspended user is never let in during a start.
    pub fn is_ready(&self) -> bool {
        self.inner
            .read()
            .map(|i| i.loaded || i.pending.is_none())
            .unwrap_or(false)
    }

    /// Whether a snapshot (or identity's own state) was loaded.
    pub fn is_loaded(&self) -> bool {
        self.inner.read().map(|i| i.loaded).unwrap_or(false)
    }

    /// How many users are suspended and tokens revoked (logs, diagnostics).
    pub fn counts(&self) -> (usize, usize) {
        self.inner
            .read()
            .map(|i| (i.suspended.len(), i.revoked.len()))
            .unwrap_or((0, 0))
    }
}

/// Applies identity events from a stream tail.
pub struct DenyListUpdater(pub DenyList);

impl Handler for DenyListUpdater {
    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        let event: IdentityEvent =
            serde_json::from_str(payload).map_err(|e| HandlerError::Reject(e.to_string()))?;
        self.0.apply(&event);
        Ok(())
    }
}

/// Where the deny list comes from.
#[derive(Debug, Clone)]
pub struct DenySource {
    /// Identity's base URL (`IDENTITY_URL`, default `http://127.0.0.1:8081`).
    pub identity_url: String,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// The identity stream's key (`<prefix>:identity`).
    pub stream: String,
    /// The service credential for identity's `/internal/suspended`; `None` uses
    /// [`InternalToken::shared`].
    pub credential: Option<InternalToken>,
}

impl DenySource {
    /// `IDENTITY_URL` from the environment, the given Redis URL and identity stream.
    pub fn from_env(redis_url: &str, stream: String) -> Self {
        Self {
            identity_url: custodian_telemetry::Env
                .string("IDENTITY_URL", "http://127.0.0.1:8081")
                .trim_end_matches('/')
                .to_string(),
            redis_url: redis_url.to_string(),
            stream,
            credential: None,
        }
    }

    fn credential(&self) -> Option<&InternalToken> {
        match &self.credential {
            Some(token) => Some(token),
            None => InternalToken::shared(),
        }
    }

    /// `GET {identity}/internal/suspended`.
    pub async fn fetch(&self) -> Result<DenySnapshot, String> {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .connector(
                awc::Connector::new().openssl(custodian_telemetry::tls::upstream_connector()),
            )
            .finish();
        let url = format!("{}/internal/suspended", self.identity_url);
        let mut request = client.get(url);
        if let Some(token) = self.credential() {
            request = request.insert_header(token.header());
        }
        let mut response = request.send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("identity answered {}", response.status()));
        }
        let body = response
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| e.to_string())?;
        // An identity from before revocations were in the snapshot answers a bare list.
        serde_json::from_slice::<DenySnapshot>(&body)
            .or_else(|_| {
                serde_json::from_slice::<Vec<String>>(&body).map(|suspended| DenySnapshot {
                    suspended,
                    revoked: Vec::new(),
                })
            })
            .map_err(|e| format!("unreadable snapshot: {e}"))
    }
}

async fn load_once(source: &DenySource, deny: &DenyList) -> Result<(), String> {
    let snapshot = source.fetch().await?;
    let (users, tokens) = (snapshot.suspended.len(), snapshot.revoked.len());
    deny.load(snapshot);
    tracing::info!(
        suspended = users,
        revoked = tokens,
        "deny list snapshot loaded"
    );
    Ok(())
}

/// Retries the snapshot with backoff (250 ms doubling to 15 s) until it loads or `token` is
/// cancelled. Meanwhile the tail keeps applying what identity publishes.
async fn retry(source: DenySource, deny: DenyList, token: CancellationToken) {
    let mut delay = Duration::from_millis(250);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        match load_once(&source, &deny).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "identity's deny-list snapshot is unavailable")
            }
        }
        delay = (delay * 2).min(Duration::from_secs(15));
    }
}

/// Keeps `deny` current: reads the identity stream's position, starts tailing it from there
/// (a background task of `tasks`), and loads identity's snapshot, trying once now and then in
/// the background until it loads (`DenyListProbe` says when). Must run on the actix runtime
/// (the snapshot is fetched with awc).
pub async fn follow(
    source: DenySource,
    deny: DenyList,
    tasks: &mut BackgroundTasks,
) -> Result<DenyListProbe, EventError> {
    let mut redis = custodian_events::streams::connect(&source.redis_url).await?;
    let after = latest_id(&mut redis, &source.stream).await?;
    deny.await_snapshot();
    let tail = StreamTail::new(&source.redis_url, source.stream.clone(), after).await?;
    tasks.spawn(tail.run(DenyListUpdater(deny.clone()), tasks.token()));
    if let Err(e) = load_once(&source, &deny).await {
        tracing::warn!(error = %e, "identity's deny-list snapshot is unavailable; retrying in the background");
        actix_web::rt::spawn(retry(source, deny.clone(), tasks.token()));
    }
    Ok(DenyListProbe(deny))
}

/// Readiness: not ready until the deny list's snapshot has loaded.
pub struct DenyListProbe(pub DenyList);

impl ReadinessProbe for DenyListProbe {
    fn name(&self) -> &'static str {
        "deny-list"
    }
    fn check(&self) -> custodian_telemetry::health::ProbeFuture {
        let loaded = self.0.is_loaded();
        Box::pin(async move {
            if loaded {
                Ok(())
            } else {
                Err("identity's suspended-user snapshot is not loaded yet".to_string())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspended(user: &str) -> IdentityEvent {
        IdentityEvent::UserSuspended {
            user_id: user.into(),
            reason: "burst".into(),
            time: Utc::now(),
        }
    }

    fn reinstated(user: &str) -> IdentityEvent {
        IdentityEvent::UserReinstated {
            user_id: user.into(),
            time: Utc::now(),
        }
    }

    #[test]
    fn not_ready_while_a_snapshot_is_awaited() {
        let deny = DenyList::new();
        assert!(deny.is_ready(), "identity's own list needs no snapshot");
        deny.await_snapshot();
        assert!(!deny.is_ready());
        deny.load(DenySnapshot::default());
        assert!(deny.is_ready());
    }

    #[test]
    fn suspension_and_reinstatement() {
        let deny = DenyList::new();
        deny.apply(&suspended("u1"));
        assert!(deny.is_suspended("u1"));
        assert!(!deny.is_suspended("u2"));
        deny.apply(&reinstated("u1"));
        assert!(!deny.is_suspended("u1"));
    }

    #[test]
    fn revocation() {
        let deny = DenyList::new();
        deny.apply(&IdentityEvent::TokenRevoked {
            jti: "t1".into(),
            expires_at: Utc::now() + chrono::Duration::minutes(5),
        });
        assert!(deny.is_revoked("t1"));
        assert!(!deny.is_revoked("t2"));
    }

    #[test]
    fn events_seen_while_waiting_win_over_an_older_snapshot() {
        let deny = DenyList::new();
        deny.await_snapshot();
        assert!(!deny.is_loaded());
        // Published while identity took its snapshot: u1 reinstated, u3 suspended.
        deny.apply(&suspended("u3"));
        deny.apply(&reinstated("u1"));
        assert!(
            deny.is_suspended("u3"),
            "enforced before the snapshot loads"
        );
        deny.load(DenySnapshot {
            suspended: vec!["u1".into(), "u2".into()],
            revoked: vec![
                RevokedToken {
                    jti: "t1".into(),
                    expires_at: Utc::now() + chrono::Duration::minutes(5),
                },
                RevokedToken {
                    jti: "old".into(),
                    expires_at: Utc::now() - chrono::Duration::minutes(5),
                },
            ],
        });
        assert!(deny.is_loaded());
        assert!(!deny.is_suspended("u1"));
        assert!(deny.is_suspended("u2"));
        assert!(deny.is_suspended("u3"));
        assert!(deny.is_revoked("t1"));
        assert!(!deny.is_revoked("old"));
        // After the load, events apply as usual and are no longer remembered.
        deny.apply(&reinstated("u2"));
        assert!(!deny.is_suspended("u2"));
        assert_eq!(deny.counts(), (1, 1));
    }
}
