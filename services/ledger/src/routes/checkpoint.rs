//! `GET /ledger/checkpoint` and `GET /ledger/key`: public, so anyone can check what the log
//! signed.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::LedgerService;

/// The latest signed checkpoint, as a C2SP signed note.
#[utoipa::path(
    get,
    path = "/ledger/checkpoint",
    responses((status = 200, description = "C2SP signed note of a tlog-checkpoint", body = String, content_type = "text/plain"))
)]
pub async fn checkpoint(ledger: web::Data<LedgerService>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(ledger.latest().note)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyResponse {
    /// The log's origin, also the key's name.
    pub origin: String,
    /// C2SP verifier key: `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub verifier_key: String,
    /// Always `ed25519`.
    pub algorithm: String,
}

/// The key checkpoints are signed with.
#[utoipa::path(get, path = "/ledger/key", responses((status = 200, body = KeyResponse)))]
pub async fn key(ledger: web::Data<LedgerService>) -> HttpResponse {
    let signer = ledger.signer();
    HttpResponse::Ok().json(KeyResponse {
        origin: signer.name().to_string(),
        verifier_key: signer.verifier_key(),
        algorithm: "ed25519".into(),
    })
}
