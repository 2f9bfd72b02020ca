//! `GET /ledger/accesses`: who accessed my data, with proofs. Every entry comes with its
//! inclusion proof against the signed checkpoint in the same answer, so the caller can check,
//! without trusting this service, that the entries are in the log everyone else sees.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_access::Caller;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    domain::{PatientRef, Viewer},
    error::LedgerError,
    routes::b64,
    service::LedgerService,
    storage::{self, EntryQuery},
};

const DEFAULT_COUNT: i64 = 100;
const MAX_COUNT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessQuery {
    /// `Patient/<id>` (a patient may omit it: their own).
    pub patient: Option<String>,
    /// At most this many entries, newest first (default 100, at most 1000).
    #[serde(rename = "_count")]
    #[param(rename = "_count")]
    pub count: Option<i64>,
    /// Only accesses at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    /// The leaf index.
    pub index: u64,
    /// Base64 of `SHA-256(0x00 || payload)`.
    pub leaf_hash: String,
    /// The leaf data: the event JSON exactly as logged (hash it to check `leaf_hash`).
    pub payload: String,
    /// The access event, parsed.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    /// Base64 hashes, leaf first, proving `index` in the checkpoint's tree (RFC 9162 §2.1.3).
    pub inclusion_proof: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessesResponse {
    /// The signed note the proofs are against.
    pub checkpoint: String,
    pub tree_size: u64,
    /// Base64 root hash of the checkpoint.
    pub root_hash: String,
    pub entries: Vec<AccessEntry>,
}

/// Accesses to a patient's data (or, for a practitioner, their own accesses).
#[utoipa::path(
    get,
    path = "/ledger/accesses", operation_id = "list_accesses", tag = "ledger",
    params(AccessQuery),
    security(("smart" = [])),
    responses(
        (status = 200, description = "The accesses to the patient's data, each with its inclusion proof", body = AccessesResponse),
        (status = 400, description = "A malformed parameter (`error`: invalid)", body = crate::routes::ErrorBody),
        (status = 401, description = "no valid token"),
        (status = 403, description = "Not the caller's to see (`error`: forbidden)", body = crate::routes::ErrorBody),
    )
)]
pub async fn list(
    caller: Caller,
    ledger: web::Data<LedgerService>,
    query: web::Query<AccessQuery>,
) -> Result<HttpResponse, LedgerError> {
    let viewer = Viewer::of(&caller).map_err(|d| LedgerError::Forbidden(d.explanation))?;
    let query = query.into_inner();
    let patient = query
        .patient
        .as_deref()
        .map(PatientRef::parse_lenient)
        .transpose()
        .map_err(|e| LedgerError::Validation(e.to_string()))?;
    if let (Viewer::Patient(own), Some(asked)) = (&viewer, &patient) {
        if own != asked {
            return Err(LedgerError::Forbidden(
                "patients see only accesses to their own data".into(),
            ));
        }
    }
    let limit = query.count.unwrap_or(DEFAULT_COUNT);
    if !(1..=MAX_COUNT).contains(&limit) {
        return Err(LedgerError::Validation(format!(
            "_count must be between 1 and {MAX_COUNT}"
        )));
    }
    let patient = patient.as_ref().map(PatientRef::as_str);

    let mut conn = ledger.pool().get().await?;
    // Sign a fresh checkpoint when the newest matching entry is not covered yet.
    let newest = storage::newest_index(&mut conn, &viewer, patient).await?;
    let checkpoint = match newest {
        Some(idx) => ledger.checkpoint_covering(idx as u64 + 1).await?,
        None => ledger.latest(),
    };
    let rows = storage::entries(
        &mut conn,
        &EntryQuery {
            viewer: &viewer,
            patient,
            since: query.since,
            below: checkpoint.tree_size as i64,
            limit,
        },
    )
    .await?;
    drop(conn);

    // Every proof from one read of the tiles.
    let indices: Vec<u64> = rows.iter().map(|row| row.idx as u64).collect();
    let proofs = ledger
        .inclusion_proofs(&indices, checkpoint.tree_size)
        .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for (row, proof) in rows.into_iter().zip(proofs) {
        let index = row.idx as u64;
        if proof.leaf_hash.as_slice() != row.leaf_hash.as_slice() {
            return Err(LedgerError::unexpected(format!(
                "leaf {index} differs from the tree"
            )));
        }
        let event = serde_json::from_str(&row.payload).map_err(LedgerError::unexpected)?;
        entries.push(AccessEntry {
            index,
            leaf_hash: b64(&row.leaf_hash),
            payload: row.payload,
            event,
            inclusion_proof: proof.proof.iter().map(|h| b64(h)).collect(),
        });
    }
    Ok(HttpResponse::Ok().json(AccessesResponse {
        root_hash: checkpoint.root_base64(),
        tree_size: checkpoint.tree_size,
        checkpoint: checkpoint.note,
        entries,
    }))
}
