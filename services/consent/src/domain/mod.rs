//! Consent's domain types: input becomes one of these through `parse`, and is valid from then on.
//!
//! - [`resource`]: a Consent resource that passed the R4 schema and the policy engine's parser.
//! - [`version`]: version ids, `ETag`s and `If-Match`.
//! - [`access`]: who may see, write and ask about which consent, as access-kernel decisions.
//!
//! The caller, typed references and access events are the access kernel's
//! ([`custodian_access`]).

pub mod access;
pub mod resource;
pub mod version;

pub use custodian_access::PatientRef;
pub use resource::ConsentResource;
pub use version::VersionId;
