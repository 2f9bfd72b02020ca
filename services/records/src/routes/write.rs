//! What create and update share: turning the client's body into a stored version.

use chrono::{DateTime, Utc};
use custodian_fhir::FhirError;
use serde_json::Value;

use custodian_fhir_search::registry::IndexRow;

use crate::{
    access::InstanceFacts,
    domain::{
        compartment::{confidentiality_of, other_patients_of, patient_of},
        resource::{BodyError, IncomingResource},
        validation, ResourceType,
    },
    state::AppState,
};

/// A validated resource, with what access control and search need.
pub struct Prepared {
    pub patient: Option<String>,
    /// Further patients whose compartments the resource is also in: a write needs the right to
    /// write into each of them.
    pub other_patients: Vec<String>,
    pub confidentiality: Option<String>,
    pub index: Vec<IndexRow>,
    /// What consents can name about it.
    pub facts: InstanceFacts,
}

pub fn parse_body(
    body: &[u8],
    resource_type: &ResourceType,
) -> Result<IncomingResource, FhirError> {
    let incoming = IncomingResource::parse(body).map_err(|e| match e {
        BodyError::NoResourceType => {
            FhirError::BadRequest("the resource has no resourceType".into())
        }
        other => FhirError::BadRequest(other.to_string()),
    })?;
    if incoming.resource_type() != resource_type.as_str() {
        return Err(FhirError::BadRequest(format!(
            "resourceType {:?} does not match the URL's {}",
            incoming.resource_type(),
            resource_type
        )));
    }
    Ok(incoming)
}

/// The stored text of version `version`, stamped.
pub fn stamp(
    incoming: &IncomingResource,
    id: &str,
    version: i64,
    at: DateTime<Utc>,
) -> Result<String, FhirError> {
    incoming
        .stamp(id, version, at)
        .map_err(|e| FhirError::Unprocessable(vec![("meta".into(), e.to_string())]))
}

/// Validates against the R4 schema and computes compartment, confidentiality and index.
pub fn prepare(
    state: &AppState,
    incoming: &IncomingResource,
    resource_type: &ResourceType,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Prepared, FhirError> {
    let json = stamp(incoming, id, 1, at)?;
    let value: Value =
        serde_json::from_str(&json).map_err(|e| FhirError::Internal(e.to_string()))?;
    validation::validate(&value).map_err(FhirError::Unprocessable)?;
    let patient = patient_of(state.registry, resource_type.as_str(), id, &value);
    Ok(Prepared {
        other_patients: other_patients_of(
            state.registry,
            resource_type.as_str(),
            &value,
            patient.as_deref(),
        ),
        patient,
        confidentiality: confidentiality_of(&value),
        index: state.registry.extract(resource_type.as_str(), &value),
        facts: InstanceFacts::of(
            state.registry,
            &state.public_url,
            resource_type.as_str(),
            &value,
        ),
    })
}
