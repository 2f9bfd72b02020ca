//! Who may read which ledger entries: decided here like every other access. Auditors and
//! administrators see every entry; a patient the entries about her ("who accessed my data");
//! a practitioner the entries where they were the actor; services none. The token's scopes
//! must grant reading `AuditEvent` (the FHIR name of what the ledger holds).

use custodian_auth::Role;

use crate::{
    caller::Caller,
    decision::{Basis, Decision},
    reference::PatientRef,
    scope::{Context, Permission},
};

/// The slice of the ledger a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerView {
    Everything,
    /// Entries whose `patient` is this reference.
    Patient(PatientRef),
    /// Entries whose actor is this user id (the token's `sub`).
    Actor(String),
}

impl LedgerView {
    /// The caller's view, or the denial.
    pub fn of(caller: &Caller) -> Result<Self, Decision> {
        let context = match caller.role() {
            Role::Patient => Context::Patient,
            Role::Practitioner | Role::Auditor => Context::User,
            Role::Admin | Role::Service => Context::System,
        };
        if !caller
            .scopes
            .allows(context, "AuditEvent", Permission::Read)
        {
            return Err(Decision::deny(
                Basis::Scope,
                vec![],
                "the token's scopes do not grant reading the ledger (AuditEvent)",
            ));
        }
        let role_denial = || {
            Decision::deny(
                Basis::Role,
                vec![],
                format!("the {} role cannot read the ledger", caller.role().as_str()),
            )
        };
        match caller.role() {
            Role::Admin | Role::Auditor => Ok(Self::Everything),
            Role::Patient => caller
                .own_patient()
                .cloned()
                .map(Self::Patient)
                .ok_or_else(role_denial),
            Role::Practitioner => Ok(Self::Actor(caller.claims.sub.clone())),
            Role::Service => Err(role_denial()),
        }
    }

    pub fn can_see(&self, patient: Option<&str>, actor_id: &str) -> bool {
        match self {
            Self::Everything => true,
            Self::Patient(p) => patient == Some(p.as_str()),
            Self::Actor(a) => a == actor_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodian_auth::Claims;

    fn caller(role: Role, scope: &str, patient: Option<&str>) -> Caller {
        Caller::from_claims(Claims {
            iss: "i".into(),
            sub: "u1".into(),
            aud: "custodian".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            role,
            organization: None,
            department: None,
            practitioner: None,
            patient: patient.map(str::to_string),
            scope: scope.into(),
            client_id: None,
        })
    }

    #[test]
    fn views_follow_role_and_scope() {
        let p = LedgerView::of(&caller(Role::Patient, "patient/*.rs", Some("a"))).unwrap();
        assert!(p.can_see(Some("Patient/a"), "x"));
        assert!(!p.can_see(Some("Patient/b"), "x"));
        assert!(!p.can_see(None, "x"));
        let a = LedgerView::of(&caller(Role::Practitioner, "user/*.cruds", None)).unwrap();
        assert!(a.can_see(Some("Patient/b"), "u1") && !a.can_see(Some("Patient/b"), "u2"));
        assert_eq!(
            LedgerView::of(&caller(Role::Auditor, "user/AuditEvent.rs", None)),
            Ok(LedgerView::Everything)
        );
        assert!(LedgerView::of(&caller(Role::Auditor, "user/Observation.rs", None)).is_err());
        assert!(LedgerView::of(&caller(Role::Service, "system/*.cruds", None)).is_err());
        assert!(LedgerView::of(&caller(Role::Patient, "patient/*.rs", None)).is_err());
    }
}
