//! Who may read which ledger entries. Auditors and administrators see every entry; a patient
//! sees the entries about them ("who accessed my data"); a practitioner sees the entries where
//! they were the actor. Other roles (services) see none.

use custodian_auth::{Claims, Role};

/// A `Patient/<id>` reference with a valid FHIR id. A bare id is accepted and prefixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRef(String);

impl PatientRef {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let id = raw.strip_prefix("Patient/").unwrap_or(raw);
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if valid {
            Ok(Self(format!("Patient/{id}")))
        } else {
            Err(format!("{raw:?} is not a Patient reference"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The slice of the ledger a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    Everything,
    /// Entries whose `patient` is this reference.
    Patient(PatientRef),
    /// Entries whose actor is this user id (the token's `sub`).
    Actor(String),
}

impl Viewer {
    /// `None` when the caller may see no entry at all.
    pub fn from_claims(claims: &Claims) -> Option<Self> {
        match claims.role {
            Role::Admin | Role::Auditor => Some(Viewer::Everything),
            Role::Patient => claims
                .patient
                .as_deref()
                .and_then(|p| PatientRef::parse(p).ok())
                .map(Viewer::Patient),
            Role::Practitioner => Some(Viewer::Actor(claims.sub.clone())),
            Role::Service => None,
        }
    }

    pub fn can_see(&self, patient: Option<&str>, actor_id: &str) -> bool {
        match self {
            Viewer::Everything => true,
            Viewer::Patient(p) => patient == Some(p.as_str()),
            Viewer::Actor(a) => a == actor_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_refs_are_checked_and_normalised() {
        assert_eq!(
            PatientRef::parse("Patient/abc-1").unwrap().as_str(),
            "Patient/abc-1"
        );
        assert_eq!(
            PatientRef::parse("abc.1").unwrap().as_str(),
            "Patient/abc.1"
        );
        for bad in [
            "",
            "Patient/",
            "Patient/a b",
            "Patient/x'--",
            "Observation/1/x",
        ] {
            assert!(PatientRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn visibility_follows_the_role() {
        let p = Viewer::Patient(PatientRef::parse("Patient/a").unwrap());
        assert!(p.can_see(Some("Patient/a"), "u"));
        assert!(!p.can_see(Some("Patient/b"), "u"));
        assert!(!p.can_see(None, "u"));
        let a = Viewer::Actor("u1".into());
        assert!(a.can_see(Some("Patient/b"), "u1"));
        assert!(!a.can_see(Some("Patient/b"), "u2"));
        assert!(Viewer::Everything.can_see(None, "x"));
    }
}
