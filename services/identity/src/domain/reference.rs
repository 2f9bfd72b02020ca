//! FHIR references. A FHIR logical id is 1 to 64 characters of `A-Z a-z 0-9 - .`.

use uuid::Uuid;

use super::Invalid;

fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// An organisation's id, given either bare (`<uuid>`) or as `Organization/<uuid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrganizationId(Uuid);

impl OrganizationId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let id = raw.strip_prefix("Organization/").unwrap_or(raw);
        Uuid::parse_str(id).map(Self).map_err(|_| {
            Invalid("organization must be an organization id or \"Organization/<id>\"".into())
        })
    }

    pub fn uuid(&self) -> Uuid {
        self.0
    }

    pub fn reference(id: Uuid) -> String {
        format!("Organization/{id}")
    }
}

/// A reference to a resource of one type (`Practitioner/<id>`, `Patient/<id>`), given either
/// bare or with its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceReference {
    resource_type: &'static str,
    id: String,
}

impl ResourceReference {
    pub fn parse(resource_type: &'static str, raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let id = match raw.split_once('/') {
            Some((kind, id)) if kind == resource_type => id,
            Some(_) => {
                return Err(Invalid(format!(
                    "{} must be a {resource_type} id or \"{resource_type}/<id>\"",
                    field(resource_type)
                )))
            }
            None => raw,
        };
        if !is_fhir_id(id) {
            return Err(Invalid(format!(
                "{} id must be 1 to 64 characters of letters, digits, '-' and '.'",
                field(resource_type)
            )));
        }
        Ok(Self {
            resource_type,
            id: id.to_string(),
        })
    }

    /// A new reference with a random id.
    pub fn generate(resource_type: &'static str) -> Self {
        Self {
            resource_type,
            id: Uuid::new_v4().to_string(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `Type/<id>`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

fn field(resource_type: &str) -> String {
    resource_type.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_ids_bare_or_prefixed() {
        let id = Uuid::new_v4();
        assert_eq!(OrganizationId::parse(&id.to_string()).unwrap().uuid(), id);
        assert_eq!(
            OrganizationId::parse(&format!("Organization/{id}"))
                .unwrap()
                .uuid(),
            id
        );
        assert!(OrganizationId::parse("Organization/h1").is_err());
        assert!(OrganizationId::parse(&format!("Patient/{id}")).is_err());
    }

    #[test]
    fn resource_references() {
        let r = ResourceReference::parse("Patient", "Patient/alice-1").unwrap();
        assert_eq!(r.reference(), "Patient/alice-1");
        assert_eq!(r.id(), "alice-1");
        assert_eq!(
            ResourceReference::parse("Patient", "alice")
                .unwrap()
                .reference(),
            "Patient/alice"
        );
        assert!(ResourceReference::parse("Patient", "Practitioner/alice").is_err());
        assert!(ResourceReference::parse("Patient", "Patient/").is_err());
        assert!(ResourceReference::parse("Patient", "a/b/c").is_err());
        assert!(ResourceReference::parse("Patient", &"x".repeat(65)).is_err());
        assert!(ResourceReference::generate("Practitioner")
            .reference()
            .starts_with("Practitioner/"));
    }
}
