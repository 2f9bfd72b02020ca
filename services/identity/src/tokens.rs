//! Access tokens: the scopes each role gets, and signing the claims with the active key.

use chrono::Utc;
use custodian_auth::{Claims, Role, AUDIENCE};
use jsonwebtoken::{Algorithm, Header};

use crate::{error::Unexpected, keys::Keys};

/// The SMART scopes a role's tokens carry.
pub fn scopes_for(role: Role) -> &'static [&'static str] {
    match role {
        Role::Admin => &["system/*.*"],
        Role::Practitioner => &["user/*.read", "user/*.write"],
        Role::Patient => &["patient/*.read", "patient/Consent.write"],
        Role::Auditor => &["user/AuditEvent.read"],
        Role::Service => &["system/*.read"],
    }
}

/// Every scope some role can get (for discovery documents).
pub fn all_scopes() -> Vec<&'static str> {
    let mut all = Vec::new();
    for role in [
        Role::Admin,
        Role::Practitioner,
        Role::Patient,
        Role::Auditor,
        Role::Service,
    ] {
        for scope in scopes_for(role) {
            if !all.contains(scope) {
                all.push(*scope);
            }
        }
    }
    all
}

/// The scope granted: the role's scopes, or the requested subset of them. Requesting a scope
/// the role does not have is an error (RFC 6749 `invalid_scope`), not a silent narrowing.
pub fn granted_scope(role: Role, requested: Option<&str>) -> Result<String, String> {
    let allowed = scopes_for(role);
    let requested: Vec<&str> = requested
        .map(|r| r.split_whitespace().collect())
        .unwrap_or_default();
    if requested.is_empty() {
        return Ok(allowed.join(" "));
    }
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested {
        if !allowed.contains(&scope) {
            return Err(format!(
                "scope {scope:?} is not available to {} users",
                role.as_str()
            ));
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

/// Who a token is for.
pub struct Subject {
    pub sub: String,
    pub role: Role,
    pub organization: Option<String>,
    pub department: Option<String>,
    pub practitioner: Option<String>,
    pub patient: Option<String>,
    pub client_id: Option<String>,
}

/// Signs a token for `subject` with the active key.
pub fn sign(
    keys: &Keys,
    issuer: &str,
    ttl_seconds: i64,
    subject: Subject,
    scope: String,
) -> Result<(String, Claims), Unexpected> {
    let active = keys
        .active()
        .ok_or_else(|| Unexpected("no active signing key".into()))?;
    let now = Utc::now().timestamp();
    let claims = Claims {
        iss: issuer.to_string(),
        sub: subject.sub,
        aud: AUDIENCE.to_string(),
        exp: now + ttl_seconds,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        role: subject.role,
        organization: subject.organization,
        department: subject.department,
        practitioner: subject.practitioner,
        patient: subject.patient,
        scope,
        client_id: subject.client_id,
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(active.kid.clone());
    header.typ = Some("JWT".into());
    let token = jsonwebtoken::encode(&header, &claims, &active.key)?;
    Ok((token, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scopes_by_role() {
        assert_eq!(
            granted_scope(Role::Patient, None).unwrap(),
            "patient/*.read patient/Consent.write"
        );
        assert_eq!(
            granted_scope(Role::Practitioner, Some("  ")).unwrap(),
            "user/*.read user/*.write"
        );
    }

    #[test]
    fn requested_scopes_narrow_but_never_widen() {
        assert_eq!(
            granted_scope(Role::Patient, Some("patient/*.read patient/*.read")).unwrap(),
            "patient/*.read"
        );
        assert!(granted_scope(Role::Patient, Some("user/*.read")).is_err());
        assert!(granted_scope(Role::Auditor, Some("user/AuditEvent.read system/*.*")).is_err());
    }

    #[test]
    fn all_scopes_are_unique() {
        let all = all_scopes();
        let mut dedup = all.clone();
        dedup.dedup();
        assert_eq!(all.len(), dedup.len());
        assert!(all.contains(&"user/AuditEvent.read"));
    }
}
