//! HTTP details of the FHIR API: the FHIR REST core's (`custodian_fhir::http`), and the
//! addresses records serves.

pub use custodian_fhir::http::{
    etag, fhir, http_date, if_match, not_modified, prefer_return, require_json, versioned,
    write_body, IfNoneMatch, Return,
};
use custodian_fhir::FhirError;

use crate::domain::{AddressError, ResourceId, ResourceType};

pub fn parse_type(raw: &str) -> Result<ResourceType, FhirError> {
    ResourceType::parse(raw).map_err(|e| match e {
        AddressError::NotServedHere { .. } => FhirError::NotFound(e.to_string()),
        other => FhirError::NotFound(other.to_string()),
    })
}

pub fn parse_id(raw: &str) -> Result<ResourceId, FhirError> {
    ResourceId::parse(raw).map_err(|e| FhirError::BadRequest(e.to_string()))
}
