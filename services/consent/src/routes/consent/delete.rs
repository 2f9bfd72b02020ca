//! `DELETE /fhir/Consent/{id}`

use actix_web::{web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::{outbox, AccessAction, AccessOutcome};
use custodian_fhir::{OperationOutcome, FHIR_JSON};
use diesel_async::AsyncConnection;

use super::{
    access_event, change_event, check_precondition, if_match, parse_id, refuse, row_patient,
    row_version, with_version_headers,
};
use crate::{
    domain::{audit::RequestContext, resource::now_millis, Caller},
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow},
};

/// Revokes and deletes a consent: a new version marked deleted, whose change carries no rules.
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
        (status = 403, description = "Not the consent's patient nor an administrator", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "If-Match names another version", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    req: HttpRequest,
    auth: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsentError> {
    let Authenticated(claims) = auth;
    let ctx = RequestContext::from_request(&req)?;
    let precondition = if_match(&req)?;
    let id = parse_id(&path)?;
    let mut conn = state.pool.get().await?;
    let existing = store::find(&mut conn, id)
        .await?
        .ok_or_else(|| ConsentError::not_found(&path))?;
    let patient = row_patient(&existing)?;
    if let Err(e) = Caller::new(&claims).may_write(&patient) {
        drop(conn);
        return Err(refuse(
            &state,
            &ctx,
            &claims,
            Some(&patient),
            AccessAction::Delete,
            e,
        )
        .await);
    }
    if existing.deleted {
        return Ok(HttpResponse::NoContent().finish());
    }
    let event = ctx.event(
        &claims,
        Some(&patient),
        AccessAction::Delete,
        1,
        AccessOutcome::Permit,
    );
    let streams = state.streams.clone();
    let now = now_millis();
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
            let events = vec![
                change_event(&streams, &row, Vec::new())?,
                access_event(&streams, &event)?,
            ];
            outbox::enqueue_many(conn, &events).await?;
            Ok(Some(row))
        })
        .await?;
    let Some(row) = deleted else {
        return Ok(HttpResponse::NoContent().finish());
    };
    state.relay.wake();
    state.metrics.written.with_label_values(&["delete"]).inc();
    tracing::info!(consent = %id, version = row.version_id, "consent deleted");
    let mut builder = HttpResponse::Ok();
    builder.content_type(FHIR_JSON);
    with_version_headers(&mut builder, row_version(row.version_id)?, row.last_updated);
    Ok(builder.body(
        OperationOutcome::information(&format!("Consent/{id} was deleted; its rules are revoked"))
            .to_string(),
    ))
}
