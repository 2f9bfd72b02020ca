//! The HTTP API under `/ledger`, and the same log as FHIR `AuditEvent`s under
//! `/fhir/AuditEvent`. Checkpoint and key are public; everything else needs a bearer token,
//! and entries are filtered by [`crate::domain::Viewer`].

pub mod accesses;
pub mod audit_event;
pub mod checkpoint;
pub mod checkpoints;
pub mod entries;
pub mod proofs;
pub mod tiles;

use actix_web::web;
use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::LedgerError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| LedgerError::Validation(e.to_string()).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| LedgerError::Validation(e.to_string()).into()),
    )
    .service(
        web::scope("/ledger")
            .route("/checkpoint", web::get().to(checkpoint::checkpoint))
            .route("/key", web::get().to(checkpoint::key))
            .route("/accesses", web::get().to(accesses::list))
            .route("/checkpoints", web::get().to(checkpoints::list))
            .route("/entries", web::get().to(entries::range))
            .route("/entries/{index}", web::get().to(entries::get))
            .route("/proof/inclusion", web::get().to(proofs::inclusion))
            .route("/proof/consistency", web::get().to(proofs::consistency))
            .route("/tile/entries/{tile:.*}", web::get().to(tiles::entries))
            .route("/tile/{tile:.*}", web::get().to(tiles::hashes)),
    )
    .service(
        web::scope("/fhir/AuditEvent")
            .route("", web::get().to(audit_event::search))
            .route("", web::route().to(audit_event::not_allowed))
            .route("/{id}", web::get().to(audit_event::read))
            .route("/{id}", web::route().to(audit_event::not_allowed)),
    );
}

/// The error body every endpoint answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid`, `not-found`, `forbidden` or `internal`.
    pub error: String,
    pub message: String,
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
