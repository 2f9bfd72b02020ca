//! The ledger service: an append-only Merkle audit log of every access to patient data.
//!
//! Every access event on the `access` stream becomes one leaf (the event JSON as received), in
//! an RFC 9162 Merkle tree. Checkpoints of the tree are signed as C2SP signed notes; inclusion
//! and consistency proofs let anyone check an entry is in the log and that the log only grew.
//!
//! - [`tree`]: the tree math, pure: hashing, roots, proofs, verification (RFC 9162 §2.1).
//! - [`signing`]: Ed25519 signed notes and checkpoints (C2SP), [`verify_note`];
//!   [`cosignature`]: witness cosignatures (C2SP `cosignature/v1`); [`keys`]: the log's
//!   signing keys and their rotation.
//! - [`tiles`]: the tree as C2SP tlog-tiles (pure): the right edge, tile paths, a cache.
//! - [`storage`]: leaves, checkpoints and the key in PostgreSQL; single-writer appends;
//!   [`tile_storage`]: the tiles, written in the appends' transactions.
//! - [`service`]: the three kept in step: durable leaves and tiles, the tree's right edge in
//!   memory, the latest signed and the published checkpoint.
//! - [`consumer`]: the access-stream handler; [`checkpointer`]: the periodic signer.
//! - [`witnessing`]: the log asks witnesses to cosign and publishes what a quorum cosigned;
//!   [`witness`]: the same binary run as a witness (`ledger witness`).
//! - [`verify`]: `ledger verify`, the whole log checked from PostgreSQL or the HTTP API;
//!   [`keygen`]: `ledger keygen`, keys for a log or a witness.
//! - [`domain`]: the checkpoint body, who may see which entries, a leaf as a FHIR `AuditEvent`
//!   and the parsed `AuditEvent` search; [`audit_search`]: that search in PostgreSQL.
//! - [`routes`]: the HTTP API under `/ledger` and `/fhir/AuditEvent`; [`error`]: errors to HTTP
//!   answers.
//! - [`configuration`], [`startup`]: settings and wiring.

pub mod audit_search;
pub mod checkpointer;
pub mod configuration;
pub mod consumer;
pub mod cosignature;
pub mod domain;
pub mod error;
pub mod keygen;
pub mod keys;
pub mod routes;
pub mod schema;
pub mod service;
pub mod signing;
pub mod startup;
pub mod storage;
pub mod tile_storage;
pub mod tiles;
pub mod tree;
pub mod verify;
pub mod witness;
pub mod witnessing;

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
        routes::entries::range,
        routes::checkpoints::list,
        routes::proofs::inclusion,
        routes::proofs::consistency,
        routes::tiles::hashes,
        routes::tiles::entries,
        routes::audit_event::search,
        routes::audit_event::read,
    ),
    components(schemas(
        routes::ErrorBody,
        routes::checkpoint::KeyResponse,
        routes::checkpoint::VerifierKeyEntry,
        routes::checkpoint::WitnessEntry,
        routes::accesses::AccessesResponse,
        routes::accesses::AccessEntry,
        routes::entries::EntryResponse,
        routes::entries::RangeResponse,
        routes::entries::RangeEntry,
        routes::checkpoints::CheckpointsResponse,
        routes::checkpoints::StoredCheckpoint,
        routes::proofs::InclusionProofResponse,
        routes::proofs::ConsistencyProofResponse,
    )),
    tags(
        (name = "ledger", description = "The Merkle log of every access: checkpoints, entries, proofs, tiles (C2SP tlog-tiles)"),
        (name = "fhir", description = "FHIR R4 interactions"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the ledger's API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    custodian_auth::openapi::finish(&mut doc, "ledger");
    doc
}
