//! `GET /internal/consents`: every consent's current typed form, the snapshot records' replica
//! starts from before tailing the consent stream. Never forwarded by the gateway, and answered
//! only to callers presenting the deployment's service credential.

use actix_web::{web, HttpResponse};
use custodian_policy::{ConsentChange, ParsedConsent};

use crate::{domain::ConsentResource, error::ConsentError, routes::AppState, store};

#[utoipa::path(
    get,
    path = "/internal/consents",
    tag = "internal",
    security(("smart" = [])),
    responses(
        (status = 200, description = "One ConsentChange per consent: its current version, with the typed consent while it is active (null when not active or deleted)", body = Vec<Object>),
        (status = 401, description = "No or a wrong service credential (INTERNAL_TOKEN_FILE)"),
    )
)]
pub async fn list(
    _: custodian_auth::InternalCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsentError> {
    let mut conn = state.pool.get().await?;
    let rows = store::all(&mut conn).await?;
    drop(conn);
    let changes: Vec<ConsentChange> = rows
        .into_iter()
        .map(|row| {
            let consent = format!("Consent/{}", row.id);
            let consent_policy = if row.deleted {
                None
            } else {
                match ConsentResource::from_stored(row.resource) {
                    Ok(resource) => resource
                        .in_force()
                        .map(|p| p.with_reference(consent.clone())),
                    // An active consent the engine cannot read any more denies everything
                    // for its patient until it is fixed: never a wider rule.
                    Err(e) if row.status == "active" => {
                        tracing::error!(error = %e, consent = %consent, "stored consent is unreadable; published as deny-all");
                        Some(ParsedConsent::deny_all(consent.clone(), row.patient.clone()))
                    }
                    Err(_) => None,
                }
            };
            ConsentChange {
                consent,
                patient: row.patient,
                version: row.version_id,
                consent_policy,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(changes))
}
