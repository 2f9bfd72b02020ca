//! Tokens verified recently, so a client's next requests skip the signature check. ES256
//! verification was the largest single cost on the request path (about a third of records' CPU
//! under a read load), and a client sends the same token many times.
//!
//! An entry is keyed by the whole token string (same string, same verified claims) and is used
//! only while the token has not expired and for at most [`MAX_AGE`], so a signing key withdrawn
//! from the JWKS stops being honoured soon after. Suspension and revocation are checked on every
//! request, cached or not: the deny list is never cached here.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use crate::{AuthError, Claims, DenyList};

/// How long a verification is reused.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Entries kept at most (tokens are ~1 KB).
pub const MAX_ENTRIES: usize = 20_000;

struct Entry {
    claims: Claims,
    verified_at: Instant,
}

impl Entry {
    fn fresh(&self, now: i64) -> bool {
        self.claims.exp > now && self.verified_at.elapsed() < MAX_AGE
    }
}

#[derive(Default)]
pub struct VerifiedTokens {
    entries: RwLock<HashMap<Box<str>, Entry>>,
}

impl VerifiedTokens {
    pub fn new() -> Self {
        Self::default()
    }

    /// `None` when the token must be verified; otherwise the cached claims, or the deny list's
    /// verdict on their subject and token id.
    pub fn check(&self, token: &str, deny: &DenyList) -> Option<Result<Claims, AuthError>> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(token)?;
        if !entry.fresh(chrono::Utc::now().timestamp()) {
            return None;
        }
        Some(if deny.is_revoked(&entry.claims.jti) {
            Err(AuthError::Revoked)
        } else if deny.is_suspended(&entry.claims.sub) {
            Err(AuthError::Suspended)
        } else {
            Ok(entry.claims.clone())
        })
    }

    /// Remembers a token the verifier accepted.
    pub fn insert(&self, token: &str, claims: &Claims) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let now = chrono::Utc::now().timestamp();
            entries.retain(|_, entry| entry.fresh(now));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                claims: claims.clone(),
                verified_at: Instant::now(),
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;
    use custodian_events::IdentityEvent;

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "i".into(),
            sub: "user-1".into(),
            aud: "custodian".into(),
            exp: now + exp_in,
            iat: now,
            jti: "token-1".into(),
            role: Role::Practitioner,
            organization: None,
            department: None,
            practitioner: None,
            patient: None,
            scope: String::new(),
            client_id: None,
        }
    }

    #[test]
    fn verified_tokens_are_reused_until_they_expire() {
        let cache = VerifiedTokens::new();
        let deny = DenyList::new();
        assert!(cache.check("t", &deny).is_none());
        cache.insert("t", &claims(600));
        assert!(matches!(cache.check("t", &deny), Some(Ok(_))));
        assert!(cache.check("t2", &deny).is_none());
        cache.insert("old", &claims(-1));
        assert!(cache.check("old", &deny).is_none());
    }

    #[test]
    fn the_deny_list_applies_to_cached_tokens() {
        let cache = VerifiedTokens::new();
        let deny = DenyList::new();
        cache.insert("t", &claims(600));
        deny.apply(&IdentityEvent::UserSuspended {
            user_id: "user-1".into(),
            reason: "r".into(),
            time: chrono::Utc::now(),
        });
        assert!(matches!(
            cache.check("t", &deny),
            Some(Err(AuthError::Suspended))
        ));
        deny.apply(&IdentityEvent::UserReinstated {
            user_id: "user-1".into(),
            time: chrono::Utc::now(),
        });
        deny.apply(&IdentityEvent::TokenRevoked {
            jti: "token-1".into(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(5),
        });
        assert!(matches!(
            cache.check("t", &deny),
            Some(Err(AuthError::Revoked))
        ));
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedTokens::new();
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(&format!("t{i}"), &claims(600));
        }
        assert!(cache.len() <= MAX_ENTRIES);
        assert!(matches!(
            cache.check(&format!("t{}", MAX_ENTRIES + 9), &DenyList::new()),
            Some(Ok(_))
        ));
    }
}
