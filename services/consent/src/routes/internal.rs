//! `GET /internal/consents`: every consent's current rules, the snapshot records' replica starts
//! from before tailing the consent stream. Never forwarded by the gateway.

use actix_web::{web, HttpResponse};
use custodian_policy::ConsentChange;

use crate::{domain::ConsentResource, error::ConsentError, routes::AppState, store};

#[utoipa::path(
    get,
    path = "/internal/consents",
    tag = "internal",
    responses(
        (status = 200, description = "One ConsentChange per consent (current version; empty rules when not active or deleted)", body = Vec<Object>),
    )
)]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ConsentError> {
    let mut conn = state.pool.get().await?;
    let rows = store::all(&mut conn).await?;
    let changes: Vec<ConsentChange> = rows
        .into_iter()
        .map(|row| {
            let rules = if row.deleted {
                Vec::new()
            } else {
                ConsentResource::from_stored(row.resource)
                    .and_then(|r| r.rules())
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, consent = %row.id, "stored consent has unreadable rules");
                        Vec::new()
                    })
            };
            ConsentChange { consent: format!("Consent/{}", row.id), patient: row.patient, version: row.version_id, rules }
        })
        .collect();
    Ok(HttpResponse::Ok().json(changes))
}
