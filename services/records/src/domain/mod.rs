//! Domain types: input becomes one of these through `parse`, and is valid everywhere after.
//!
//! - [`ResourceType`], [`ResourceId`], [`VersionId`]: the parts of a FHIR resource address.
//! - [`resource`]: the client's JSON kept as the record of truth, with id and meta stamped.
//! - [`compartment`]: which patient a resource belongs to, and its confidentiality.
//! - [`relationships`]: memberships (CareTeam, Group, PractitionerRole) and care facts read
//!   from a resource.
//! - [`validation`]: the R4 JSON Schema, one compiled validator for every type.

pub mod compartment;
pub mod relationships;
pub mod resource;
pub mod validation;

use std::fmt;

/// Why a path segment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("unknown resource type {0:?}")]
    UnknownType(String),
    #[error("{resource_type} resources are served by {by}")]
    NotServedHere {
        resource_type: &'static str,
        by: &'static str,
    },
    #[error("{0:?} is not a valid resource id ([A-Za-z0-9-.]{{1,64}})")]
    BadId(String),
    #[error("{0:?} is not a valid version id")]
    BadVersion(String),
}

/// Types other services serve under the same `/fhir` base: records neither stores nor searches
/// them. Consent lives in the consent service; AuditEvent is the ledger's view of its log (one
/// written here would be an audit record anyone with write access could forge).
pub const SERVED_ELSEWHERE: [(&str, &str); 2] = [
    ("Consent", "the consent service"),
    ("AuditEvent", "the ledger"),
];

/// The type and its service, when `raw` is a type another service serves.
pub fn served_elsewhere(raw: &str) -> Option<(&'static str, &'static str)> {
    SERVED_ELSEWHERE.into_iter().find(|(t, _)| *t == raw)
}

/// An R4 resource type this service stores (every type but those [`SERVED_ELSEWHERE`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType(String);

impl ResourceType {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        if let Some((resource_type, by)) = served_elsewhere(raw) {
            return Err(AddressError::NotServedHere { resource_type, by });
        }
        if raw.is_empty()
            || !raw.chars().all(|c| c.is_ascii_alphabetic())
            || !custodian_fhir::validate::is_resource_type(raw)
        {
            return Err(AddressError::UnknownType(raw.chars().take(64).collect()));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every type this service serves, sorted.
    pub fn all() -> Vec<ResourceType> {
        custodian_fhir::validate::resource_types()
            .into_iter()
            .filter(|t| served_elsewhere(t).is_none())
            .map(ResourceType)
            .collect()
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A logical id: `[A-Za-z0-9\-\.]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceId(String);

impl ResourceId {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        if is_valid_id(raw) {
            Ok(Self(raw.to_string()))
        } else {
            Err(AddressError::BadId(raw.chars().take(80).collect()))
        }
    }

    /// A new server-assigned id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub use custodian_fhir::validate::is_valid_id;

/// A version id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionId(i64);

impl VersionId {
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        match raw.parse::<i64>() {
            Ok(v) if v > 0 && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(Self(v)),
            _ => Err(AddressError::BadVersion(raw.chars().take(32).collect())),
        }
    }

    pub fn get(&self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types() {
        assert!(ResourceType::parse("Patient").is_ok());
        assert!(ResourceType::parse("MedicinalProduct").is_ok());
        assert_eq!(
            ResourceType::parse("Consent"),
            Err(AddressError::NotServedHere {
                resource_type: "Consent",
                by: "the consent service"
            })
        );
        assert!(matches!(
            ResourceType::parse("AuditEvent"),
            Err(AddressError::NotServedHere {
                by: "the ledger",
                ..
            })
        ));
        assert!(ResourceType::parse("Banana").is_err());
        assert!(ResourceType::parse("").is_err());
        assert!(ResourceType::parse("Patient/1").is_err());
        assert!(!ResourceType::all()
            .iter()
            .any(|t| ["Consent", "AuditEvent"].contains(&t.as_str())));
        assert!(ResourceType::all().len() > 140);
    }

    #[test]
    fn ids() {
        assert!(ResourceId::parse("abc-1.2").is_ok());
        assert!(ResourceId::parse(&"a".repeat(64)).is_ok());
        assert!(ResourceId::parse(&"a".repeat(65)).is_err());
        assert!(ResourceId::parse("").is_err());
        assert!(ResourceId::parse("a_b").is_err());
        assert!(ResourceId::parse("a/b").is_err());
        assert!(ResourceId::parse(ResourceId::generate().as_str()).is_ok());
    }

    #[test]
    fn versions() {
        assert_eq!(VersionId::parse("3").unwrap().get(), 3);
        assert!(VersionId::parse("0").is_err());
        assert!(VersionId::parse("-1").is_err());
        assert!(VersionId::parse("+1").is_err());
        assert!(VersionId::parse("x").is_err());
    }
}
