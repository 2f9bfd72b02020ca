//! FHIR R4 (4.0.1) helpers shared by the services that speak FHIR.
//!
//! - [`http`]: media types and negotiation, `Prefer`, ETags and preconditions, versioned
//!   responses: the HTTP rules of every FHIR interaction, in one place.
//! - [`bundle`]: Bundles embedding stored resources verbatim, `_count` and page links.
//! - [`elements`]: `_summary` and `_elements` subsets of a resource.
//! - [`dates`]: `date`, `dateTime` and `instant` values as the time range their precision covers.
//! - [`outcome`]: `OperationOutcome` bodies and the error enum mapped to FHIR status codes.
//! - [`validate`]: structural validation against the specification's own JSON Schema
//!   (`schema/fhir.schema.json`, R4 4.0.1), compiled once per resource type.
//!
//! The client's JSON is the record of truth: it is validated, never re-serialised through a
//! typed model (fhir-sdk's model is R4B and lossy; see the README).

pub mod bundle;
pub mod dates;
pub mod elements;
pub mod exact_numbers;
pub mod history;
pub mod http;
pub mod json_text;
pub mod openapi;
pub mod outcome;
pub mod validate;

pub use outcome::{FhirError, OperationOutcome, FHIR_JSON};
pub use validate::{validate_resource, ValidationIssue};
