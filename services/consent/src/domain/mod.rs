//! Consent's domain types: input becomes one of these through `parse`, and is valid from then on.
//!
//! - [`patient`]: `Patient/<id>` references (`x` and `Patient/x` both accepted).
//! - [`resource`]: a Consent resource that passed the R4 schema and the policy parser.
//! - [`version`]: version ids, `ETag`s and `If-Match`.
//! - [`access`]: who may read or write which consent.
//! - [`audit`]: the access events consent publishes.

pub mod access;
pub mod audit;
pub mod patient;
pub mod resource;
pub mod version;

pub use access::Caller;
pub use patient::PatientRef;
pub use resource::ConsentResource;
pub use version::{IfMatch, VersionId};
