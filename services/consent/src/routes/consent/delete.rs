//! `DELETE /fhir/Consent/{id}`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Interaction, Touched};
use custodian_events::outbox;
use custodian_fhir::{http, OperationOutcome};
use diesel_async::AsyncConnection;

use super::{change_event, check_precondition, if_match, known, row_version, update::authorised};
use crate::{
    domain::{access::CONSENT, resource::now_millis},
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow},
};

/// Revokes and deletes a consent: a new version marked deleted, whose change carries no consent.
/// Later reads answer 410. Deleting a deleted consent changes nothing (204).
#[utoipa::path(
    delete,
    path = "/fhir/Consent/{id}",
    tag = "Consent",
    params(
        ("id" = String, Path, description = "The consent's id"),
        ("If-Match" = Option<String>, Header, description = "W/\"<versionId>\": delete only that version"),
    ),
    responses(
        (status = 200, description = "Deleted (revoked); ETag names the deletion's version", body = Object, content_type = "application/fhir+json"),
        (status = 204, description = "Already deleted"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "An actor the consent names, who may see but not delete it", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known, or not the caller's to see", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "If-Match names another version", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn delete(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    delete_by_id(&req, &state, &caller, &path).await
}

/// Deletes the consent `raw_id` names.
pub(super) async fn delete_by_id(
    req: &HttpRequest,
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<HttpResponse, ConsentError> {
    let interaction = Interaction::Delete;
    let precondition = if_match(req)?;
    let (id, existing_row, patient, decision) =
        authorised(state, caller, raw_id, interaction).await?;
    if existing_row.deleted {
        return Ok(HttpResponse::NoContent().finish());
    }
    let event = decision.event(
        caller,
        interaction,
        Touched::new(CONSENT, Some(&patient)).count(1),
    );
    let streams = state.streams.clone();
    let log = state.log.clone();
    let now = now_millis();
    let mut conn = state.pool.get().await?;
    let deleted = conn
        .transaction::<Option<ConsentRow>, ConsentError, _>(async move |conn| {
            let current = store::find_for_update(conn, id)
                .await?
                .ok_or_else(|| ConsentError::not_found(&id.to_string()))?;
            if current.deleted {
                return Ok(None);
            }
            let version = row_version(current.version_id)?;
            check_precondition(precondition, version)?;
            let row = ConsentRow {
                version_id: version.next().get(),
                last_updated: now,
                deleted: true,
                ..current
            };
            store::replace(conn, &row).await?;
            let change = change_event(&streams, &row, None)?;
            outbox::enqueue_many(conn, &[change]).await?;
            log.enqueue(conn, &[event]).await?;
            Ok(Some(row))
        })
        .await?;
    let Some(row) = deleted else {
        return Ok(HttpResponse::NoContent().finish());
    };
    state.log.wake();
    state.metrics.written.with_label_values(&["delete"]).inc();
    tracing::info!(consent = %id, version = row.version_id, "consent deleted");
    let version = row_version(row.version_id)?;
    Ok(
        http::versioned(StatusCode::OK, version.get(), row.last_updated).body(
            OperationOutcome::information(&format!("Consent/{id} was deleted; it is revoked"))
                .to_string(),
        ),
    )
}
