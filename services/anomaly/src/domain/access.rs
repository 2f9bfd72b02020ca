//! Who may read and review alerts, decided like every other access (the kernel's style, as
//! `custodian_access::ledger::LedgerView` decides ledger reads): security staff only, the
//! auditor and admin roles, with a token whose SMART scopes grant it in the role's context
//! (auditor `user/`, admin `system/`).
//!
//! | interaction | scope (either) |
//! |---|---|
//! | read, search | `DetectedIssue` read/search, or `AuditEvent` read (alerts are findings on the ledger: whoever may read the ledger may read them) |
//! | `$acknowledge`, `$dismiss` | `DetectedIssue` update, or `AuditEvent` read |
//!
//! Anyone else is denied (403): other roles on basis `role`, tokens without the scope on basis
//! `scope`. A review is permitted on basis `unowned`: an alert is in no patient's compartment
//! (it is about a user's behaviour), so its access event names no patient.

use custodian_access::{Basis, Caller, Context, Decision, Permission};
use custodian_auth::Role;

/// The FHIR type alerts are served as.
pub const DETECTED_ISSUE: &str = "DetectedIssue";

/// What the caller wants to do with alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertInteraction {
    /// `GET` one alert or a list.
    Read,
    /// `$acknowledge` or `$dismiss`.
    Review,
}

/// The kernel's answer for `caller` doing `interaction` on alerts.
pub fn decide(caller: &Caller, interaction: AlertInteraction) -> Decision {
    let context = match caller.role() {
        Role::Patient => Context::Patient,
        Role::Practitioner | Role::Auditor => Context::User,
        Role::Admin | Role::Service => Context::System,
    };
    let scopes = &caller.scopes;
    let ledger = scopes.allows(context, "AuditEvent", Permission::Read);
    let granted = ledger
        || match interaction {
            AlertInteraction::Read => {
                scopes.allows(context, DETECTED_ISSUE, Permission::Read)
                    || scopes.allows(context, DETECTED_ISSUE, Permission::Search)
            }
            AlertInteraction::Review => scopes.allows(context, DETECTED_ISSUE, Permission::Update),
        };
    if !granted {
        return Decision::deny(
            Basis::Scope,
            vec![],
            "the token's scopes do not grant this on DetectedIssue (nor reading the ledger)",
        );
    }
    match caller.role() {
        Role::Auditor | Role::Admin => Decision::permit(Basis::Unowned, vec![]),
        other => Decision::deny(
            Basis::Role,
            vec![],
            format!(
                "alerts are for security staff (auditor, admin), not the {} role",
                other.as_str()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodian_auth::Claims;

    fn caller(role: Role, scope: &str) -> Caller {
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
            patient: None,
            scope: scope.into(),
            client_id: None,
        })
    }

    #[test]
    fn security_staff_with_the_scope_only() {
        let auditor = caller(Role::Auditor, "user/AuditEvent.rs user/Organization.rs");
        assert!(decide(&auditor, AlertInteraction::Read).permitted());
        assert!(decide(&auditor, AlertInteraction::Review).permitted());
        let admin = caller(Role::Admin, "system/*.cruds");
        assert!(decide(&admin, AlertInteraction::Review).permitted());
        let narrow = caller(Role::Auditor, "user/DetectedIssue.rs");
        assert!(decide(&narrow, AlertInteraction::Read).permitted());
        assert_eq!(
            decide(&narrow, AlertInteraction::Review).basis,
            Basis::Scope
        );
        let none = caller(Role::Auditor, "user/Organization.rs");
        assert_eq!(decide(&none, AlertInteraction::Read).basis, Basis::Scope);
        // The scope is in the wrong context for the role.
        let wrong = caller(Role::Auditor, "system/AuditEvent.rs");
        assert!(!decide(&wrong, AlertInteraction::Read).permitted());
        for (role, scope) in [
            (Role::Practitioner, "user/*.cruds"),
            (Role::Patient, "patient/*.rs"),
            (Role::Service, "system/*.cruds"),
        ] {
            let d = decide(&caller(role, scope), AlertInteraction::Read);
            assert_eq!(d.basis, Basis::Role, "{role:?}");
            assert!(!d.permitted());
        }
    }
}
