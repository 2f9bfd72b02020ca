//! The consent service: patients' consents as enforceable contracts.
//!
//! FHIR R4 `Consent` resources are stored as the client sent them (JSONB, with the server's id
//! and `meta`), versioned, and served under both `/fhir/Consent` and `/consent/Consent`. Every
//! write publishes a [`custodian_policy::ConsentChange`] on the consent stream through the
//! transactional outbox, in the same transaction, so a revocation reaches every records replica
//! within a second. `POST /consent/decide` answers access questions with the same policy code
//! records uses; `GET /internal/consents` is the snapshot records starts from.
//!
//! - [`configuration`]: settings from the environment.
//! - [`startup`]: builds and runs the application.
//! - [`routes`]: the handlers, one file per interaction.
//! - [`domain`]: parsed consents, patient references, versions, who may do what, audit events.
//! - [`store`]: rows and queries; [`schema`]: the diesel tables.
//! - [`error`]: the error policy (FHIR `OperationOutcome`s).
//! - [`metrics`]: consent's own Prometheus counters.
//! - [`openapi()`]: the OpenAPI document.

pub mod configuration;
pub mod domain;
pub mod error;
pub mod metrics;
mod openapi;
pub mod routes;
pub mod schema;
pub mod startup;
pub mod store;

pub use openapi::openapi;
