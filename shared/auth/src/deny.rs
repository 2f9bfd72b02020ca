//! Suspended users and revoked tokens, kept current from the identity stream.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use custodian_events::IdentityEvent;

#[derive(Clone, Default)]
pub struct DenyList {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    suspended: HashSet<String>,
    revoked: HashMap<String, DateTime<Utc>>,
}

impl DenyList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply(&self, event: &IdentityEvent) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        match event {
            IdentityEvent::UserSuspended { user_id, .. } => {
                inner.suspended.insert(user_id.clone());
            }
            IdentityEvent::UserReinstated { user_id, .. } => {
                inner.suspended.remove(user_id);
            }
            IdentityEvent::TokenRevoked { jti, expires_at } => {
                let now = Utc::now();
                // Expired tokens are refused anyway; forget them so the map stays small.
                inner.revoked.retain(|_, exp| *exp > now);
                inner.revoked.insert(jti.clone(), *expires_at);
            }
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

    /// Replaces the suspended set (from identity's snapshot at start).
    pub fn load_suspended(&self, users: impl IntoIterator<Item = String>) {
        if let Ok(mut inner) = self.inner.write() {
            inner.suspended = users.into_iter().collect();
        }
    }
}

/// Applies identity events from a stream tail.
pub struct DenyListUpdater(pub DenyList);

impl custodian_events::consumer::Handler for DenyListUpdater {
    async fn handle(&self, payload: &str) -> Result<(), custodian_events::consumer::HandlerError> {
        let event: IdentityEvent = serde_json::from_str(payload)
            .map_err(|e| custodian_events::consumer::HandlerError::Reject(e.to_string()))?;
        self.0.apply(&event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspension_and_reinstatement() {
        let deny = DenyList::new();
        deny.apply(&IdentityEvent::UserSuspended {
            user_id: "u1".into(),
            reason: "burst".into(),
            time: Utc::now(),
        });
        assert!(deny.is_suspended("u1"));
        assert!(!deny.is_suspended("u2"));
        deny.apply(&IdentityEvent::UserReinstated {
            user_id: "u1".into(),
            time: Utc::now(),
        });
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
}
