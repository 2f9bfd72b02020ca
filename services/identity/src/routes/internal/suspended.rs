//! `GET /internal/suspended`

use actix_web::{web, HttpResponse};

use crate::{error::ApiError, models::user, state::AppState};

/// The ids of every suspended user: the gateway's snapshot at start, before it tails the
/// identity stream.
#[utoipa::path(
    get,
    path = "/internal/suspended",
    tag = "internal",
    responses((status = 200, description = "Suspended users' ids", body = Vec<String>))
)]
pub async fn suspended(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let ids: Vec<String> = user::suspended_ids(&mut conn)
        .await?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    Ok(HttpResponse::Ok().json(ids))
}
