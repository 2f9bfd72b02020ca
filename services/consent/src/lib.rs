//! The consent service: patients' consents as enforceable contracts.
//!
//! FHIR R4 `Consent` resources are accepted only when the policy engine
//! ([`custodian_policy::Consent::parse`]) can enforce exactly what they say (422 naming each
//! element otherwise), stored as the client sent them (JSONB, with the server's id and `meta`),
//! versioned, and served under both `/fhir/Consent` and `/consent/Consent`. Every write
//! publishes a [`custodian_policy::ConsentChange`] carrying the typed consent (none once it is
//! not active) on the consent stream through the transactional outbox, in the same
//! transaction, so a revocation reaches every records replica within a second.
//!
//! Who sees consents ([`domain::access`]): the patient her own; the actors a consent's
//! provisions name; nobody else (administrators write on a patient's behalf; administrators and
//! auditors see consents through the ledger). A consent the caller may not see is the same 404
//! as one that does not exist, and searches filter in SQL. Every access is an event built by the
//! access kernel ([`custodian_access`]) and written through the outbox. `POST /consent/decide`
//! (services, or a patient about herself) answers with the same engine records uses;
//! `GET /internal/consents` (service credential) is the snapshot records starts from.
//!
//! - [`configuration`]: settings from the environment.
//! - [`startup`]: builds and runs the application.
//! - [`routes`]: the handlers, one file per interaction.
//! - [`domain`]: parsed consents, patient references, versions, who may do what, audit events.
//! - [`store`]: rows and queries; [`schema`]: the diesel tables.
//! - [`error`]: the error policy (FHIR `OperationOutcome`s).
//! - [`memberships`]: the membership replica `/consent/decide` expands actors with (records'
//!   snapshot, then the signed relationships stream).
//! - [`metrics`]: consent's own Prometheus counters.
//! - [`openapi()`]: the OpenAPI document.

pub mod configuration;
pub mod domain;
pub mod error;
pub mod memberships;
pub mod metrics;
mod openapi;
pub mod routes;
pub mod schema;
pub mod startup;
pub mod store;

pub use openapi::openapi;
