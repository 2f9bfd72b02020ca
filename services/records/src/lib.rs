//! Custodian records: FHIR R4 (4.0.1) storage on PostgreSQL, encrypted at rest,
//! consent-enforced, every access an event.
//!
//! - [`configuration`]: settings from the environment.
//! - [`startup`]: builds the app (database, migrations, Redis, consent replica, relay, server).
//! - [`routes`]: the FHIR REST API (create, read, vread, update, delete, history, search,
//!   metadata, transaction and batch Bundles), one file per interaction.
//! - [`domain`]: resource types and ids, the client's JSON as the record of truth, search
//!   parameters, the patient compartment.
//! - [`search`]: search parameters to SQL.
//! - [`store`]: encrypted versions, current rows, the search index.
//! - [`batch`]: the writes of one transaction, made table by table.
//! - [`facts`]: each resource's access facts (labels, codes, data time), for searches to
//!   decide consents' instance conditions in SQL.
//! - [`crypto`]: AES-256-GCM with a per-version nonce and the row address as AAD.
//! - [`access`]: who may do what (consent, own record, roles) and the access events.
//! - [`consent`]: the in-memory consent replica, its snapshot loader and stream tail.
//! - [`relationships`]: memberships and care facts, written with each write and published on
//!   the relationships stream; the kernel's membership replica.
//! - [`error`], [`metrics`], [`state`], [`schema`].
//!
//! The resource JSON is encrypted; the search index (codes, references, dates, normalised
//! strings), the patient reference and the confidentiality code of each resource are not:
//! they are what search and access control run on.

pub mod access;
pub mod batch;
pub mod configuration;
pub mod consent;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod exports;
pub mod facts;
pub mod metrics;
pub mod reindex;
pub mod relationships;
pub mod routes;
pub mod schema;
pub mod search;
pub mod startup;
pub mod state;
pub mod store;

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Custodian records", description = "FHIR R4 RESTful API (records service)"),
    paths(
        routes::metadata::metadata,
        routes::create::create,
        routes::read::read,
        routes::read::vread,
        routes::history::history,
        routes::history::type_history,
        routes::history::system_history,
        routes::update::update,
        routes::delete::delete,
        routes::conditional::update,
        routes::conditional::delete,
        routes::patch::patch,
        routes::patch::conditional_patch,
        routes::search::search_get,
        routes::search::search_post,
        routes::search::search_get_alias,
        routes::transaction::bundle,
        routes::everything::everything,
        routes::erase::erase,
        routes::everything::everything_post,
        routes::everything::everything_all,
        routes::meta::meta,
        routes::meta::version_meta,
        routes::meta::meta_add,
        routes::meta::meta_delete,
        routes::validate::validate,
        routes::export::system,
        routes::export::system_post,
        routes::export::patients,
        routes::export::patients_post,
        routes::export::group,
        routes::export::group_post,
        routes::export::status,
        routes::export::delete,
        routes::export::file,
        routes::internal::memberships,
    ),
    tags((name = "fhir", description = "FHIR R4 interactions")),
)]
struct ApiDoc;

/// The OpenAPI document of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    custodian_auth::openapi::finish(&mut doc, "records");
    doc
}

/// The types `/fhir/{type}` serves here: every R4 type but Consent and AuditEvent, which have
/// their own paths (consent, the ledger). The merged document's `{type}` takes these.
pub fn served_types() -> Vec<&'static str> {
    custodian_policy::resource_types::RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|t| !matches!(*t, "Consent" | "AuditEvent"))
        .collect()
}
