//! `GET /ledger/entries/{index}`: one entry, when the caller may see it.

use actix_web::{web, HttpResponse};
use custodian_access::Caller;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{domain::Viewer, error::LedgerError, routes::b64, service::LedgerService, storage};

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryResponse {
    pub index: u64,
    /// Base64 of `SHA-256(0x00 || payload)`.
    pub leaf_hash: String,
    /// The leaf data: the event JSON exactly as logged.
    pub payload: String,
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

pub(crate) fn parse_index(raw: &str, name: &str) -> Result<u64, LedgerError> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| LedgerError::Validation(format!("{name} must be a non-negative integer")))
}

#[utoipa::path(
    get,
    path = "/ledger/entries/{index}",
    params(("index" = u64, Path, description = "leaf index")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = EntryResponse),
        (status = 400, body = crate::routes::ErrorBody),
        (status = 403, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody),
    )
)]
pub async fn get(
    caller: Caller,
    ledger: web::Data<LedgerService>,
    index: web::Path<String>,
) -> Result<HttpResponse, LedgerError> {
    let viewer = Viewer::of(&caller).map_err(|d| LedgerError::Forbidden(d.explanation))?;
    let index = parse_index(&index, "index")?;
    let mut conn = ledger.pool().get().await?;
    let row = storage::entry(&mut conn, index as i64)
        .await?
        .ok_or_else(|| LedgerError::NotFound(format!("no entry {index}")))?;
    drop(conn);
    if !viewer.can_see(row.patient_ref.as_deref(), &row.actor_id) {
        return Err(LedgerError::Forbidden(
            "this entry is not yours to see".into(),
        ));
    }
    let event = serde_json::from_str(&row.payload).map_err(LedgerError::unexpected)?;
    Ok(HttpResponse::Ok().json(EntryResponse {
        index,
        leaf_hash: b64(&row.leaf_hash),
        payload: row.payload,
        event,
    }))
}
