//! `GET /ledger/proof/inclusion` and `GET /ledger/proof/consistency`: RFC 9162 proofs, hashes
//! in base64. A size beyond the latest checkpoint gets a checkpoint signed first, so every
//! proof can be checked against a signed root.

use actix_web::{web, HttpResponse};
use custodian_auth::Authenticated;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::LedgerError,
    routes::{b64, entries::parse_index},
    service::LedgerService,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    pub index: String,
    /// Defaults to the latest checkpoint's size.
    pub tree_size: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProofResponse {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub root_hash: String,
    pub inclusion_proof: Vec<String>,
}

/// Checks `size` against the tree (404 beyond it) and makes sure a checkpoint covers it.
async fn ensure_size(ledger: &LedgerService, size: u64) -> Result<(), LedgerError> {
    if ledger.size() < size && ledger.catch_up().await? < size {
        return Err(LedgerError::NotFound(format!(
            "the log has fewer than {size} entries"
        )));
    }
    ledger.checkpoint_covering(size).await.map(|_| ())
}

#[utoipa::path(
    get,
    path = "/ledger/proof/inclusion", operation_id = "inclusion_proof", tag = "ledger",
    params(InclusionQuery),
    security(("smart" = [])),
    responses(
        (status = 200, description = "The inclusion proof (RFC 9162 hashing)", body = InclusionProofResponse),
        (status = 400, description = "A malformed parameter (`error`: invalid)", body = crate::routes::ErrorBody),
        (status = 404, description = "No such entry, tile or tree size (`error`: not-found)", body = crate::routes::ErrorBody),
    )
)]
pub async fn inclusion(
    _auth: Authenticated,
    ledger: web::Data<LedgerService>,
    query: web::Query<InclusionQuery>,
) -> Result<HttpResponse, LedgerError> {
    let index = parse_index(&query.index, "index")?;
    let size = match &query.tree_size {
        Some(s) => parse_index(s, "tree_size")?,
        None => ledger.latest().tree_size,
    };
    if index >= size {
        return Err(LedgerError::Validation(format!(
            "index {index} is not below tree_size {size}"
        )));
    }
    ensure_size(&ledger, size).await?;
    let proof = ledger.inclusion_proof(index, size).await?;
    Ok(HttpResponse::Ok().json(InclusionProofResponse {
        index,
        tree_size: size,
        leaf_hash: b64(&proof.leaf_hash),
        root_hash: b64(&proof.root),
        inclusion_proof: proof.proof.iter().map(|h| b64(h)).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    pub first: String,
    pub second: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProofResponse {
    pub first: u64,
    pub second: u64,
    pub first_root: String,
    pub second_root: String,
    pub consistency_proof: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/ledger/proof/consistency", operation_id = "consistency_proof", tag = "ledger",
    params(ConsistencyQuery),
    security(("smart" = [])),
    responses(
        (status = 200, description = "The consistency proof (RFC 9162 hashing)", body = ConsistencyProofResponse),
        (status = 400, description = "A malformed parameter (`error`: invalid)", body = crate::routes::ErrorBody),
        (status = 404, description = "No such entry, tile or tree size (`error`: not-found)", body = crate::routes::ErrorBody),
    )
)]
pub async fn consistency(
    _auth: Authenticated,
    ledger: web::Data<LedgerService>,
    query: web::Query<ConsistencyQuery>,
) -> Result<HttpResponse, LedgerError> {
    let first = parse_index(&query.first, "first")?;
    let second = parse_index(&query.second, "second")?;
    if first == 0 || first > second {
        return Err(LedgerError::Validation(
            "a consistency proof needs 0 < first <= second".into(),
        ));
    }
    ensure_size(&ledger, second).await?;
    let proof = ledger.consistency(first, second).await?;
    Ok(HttpResponse::Ok().json(ConsistencyProofResponse {
        first,
        second,
        first_root: b64(&proof.first_root),
        second_root: b64(&proof.second_root),
        consistency_proof: proof.proof.iter().map(|h| b64(h)).collect(),
    }))
}
