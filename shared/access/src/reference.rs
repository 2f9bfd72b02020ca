//! Typed references. A reference that reaches the kernel has been parsed once: `Patient/<id>`
//! with a FHIR id, never a free string, so nothing downstream compares a patient with an
//! organisation or a bare id with a reference.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A FHIR logical id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{raw:?} is not a {kind} reference ({kind}/<id>)")]
pub struct ReferenceError {
    pub kind: &'static str,
    pub raw: String,
}

macro_rules! typed_reference {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const KIND: &'static str = $kind;

            /// Parses `Kind/<id>`; with `bare_ids`, a bare `<id>` too.
            fn parse_with(raw: &str, bare_ids: bool) -> Result<Self, ReferenceError> {
                let raw = raw.trim();
                let id = match raw.strip_prefix(concat!($kind, "/")) {
                    Some(id) => id,
                    None if bare_ids => raw,
                    None => "",
                };
                if is_fhir_id(id) {
                    Ok(Self(format!(concat!($kind, "/{}"), id)))
                } else {
                    Err(ReferenceError { kind: $kind, raw: raw.chars().take(80).collect() })
                }
            }

            /// Parses `Kind/<id>`.
            pub fn parse(raw: &str) -> Result<Self, ReferenceError> {
                Self::parse_with(raw, false)
            }

            /// Parses `Kind/<id>` or a bare `<id>` (SMART's launch context carries bare ids).
            pub fn parse_lenient(raw: &str) -> Result<Self, ReferenceError> {
                Self::parse_with(raw, true)
            }

            /// `Kind/<id>`.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id alone.
            pub fn id(&self) -> &str {
                &self.0[$kind.len() + 1..]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ReferenceError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(r: $name) -> String {
                r.0
            }
        }
    };
}

typed_reference!(
    /// `Patient/<id>`: whose compartment data belongs to.
    PatientRef,
    "Patient"
);
typed_reference!(
    /// `Organization/<id>`: who a user acts for, and who holds a patient's record.
    OrganizationRef,
    "Organization"
);
typed_reference!(
    /// `Practitioner/<id>`.
    PractitionerRef,
    "Practitioner"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let p = PatientRef::parse("Patient/alice").unwrap();
        assert_eq!(p.as_str(), "Patient/alice");
        assert_eq!(p.id(), "alice");
        assert!(PatientRef::parse("alice").is_err());
        assert_eq!(PatientRef::parse_lenient("alice").unwrap(), p);
        assert!(PatientRef::parse("Patient/").is_err());
        assert!(PatientRef::parse("Patient/a/b").is_err());
        assert!(PatientRef::parse("Group/x").is_err());
        assert!(PatientRef::parse(&format!("Patient/{}", "x".repeat(65))).is_err());
        assert!(OrganizationRef::parse("Organization/h1").is_ok());
        assert!(OrganizationRef::parse("Patient/h1").is_err());
    }

    #[test]
    fn serde_goes_through_parse() {
        let p: PatientRef = serde_json::from_str("\"Patient/alice\"").unwrap();
        assert_eq!(p.id(), "alice");
        assert!(serde_json::from_str::<PatientRef>("\"Patient/a b\"").is_err());
    }
}
