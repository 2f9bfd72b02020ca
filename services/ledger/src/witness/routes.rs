//! The witness's HTTP API (C2SP `tlog-witness`; submission and monitoring prefix are the root):
//!
//! - `POST /add-checkpoint`: cosign a checkpoint (body and answers as the spec says);
//! - `GET /<sha-256 of the origin, lowercase hex>/checkpoint`: the latest cosigned checkpoint
//!   of a log, with the log's signature and this witness's cosignature;
//! - `GET /key`: this witness's verifier key (`<name>+<hex id>+<base64(0x04 || key)>`).

use actix_web::{web, HttpResponse};

use super::{storage, AddCheckpointError, Witness};

/// A request body of 63 proof lines and a checkpoint with signatures fits easily.
const MAX_BODY: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .route("/add-checkpoint", web::post().to(add_checkpoint))
        .route("/key", web::get().to(key))
        .route("/{origin_hash}/checkpoint", web::get().to(checkpoint));
}

async fn add_checkpoint(
    witness: web::Data<Witness>,
    body: web::Bytes,
) -> Result<HttpResponse, AddCheckpointError> {
    let body = std::str::from_utf8(&body)
        .map_err(|_| AddCheckpointError::Malformed("the body is not UTF-8".into()))?;
    let line = witness.add_checkpoint(body).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(line))
}

async fn key(witness: web::Data<Witness>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{}\n", witness.cosigner().verifier_key()))
}

async fn checkpoint(
    witness: web::Data<Witness>,
    origin_hash: web::Path<String>,
) -> Result<HttpResponse, AddCheckpointError> {
    let Some(origin) = witness.origin_by_hash(&origin_hash) else {
        return Ok(HttpResponse::NotFound().finish());
    };
    let mut conn = witness.pool().get().await?;
    Ok(match storage::cosigned_note(&mut conn, origin).await? {
        Some(note) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(note),
        None => HttpResponse::NotFound().finish(),
    })
}
