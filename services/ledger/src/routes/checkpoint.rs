//! `GET /ledger/checkpoint` and `GET /ledger/key`: public, so anyone can check what the log
//! signed and which witnesses cosigned it.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{error::LedgerError, keys::KeyDirectory, service::LedgerService};

/// The published checkpoint, as a C2SP signed note: the log's signature, then the witnesses'
/// cosignatures when a quorum is configured.
#[utoipa::path(
    get,
    path = "/ledger/checkpoint", tag = "ledger",
    responses(
        (status = 200, description = "C2SP signed note of a tlog-checkpoint, with the witnesses' cosignature lines", body = String, content_type = "text/plain"),
        (status = 503, description = "No checkpoint has reached the witness quorum yet"),
    )
)]
pub async fn checkpoint(ledger: web::Data<LedgerService>) -> HttpResponse {
    let published = ledger.latest();
    if published.note.is_empty() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .content_type("text/plain; charset=utf-8")
            .body("no checkpoint has reached the witness quorum yet\n");
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(published.note)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyResponse {
    /// The log's origin, also the key's name.
    pub origin: String,
    /// The key that signs now. C2SP verifier key: `<name>+<hex key id>+<base64(0x01 ||
    /// public key)>`.
    pub verifier_key: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// Every key that signed or may have signed checkpoints: the current one and the retired
    /// ones (old checkpoints stay verifiable after a rotation).
    pub verifier_keys: Vec<VerifierKeyEntry>,
    /// The witnesses whose cosignatures publish a checkpoint.
    pub witnesses: Vec<WitnessEntry>,
    /// Cosignatures a checkpoint needs to be published (0: none).
    pub witness_quorum: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifierKeyEntry {
    pub verifier_key: String,
    /// `current` or `retired`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WitnessEntry {
    pub name: String,
    /// C2SP cosignature/v1 verifier key: `<name>+<hex key id>+<base64(0x04 || public key)>`.
    pub verifier_key: String,
}

/// The key checkpoints are signed with, the retired ones, and the witnesses' keys.
#[utoipa::path(get, path = "/ledger/key", tag = "ledger", responses((status = 200, description = "The ledger's verifier key and the witnesses it trusts", body = KeyResponse)))]
pub async fn key(
    ledger: web::Data<LedgerService>,
    directory: web::Data<KeyDirectory>,
) -> Result<HttpResponse, LedgerError> {
    let signer = ledger.signer();
    let current = signer.verifier_key();
    let mut conn = ledger.pool().get().await?;
    let recorded = crate::keys::recorded(&mut conn).await?;
    drop(conn);
    let mut verifier_keys = vec![VerifierKeyEntry {
        verifier_key: current.clone(),
        status: "current".into(),
    }];
    for key in recorded
        .into_iter()
        .map(|(k, _)| k)
        .chain(directory.retired.iter().cloned())
    {
        if !verifier_keys.iter().any(|e| e.verifier_key == key) {
            verifier_keys.push(VerifierKeyEntry {
                verifier_key: key,
                status: "retired".into(),
            });
        }
    }
    Ok(HttpResponse::Ok().json(KeyResponse {
        origin: signer.name().to_string(),
        verifier_key: current,
        algorithm: "ed25519".into(),
        verifier_keys,
        witnesses: directory
            .witnesses
            .iter()
            .map(|(name, key)| WitnessEntry {
                name: name.clone(),
                verifier_key: key.clone(),
            })
            .collect(),
        witness_quorum: directory.witness_quorum,
    }))
}
