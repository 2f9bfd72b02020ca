//! `GET /ledger/checkpoints`: every stored signed checkpoint, in size order, in pages, so a
//! verifier can check the whole history (`ledger verify --url`).
//!
//! It needs a token, like the proofs: notes carry no patient data, but the history of sizes
//! and times is the log's activity over time, which the latest checkpoint alone does not tell.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_auth::Authenticated;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::LedgerError,
    routes::{b64, entries::parse_index},
    service::LedgerService,
    storage,
};

/// Largest page.
pub const MAX_CHECKPOINTS: u64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsQuery {
    /// Only checkpoints of a larger size (default: from the first).
    pub after: Option<String>,
    /// At most this many (default and maximum 1000).
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    /// Base64 root hash (the note's third line).
    pub root_hash: String,
    /// The C2SP signed note.
    pub note: String,
    pub signed_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointsResponse {
    /// In increasing size; fewer than `limit` means the last page.
    pub checkpoints: Vec<StoredCheckpoint>,
}

/// Parses `limit`: 1 ..= `max`, `max` when absent.
pub(crate) fn parse_limit(raw: Option<&str>, max: u64) -> Result<i64, LedgerError> {
    let limit = match raw {
        Some(raw) => parse_index(raw, "limit")?,
        None => max,
    };
    if limit == 0 || limit > max {
        return Err(LedgerError::Validation(format!(
            "limit must be between 1 and {max}"
        )));
    }
    Ok(limit as i64)
}

#[utoipa::path(
    get,
    path = "/ledger/checkpoints", operation_id = "list_checkpoints", tag = "ledger",
    params(CheckpointsQuery),
    security(("smart" = [])),
    responses(
        (status = 200, description = "Stored checkpoints after `after`, oldest first", body = CheckpointsResponse),
        (status = 400, description = "A malformed parameter (`error`: invalid)", body = crate::routes::ErrorBody),
        (status = 401, description = "no valid token"),
    )
)]
pub async fn list(
    _auth: Authenticated,
    ledger: web::Data<LedgerService>,
    query: web::Query<CheckpointsQuery>,
) -> Result<HttpResponse, LedgerError> {
    let after = query
        .after
        .as_deref()
        .map(|a| parse_index(a, "after"))
        .transpose()?;
    let limit = parse_limit(query.limit.as_deref(), MAX_CHECKPOINTS)?;
    let mut conn = ledger.pool().get().await?;
    let rows = storage::checkpoints_after(&mut conn, after.map(|a| a as i64), limit).await?;
    drop(conn);
    let checkpoints = rows
        .into_iter()
        .map(|row| {
            Ok(StoredCheckpoint {
                tree_size: u64::try_from(row.tree_size).map_err(LedgerError::unexpected)?,
                root_hash: b64(&row.root_hash),
                note: row.note,
                signed_at: row.signed_at,
            })
        })
        .collect::<Result<Vec<_>, LedgerError>>()?;
    Ok(HttpResponse::Ok().json(CheckpointsResponse { checkpoints }))
}
