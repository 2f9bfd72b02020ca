//! Who may do what with consents, as access-kernel [`Decision`]s (whose events the kernel's
//! builder makes). Deny by default:
//!
//! | role | read, vread, history, search | create, update, delete | `/consent/decide` |
//! |---|---|---|---|
//! | patient | her own | her own | for her own patient id |
//! | practitioner, service | consents (versions) whose provisions name its organisation or practitioner reference | no | service only |
//! | admin | no (the ledger) | on any patient's behalf | no |
//! | auditor | no (the ledger) | no | no |
//!
//! Every interaction also needs the token's SMART scope on `Consent` (`patient/`, `user/` or
//! `system/` by role). A consent the caller may not see answers exactly like one that does not
//! exist (404, or absent from a search), so nobody learns whom another patient trusts.

use custodian_auth::Role;

use crate::{
    caller::Caller,
    decision::{Basis, Decision},
    interaction::Interaction,
    kernel::{scope_allows as kernel_scope_allows, scope_denial as kernel_scope_denial},
    reference::PatientRef,
};

pub const CONSENT: &str = "Consent";

/// Does the token's scope grant `interaction` on Consent (a patient's only for her own)?
fn scope_allows(caller: &Caller, interaction: Interaction, patient: Option<&PatientRef>) -> bool {
    kernel_scope_allows(caller, interaction, CONSENT, patient)
}

fn scope_denial(interaction: Interaction) -> Decision {
    kernel_scope_denial(interaction, CONSENT)
}

/// Which consents a search may return; the consent store turns it into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// One patient's consents (her own).
    Patient(String),
    /// Consents naming one of these actor references.
    NamingAny(Vec<String>),
    /// None at all.
    Nothing,
}

/// Does `named` (a consent's actor references) name the caller?
pub fn names_caller(caller: &Caller, named: &[String]) -> bool {
    caller
        .actor_references()
        .iter()
        .any(|reference| named.contains(reference))
}

/// May the caller see one consent (or one version of it)? `consent` is `Consent/<id>`,
/// `named` the actor references that version's provisions name.
pub fn see(
    caller: &Caller,
    interaction: Interaction,
    consent: &str,
    patient: &PatientRef,
    named: &[String],
) -> Decision {
    if !scope_allows(caller, interaction, Some(patient)) {
        return scope_denial(interaction);
    }
    match caller.role() {
        Role::Patient if caller.own_patient() == Some(patient) => {
            Decision::permit(Basis::OwnRecord, vec![])
        }
        Role::Patient => Decision::deny(Basis::Role, vec![], "patients see their own consents"),
        Role::Practitioner | Role::Service if names_caller(caller, named) => {
            Decision::permit(Basis::Consent, vec![consent.to_string()])
        }
        Role::Practitioner | Role::Service => Decision::deny(
            Basis::NoPermit,
            vec![],
            "the consent names neither the caller's organisation nor the caller",
        ),
        Role::Admin | Role::Auditor => Decision::deny(
            Basis::Role,
            vec![],
            "administrators and auditors see consents through the ledger",
        ),
    }
}

/// How much of a consent the caller sees once it may see it: the patient all of it; an actor
/// it names only the provisions that apply to it (whom else she trusts is hers to know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentView {
    Whole,
    /// The provisions naming one of these references, and the path to them.
    NamingOnly(Vec<String>),
}

pub fn view(caller: &Caller) -> ConsentView {
    match caller.role() {
        Role::Patient => ConsentView::Whole,
        _ => ConsentView::NamingOnly(caller.actor_references()),
    }
}

/// May the caller record, change or revoke a consent of `patient`?
pub fn write(caller: &Caller, interaction: Interaction, patient: &PatientRef) -> Decision {
    if !scope_allows(caller, interaction, Some(patient)) {
        return scope_denial(interaction);
    }
    match caller.role() {
        Role::Patient if caller.own_patient() == Some(patient) => {
            Decision::permit(Basis::OwnRecord, vec![])
        }
        Role::Patient => Decision::deny(
            Basis::Role,
            vec![],
            "patients may only record their own consents",
        ),
        // On the patient's behalf (a signed paper form, a proxy).
        Role::Admin => Decision::permit(Basis::Role, vec![]),
        Role::Practitioner | Role::Service | Role::Auditor => Decision::deny(
            Basis::Role,
            vec![],
            "only the patient or an administrator may record consents",
        ),
    }
}

/// What a search may return, computed in the query, and the search's decision (a deny when
/// it may return nothing: the answer is then an empty Bundle, like a search that matched
/// nothing). `Err` is a refusal to answer at all (a patient asking for another patient's
/// consents).
pub fn search(
    caller: &Caller,
    requested: Option<&PatientRef>,
) -> Result<(Visible, Decision), Decision> {
    let nothing = |decision: Decision| Ok((Visible::Nothing, decision));
    if caller.role() == Role::Patient && requested.is_some_and(|p| caller.own_patient() != Some(p))
    {
        return Err(Decision::deny(
            Basis::Role,
            vec![],
            "patients may only search their own consents",
        ));
    }
    if !scope_allows(caller, Interaction::Search, requested) {
        return nothing(scope_denial(Interaction::Search));
    }
    match caller.role() {
        Role::Patient => match caller.own_patient() {
            Some(own) => Ok((
                Visible::Patient(own.as_str().to_string()),
                Decision::permit(Basis::OwnRecord, vec![]),
            )),
            None => nothing(Decision::deny(
                Basis::Role,
                vec![],
                "the token names no patient",
            )),
        },
        Role::Practitioner | Role::Service => {
            let actors = caller.actor_references();
            if actors.is_empty() {
                nothing(Decision::deny(
                    Basis::NoPermit,
                    vec![],
                    "the token names no organisation or practitioner a consent could name",
                ))
            } else {
                Ok((
                    Visible::NamingAny(actors),
                    Decision::permit(Basis::Search, vec![]),
                ))
            }
        }
        Role::Admin | Role::Auditor => nothing(Decision::deny(
            Basis::Role,
            vec![],
            "administrators and auditors see consents through the ledger",
        )),
    }
}

/// May the caller ask `/consent/decide` about `patient`? Services may; a patient for herself.
pub fn decide(caller: &Caller, patient: &PatientRef) -> Decision {
    let allowed = match caller.role() {
        Role::Service => true,
        Role::Patient => caller.own_patient() == Some(patient),
        Role::Practitioner | Role::Admin | Role::Auditor => false,
    };
    if !allowed {
        return Decision::deny(
            Basis::Role,
            vec![],
            "access decisions are asked by services, or by a patient about herself",
        );
    }
    if !scope_allows(caller, Interaction::Read, Some(patient)) {
        return scope_denial(Interaction::Read);
    }
    match caller.role() {
        Role::Patient => Decision::permit(Basis::OwnRecord, vec![]),
        _ => Decision::permit(Basis::Role, vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodian_auth::Claims;

    fn caller(role: Role, scope: &str) -> Caller {
        Caller::from_claims(Claims {
            iss: "i".into(),
            sub: "u".into(),
            aud: "custodian".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            role,
            organization: Some("Organization/h1".into()),
            department: None,
            practitioner: Some("Practitioner/p1".into()),
            patient: (role == Role::Patient).then(|| "Patient/alice".to_string()),
            scope: scope.into(),
            client_id: None,
        })
    }

    fn alice() -> PatientRef {
        PatientRef::parse("Patient/alice").unwrap()
    }

    fn bob() -> PatientRef {
        PatientRef::parse("Patient/bob").unwrap()
    }

    #[test]
    fn who_sees_a_consent() {
        let names_h1 = vec!["Organization/h1".to_string()];
        let names_h2 = vec!["Organization/h2".to_string()];
        let patient = caller(Role::Patient, "patient/Consent.cruds");
        let practitioner = caller(Role::Practitioner, "user/*.cruds");
        let service = caller(Role::Service, "system/*.cruds");
        let admin = caller(Role::Admin, "system/*.cruds");
        let auditor = caller(Role::Auditor, "user/AuditEvent.rs");
        let table: Vec<(&str, &Caller, PatientRef, &Vec<String>, bool)> = vec![
            ("her own", &patient, alice(), &names_h2, true),
            ("another patient's", &patient, bob(), &names_h1, false),
            (
                "a practitioner named",
                &practitioner,
                bob(),
                &names_h1,
                true,
            ),
            (
                "a practitioner not named",
                &practitioner,
                bob(),
                &names_h2,
                false,
            ),
            ("a service named", &service, alice(), &names_h1, true),
            ("a service not named", &service, alice(), &names_h2, false),
            ("an admin", &admin, alice(), &names_h1, false),
            ("an auditor", &auditor, alice(), &names_h1, false),
        ];
        for (case, who, patient, named, expected) in table {
            let d = see(who, Interaction::Read, "Consent/c1", &patient, named);
            assert_eq!(d.permitted(), expected, "{case}: {d:?}");
        }
        let practitioner_named_by_person = vec!["Practitioner/p1".to_string()];
        assert!(see(
            &practitioner,
            Interaction::Read,
            "Consent/c1",
            &bob(),
            &practitioner_named_by_person
        )
        .permitted());
        // Without the scope, not even her own.
        let narrow = caller(Role::Patient, "patient/Observation.rs");
        assert!(!see(
            &narrow,
            Interaction::Read,
            "Consent/c1",
            &alice(),
            &names_h1
        )
        .permitted());
    }

    #[test]
    fn who_writes_and_who_decides() {
        let patient = caller(Role::Patient, "patient/Consent.cruds");
        let admin = caller(Role::Admin, "system/*.cruds");
        let service = caller(Role::Service, "system/*.cruds");
        let practitioner = caller(Role::Practitioner, "user/*.cruds");
        assert!(write(&patient, Interaction::Create, &alice()).permitted());
        assert!(!write(&patient, Interaction::Create, &bob()).permitted());
        assert!(write(&admin, Interaction::Update, &bob()).permitted());
        assert!(!write(&service, Interaction::Delete, &alice()).permitted());
        assert!(!write(&practitioner, Interaction::Create, &alice()).permitted());
        assert!(!write(
            &caller(Role::Patient, "patient/Consent.rs"),
            Interaction::Create,
            &alice()
        )
        .permitted());

        assert!(decide(&service, &alice()).permitted());
        assert!(decide(&patient, &alice()).permitted());
        assert!(!decide(&patient, &bob()).permitted());
        assert!(!decide(&practitioner, &alice()).permitted());
        assert!(!decide(&admin, &alice()).permitted());
    }

    #[test]
    fn what_a_search_covers() {
        let visible = |c: &Caller, p: Option<&PatientRef>| search(c, p).map(|(v, _)| v);
        let patient = caller(Role::Patient, "patient/Consent.cruds");
        assert_eq!(
            visible(&patient, None),
            Ok(Visible::Patient("Patient/alice".into()))
        );
        assert!(visible(&patient, Some(&bob())).is_err());
        let practitioner = caller(Role::Practitioner, "user/*.cruds");
        assert_eq!(
            visible(&practitioner, Some(&bob())),
            Ok(Visible::NamingAny(vec![
                "Organization/h1".into(),
                "Practitioner/p1".into()
            ]))
        );
        assert_eq!(
            visible(&caller(Role::Admin, "system/*.cruds"), None),
            Ok(Visible::Nothing)
        );
        assert_eq!(
            visible(&caller(Role::Auditor, "user/AuditEvent.rs"), None),
            Ok(Visible::Nothing)
        );
        let unscoped = caller(Role::Practitioner, "user/Observation.rs");
        assert_eq!(visible(&unscoped, None), Ok(Visible::Nothing));
    }
}
