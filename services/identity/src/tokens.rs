//! Access tokens: the scopes each role may get (granted by the access kernel's
//! `custodian_access::scope::grant`), and signing the claims with the active key.

use chrono::Utc;
use custodian_auth::{Claims, Role, AUDIENCE};
use jsonwebtoken::{Algorithm, Header};

use crate::{error::Unexpected, keys::Keys};

/// The scopes a role may be granted; the access kernel's rule (`custodian_access::scope`).
pub use custodian_access::scope::{grant, grantable_scopes, role_scopes};

/// Scopes that grant no clinical data and that SMART clients send; granted when asked for.
pub const NON_RESOURCE_SCOPES: &[&str] =
    &["openid", "fhirUser", "launch/patient", "offline_access"];

const ROLES: [Role; 5] = [
    Role::Admin,
    Role::Practitioner,
    Role::Patient,
    Role::Auditor,
    Role::Service,
];

/// Every scope some role can get, in the v2 spelling, then the non-resource scopes (for the
/// discovery documents' `scopes_supported`).
pub fn all_scopes() -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for role in ROLES {
        for scope in grantable_scopes(role).split_whitespace() {
            if !all.iter().any(|s| s == scope) {
                all.push(scope.to_string());
            }
        }
    }
    all.extend(NON_RESOURCE_SCOPES.iter().map(|s| s.to_string()));
    all
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

    fn granted_scope(role: Role, requested: Option<&str>) -> Result<String, String> {
        grant(role, requested).map(|set| set.to_scope_string())
    }

    #[test]
    fn nothing_requested_grants_the_roles_scopes() {
        for role in ROLES {
            let normalised = granted_scope(role, Some(role_scopes(role))).unwrap();
            assert_eq!(granted_scope(role, None).unwrap(), normalised);
            assert_eq!(granted_scope(role, Some("  ")).unwrap(), normalised);
        }
        assert!(granted_scope(Role::Practitioner, None)
            .unwrap()
            .contains("user/*.cruds"));
    }

    #[test]
    fn requested_scopes_narrow_but_never_widen() {
        assert_eq!(
            granted_scope(
                Role::Practitioner,
                Some("user/Observation.rs openid fhirUser")
            )
            .unwrap(),
            "user/Observation.rs openid fhirUser"
        );
        assert_eq!(
            granted_scope(Role::Practitioner, Some("user/*.read")).unwrap(),
            "user/*.rs"
        );
        assert_eq!(
            granted_scope(Role::Patient, Some("patient/*.rs patient/*.rs")).unwrap(),
            "patient/*.rs"
        );
        assert!(granted_scope(Role::Patient, Some("user/*.read")).is_err());
        assert!(granted_scope(Role::Patient, Some("patient/Observation.c")).is_err());
        assert!(granted_scope(Role::Auditor, Some("user/AuditEvent.rs system/*.*")).is_err());
        assert!(granted_scope(Role::Practitioner, Some("user/Observation.rs?category=x")).is_err());
    }

    #[test]
    fn all_scopes_are_unique_and_v2() {
        let all = all_scopes();
        for (i, s) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(s), "{s} twice");
        }
        for wanted in [
            "patient/*.rs",
            "user/*.cruds",
            "system/*.cruds",
            "user/AuditEvent.rs",
            "openid",
            "fhirUser",
            "launch/patient",
            "offline_access",
        ] {
            assert!(
                all.iter().any(|s| s == wanted),
                "{wanted} missing from {all:?}"
            );
        }
        // Every listed scope can be requested by some role.
        for scope in &all {
            assert!(
                ROLES.iter().any(|r| grant(*r, Some(scope)).is_ok()),
                "{scope} is listed but no role can get it"
            );
        }
    }
}
