//! `GET /internal/suspended`

use actix_web::{web, HttpResponse};
use custodian_auth::{
    deny::{DenySnapshot, RevokedToken},
    InternalCaller,
};

use crate::{
    error::ApiError,
    models::{revoked_token, user},
    state::AppState,
};

/// Every suspended user's id and every revoked token still in force: the snapshot each
/// service's deny list starts from before it tails the identity stream. Only for callers with
/// the service credential (`Authorization: Bearer <INTERNAL_TOKEN_FILE>`); never forwarded by
/// the gateway.
#[utoipa::path(
    get,
    path = "/internal/suspended",
    tag = "internal",
    security(("smart" = [])),
    responses(
        (status = 200, description = "Suspended users and revoked tokens", body = DenySnapshot),
        (status = 401, description = "No or a wrong service credential"),
    )
)]
pub async fn suspended(
    _: InternalCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let suspended: Vec<String> = user::suspended_ids(&mut conn)
        .await?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    let revoked = revoked_token::active(&mut conn)
        .await?
        .into_iter()
        .map(|(jti, expires_at)| RevokedToken { jti, expires_at })
        .collect();
    Ok(HttpResponse::Ok().json(DenySnapshot { suspended, revoked }))
}
