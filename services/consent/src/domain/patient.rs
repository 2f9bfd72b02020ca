//! A reference to a patient, always spelled `Patient/<id>`.

use std::fmt;

/// `Patient/<id>` with a valid FHIR id (`[A-Za-z0-9\-\.]{1,64}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PatientRef(String);

impl PatientRef {
    /// Accepts `Patient/x` or a bare `x` (SMART's launch context carries the bare id).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let id = raw.strip_prefix("Patient/").unwrap_or(raw);
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if valid {
            Ok(Self(format!("Patient/{id}")))
        } else {
            Err(format!("{raw:?} is not a patient reference (Patient/<id>)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PatientRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::PatientRef;

    #[test]
    fn normalises_bare_ids() {
        assert_eq!(
            PatientRef::parse("alice").unwrap().as_str(),
            "Patient/alice"
        );
        assert_eq!(
            PatientRef::parse("Patient/alice").unwrap().as_str(),
            "Patient/alice"
        );
    }

    #[test]
    fn rejects_other_references() {
        assert!(PatientRef::parse("").is_err());
        assert!(PatientRef::parse("Patient/").is_err());
        assert!(PatientRef::parse("Patient/a b").is_err());
        assert!(PatientRef::parse("Organization/h1").is_err());
        assert!(PatientRef::parse(&"x".repeat(65)).is_err());
    }
}
