//! `GET /ledger/entries/{index}`: one entry, when the caller may see it; `GET /ledger/entries`:
//! a range of entries, for a caller who sees them all.

use actix_web::{web, HttpResponse};
use custodian_access::Caller;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    domain::Viewer,
    error::LedgerError,
    routes::{b64, checkpoints::parse_limit},
    service::LedgerService,
    storage,
};

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
    path = "/ledger/entries/{index}", operation_id = "read_entry", tag = "ledger",
    params(("index" = u64, Path, description = "leaf index")),
    security(("smart" = [])),
    responses(
        (status = 200, description = "The entry, its event and its inclusion proof", body = EntryResponse),
        (status = 400, description = "A malformed parameter (`error`: invalid)", body = crate::routes::ErrorBody),
        (status = 403, description = "Not the caller's to see (`error`: forbidden)", body = crate::routes::ErrorBody),
        (status = 404, description = "No such entry, tile or tree size (`error`: not-found)", body = crate::routes::ErrorBody),
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

/// Largest page of [`range`].
pub const MAX_ENTRIES: u64 = 10_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// The first index (default 0).
    pub start: Option<String>,
    /// At most this many entries (default and maximum 10,000).
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RangeEntry {
    pub index: u64,
    /// Base64 of the stored leaf hash, `SHA-256(0x00 || payload)`.
    pub leaf_hash: String,
    /// The leaf data: the event JSON exactly as logged.
    pub payload: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RangeResponse {
    /// In index order from `start`; fewer than `limit` means the end of the log.
    pub entries: Vec<RangeEntry>,
}

/// A range of leaves as stored, for verifying the whole log. Payloads name patients, so only
/// a caller who sees every entry (auditor, administrator) may read ranges.
#[utoipa::path(
    get,
    path = "/ledger/entries", operation_id = "list_entries", tag = "ledger",
    params(RangeQuery),
    security(("smart" = [])),
    responses(
        (status = 200, description = "The entries of the range", body = RangeResponse),
        (status = 400, description = "A malformed parameter (`error`: invalid)", body = crate::routes::ErrorBody),
        (status = 401, description = "no valid token"),
        (status = 403, description = "Not the caller's to see (`error`: forbidden)", body = crate::routes::ErrorBody),
    )
)]
pub async fn range(
    caller: Caller,
    ledger: web::Data<LedgerService>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, LedgerError> {
    let viewer = Viewer::of(&caller).map_err(|d| LedgerError::Forbidden(d.explanation))?;
    if viewer != Viewer::Everything {
        return Err(LedgerError::Forbidden(
            "ranges of entries are for callers who may see every entry".into(),
        ));
    }
    let start = query
        .start
        .as_deref()
        .map(|s| parse_index(s, "start"))
        .transpose()?
        .unwrap_or(0);
    let limit = parse_limit(query.limit.as_deref(), MAX_ENTRIES)?;
    let mut conn = ledger.pool().get().await?;
    let rows = storage::leaves_from(&mut conn, start as i64, limit).await?;
    drop(conn);
    let entries = rows
        .into_iter()
        .map(|(idx, leaf_hash, payload)| {
            Ok(RangeEntry {
                index: u64::try_from(idx).map_err(LedgerError::unexpected)?,
                leaf_hash: b64(&leaf_hash),
                payload,
            })
        })
        .collect::<Result<Vec<_>, LedgerError>>()?;
    Ok(HttpResponse::Ok().json(RangeResponse { entries }))
}
