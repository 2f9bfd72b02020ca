//! The ledger service: an append-only Merkle audit log of every access to patient data.
//!
//! Every access event on the `access` stream becomes one leaf (the event JSON as received), in
//! an RFC 9162 Merkle tree. Checkpoints of the tree are signed as C2SP signed notes; inclusion
//! and consistency proofs let anyone check an entry is in the log and that the log only grew.
//!
//! - [`tree`]: the tree math, pure: hashing, roots, proofs, verification (RFC 9162 §2.1).
//! - [`signing`]: Ed25519 signed notes and checkpoints (C2SP), [`verify_note`].
//! - [`storage`]: leaves, checkpoints and the key in PostgreSQL; single-writer appends.
//! - [`service`]: the three kept in step: durable leaves, in-memory tree, latest checkpoint.
//! - [`consumer`]: the access-stream handler; [`checkpointer`]: the periodic signer.
//! - [`domain`]: the checkpoint body, who may see which entries, a leaf as a FHIR `AuditEvent`
//!   and the parsed `AuditEvent` search; [`audit_search`]: that search in PostgreSQL.
//! - [`routes`]: the HTTP API under `/ledger` and `/fhir/AuditEvent`; [`error`]: errors to HTTP
//!   answers.
//! - [`configuration`], [`startup`]: settings and wiring.

use custodian_auth::openapi::BearerAuth;
pub mod audit_search;
pub mod checkpointer;
pub mod configuration;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod routes;
pub mod schema;
pub mod service;
pub mod signing;
pub mod startup;
pub mod storage;
pub mod tree;

pub use domain::Checkpoint;
pub use signing::verify_note;

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Custodian ledger", description = "Append-only Merkle audit log of every access, with signed checkpoints and proofs."),
    paths(
        routes::checkpoint::checkpoint,
        routes::checkpoint::key,
        routes::accesses::list,
        routes::entries::get,
        routes::proofs::inclusion,
        routes::proofs::consistency,
        routes::audit_event::search,
        routes::audit_event::read,
    ),
    components(schemas(
        routes::ErrorBody,
        routes::checkpoint::KeyResponse,
        routes::accesses::AccessesResponse,
        routes::accesses::AccessEntry,
        routes::entries::EntryResponse,
        routes::proofs::InclusionProofResponse,
        routes::proofs::ConsistencyProofResponse,
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The OpenAPI document of the ledger's API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
