//! `POST /auth/admin/keys/rotate`

use actix_web::{web, HttpResponse};
use custodian_auth::Authenticated;
use serde::Serialize;
use utoipa::ToSchema;

use super::{require_admin, ApiErrorBody};
use crate::{error::ApiError, state::AppState};

#[derive(Serialize, ToSchema)]
pub struct RotationResponse {
    /// The new active key's id.
    pub kid: String,
    /// Keys retired by this rotation; they stay in the JWKS for one token lifetime.
    pub retired: Vec<String>,
}

/// Retires the signing key and creates a new one. Tokens signed with the old key keep verifying
/// until they expire.
#[utoipa::path(
    post,
    path = "/auth/admin/keys/rotate", operation_id = "rotate_keys",
    tag = "admin",
    security(("smart" = [])),
    responses(
        (status = 200, description = "Rotated", body = RotationResponse),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
    )
)]
pub async fn rotate(
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = require_admin(&auth)?;
    let rotation = state.keys.rotate().await?;
    tracing::info!(admin = %admin, kid = %rotation.kid, "signing key rotated by an administrator");
    Ok(HttpResponse::Ok().json(RotationResponse {
        kid: rotation.kid,
        retired: rotation.retired,
    }))
}
