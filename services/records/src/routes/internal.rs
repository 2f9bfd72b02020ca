//! `GET /internal/memberships`: every container's current members, the snapshot the consent
//! service's membership replica starts from before tailing the relationships stream. Never
//! forwarded by the gateway, and answered only to callers presenting the deployment's service
//! credential.

use actix_web::{web, HttpResponse};

use crate::{error::RecordsError, relationships, state::AppState};

#[utoipa::path(
    get,
    path = "/internal/memberships",
    tag = "internal",
    security(("smart" = [])),
    responses(
        (status = 200, description = "One MembershipChange per container seen: its version, whether its members are known, and its members", body = Vec<Object>),
        (status = 401, description = "No or a wrong service credential (INTERNAL_TOKEN_FILE)"),
    )
)]
pub async fn memberships(
    _: custodian_auth::InternalCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let mut conn = state.connection().await?;
    let changes = relationships::snapshot(&mut conn).await?;
    drop(conn);
    Ok(HttpResponse::Ok().json(changes))
}
