//! Who may do what with consents. Deny by default:
//!
//! | role | read | write (create, update, delete) | decide |
//! |---|---|---|---|
//! | admin | any | any | yes |
//! | patient | their own | their own | no |
//! | practitioner, auditor, service | any (who is allowed to see what) | no | yes |

use custodian_auth::{Claims, Role};

use super::PatientRef;
use crate::error::ConsentError;

/// The verified caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    claims: &'a Claims,
}

impl<'a> Caller<'a> {
    pub fn new(claims: &'a Claims) -> Self {
        Self { claims }
    }

    pub fn claims(&self) -> &'a Claims {
        self.claims
    }

    /// The patient a patient-role token speaks for.
    pub fn own_patient(&self) -> Option<PatientRef> {
        self.claims
            .patient
            .as_deref()
            .and_then(|p| PatientRef::parse(p).ok())
    }

    fn is_own(&self, patient: &PatientRef) -> bool {
        self.own_patient().as_ref() == Some(patient)
    }

    pub fn may_read(&self, patient: &PatientRef) -> Result<(), ConsentError> {
        match self.claims.role {
            Role::Admin | Role::Practitioner | Role::Auditor | Role::Service => Ok(()),
            Role::Patient if self.is_own(patient) => Ok(()),
            Role::Patient => Err(ConsentError::forbidden(
                "patients may only read their own consents",
            )),
        }
    }

    pub fn may_write(&self, patient: &PatientRef) -> Result<(), ConsentError> {
        match self.claims.role {
            Role::Admin => Ok(()),
            Role::Patient if self.is_own(patient) => Ok(()),
            Role::Patient => Err(ConsentError::forbidden(
                "patients may only record their own consents",
            )),
            Role::Practitioner | Role::Auditor | Role::Service => Err(ConsentError::forbidden(
                "only the patient or an administrator may record consents",
            )),
        }
    }

    /// The patient a search must be limited to: a patient only ever sees their own consents.
    pub fn search_scope(
        &self,
        requested: Option<PatientRef>,
    ) -> Result<Option<PatientRef>, ConsentError> {
        match self.claims.role {
            Role::Admin | Role::Practitioner | Role::Auditor | Role::Service => Ok(requested),
            Role::Patient => {
                let own = self
                    .own_patient()
                    .ok_or_else(|| ConsentError::forbidden("the token names no patient"))?;
                match requested {
                    Some(p) if p != own => Err(ConsentError::forbidden(
                        "patients may only search their own consents",
                    )),
                    _ => Ok(Some(own)),
                }
            }
        }
    }

    pub fn may_decide(&self) -> Result<(), ConsentError> {
        match self.claims.role {
            Role::Admin | Role::Practitioner | Role::Auditor | Role::Service => Ok(()),
            Role::Patient => Err(ConsentError::forbidden(
                "patients may not ask for access decisions",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(role: Role, patient: Option<&str>) -> Claims {
        Claims {
            iss: "i".into(),
            sub: "u".into(),
            aud: "custodian".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            role,
            organization: None,
            department: None,
            practitioner: None,
            patient: patient.map(str::to_string),
            scope: String::new(),
            client_id: None,
        }
    }

    #[test]
    fn patients_touch_only_their_own() {
        let alice = PatientRef::parse("Patient/alice").unwrap();
        let bob = PatientRef::parse("Patient/bob").unwrap();
        let c = claims(Role::Patient, Some("alice"));
        let caller = Caller::new(&c);
        assert!(caller.may_write(&alice).is_ok());
        assert!(caller.may_read(&alice).is_ok());
        assert!(caller.may_write(&bob).is_err());
        assert!(caller.may_read(&bob).is_err());
        assert_eq!(caller.search_scope(None).unwrap(), Some(alice.clone()));
        assert!(caller.search_scope(Some(bob)).is_err());
        assert!(caller.may_decide().is_err());
    }

    #[test]
    fn a_patient_token_without_patient_is_refused() {
        let alice = PatientRef::parse("alice").unwrap();
        let c = claims(Role::Patient, None);
        assert!(Caller::new(&c).may_write(&alice).is_err());
        assert!(Caller::new(&c).search_scope(None).is_err());
    }

    #[test]
    fn staff_read_but_do_not_write() {
        let alice = PatientRef::parse("alice").unwrap();
        for role in [Role::Practitioner, Role::Auditor, Role::Service] {
            let c = claims(role, None);
            assert!(Caller::new(&c).may_read(&alice).is_ok());
            assert!(Caller::new(&c).may_write(&alice).is_err());
            assert!(Caller::new(&c).may_decide().is_ok());
        }
        let admin = claims(Role::Admin, None);
        assert!(Caller::new(&admin).may_write(&alice).is_ok());
    }
}
