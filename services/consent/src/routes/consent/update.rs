//! `PUT /fhir/Consent/{id}`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::{outbox, AccessAction, AccessOutcome};
use diesel_async::AsyncConnection;

use super::{
    access_event, change_event, check_precondition, if_match, json_body, parse_id, refuse,
    resource_response, row_patient, row_version,
};
use crate::{
    domain::{audit::RequestContext, resource::now_millis, Caller, ConsentResource},
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow},
};

/// Replaces a consent with a new version. Setting `status` to `inactive` or `rejected` revokes
/// it: the published change carries no rules. The patient of a consent never changes.
#[utoipa::path(
    put,
    path = "/fhir/Consent/{id}",
    tag = "Consent",
    params(
        ("id" = String, Path, description = "The consent's id (must equal the body's id)"),
        ("If-Match" = Option<String>, Header, description = "W/\"<versionId>\": update only that version"),
        ("X-Purpose-Of-Use" = Option<String>, Header, description = "PurposeOfUse code (TREAT by default)"),
    ),
    request_body(content = Object, content_type = "application/fhir+json", description = "The new version of the Consent"),
    responses(
        (status = 200, description = "Updated", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Malformed, or the body's id differs from the URL's", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Not the consent's patient nor an administrator", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known (ids are assigned by POST)", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "If-Match names another version", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "Not JSON", body = Object, content_type = "application/fhir+json"),
        (status = 422, description = "Not a valid R4 Consent, or a changed patient", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    req: HttpRequest,
    auth: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let Authenticated(claims) = auth;
    let ctx = RequestContext::from_request(&req)?;
    let precondition = if_match(&req)?;
    let resource = ConsentResource::parse(json_body(&req, &body)?)?;
    match resource.id_in_body() {
        Some(body_id) if body_id == path.as_str() => {}
        Some(body_id) => {
            return Err(ConsentError::bad_request(format!(
                "the body's id {body_id:?} does not match the URL's {:?}",
                path.as_str()
            )))
        }
        None => {
            return Err(ConsentError::bad_request(
                "the body must carry the consent's id",
            ))
        }
    }
    let id = parse_id(&path)?;
    let mut conn = state.pool.get().await?;
    let existing = store::find(&mut conn, id)
        .await?
        .ok_or_else(|| ConsentError::not_found(&path))?;
    let patient = row_patient(&existing)?;
    let caller = Caller::new(&claims);
    if let Err(e) = caller
        .may_write(&patient)
        .and_then(|_| caller.may_write(resource.patient()))
    {
        drop(conn);
        return Err(refuse(
            &state,
            &ctx,
            &claims,
            Some(&patient),
            AccessAction::Update,
            e,
        )
        .await);
    }
    if resource.patient() != &patient {
        return Err(ConsentError::unprocessable(vec![(
            "Consent.patient".into(),
            "a consent's patient cannot change; revoke it and record a new one".into(),
        )]));
    }
    let event = ctx.event(
        &claims,
        Some(&patient),
        AccessAction::Update,
        1,
        AccessOutcome::Permit,
    );
    let streams = state.streams.clone();
    let now = now_millis();
    let row = conn
        .transaction::<ConsentRow, ConsentError, _>(async move |conn| {
            let current = store::find_for_update(conn, id)
                .await?
                .ok_or_else(|| ConsentError::not_found(&id.to_string()))?;
            let version = row_version(current.version_id)?;
            check_precondition(precondition, version)?;
            let version = version.next();
            let resource = resource.stamp(id, version, now);
            let row = ConsentRow {
                id,
                patient: current.patient,
                status: resource.status().to_string(),
                version_id: version.get(),
                last_updated: now,
                deleted: false,
                resource: resource.json().clone(),
            };
            store::replace(conn, &row).await?;
            let events = vec![
                change_event(&streams, &row, resource.rules()?)?,
                access_event(&streams, &event)?,
            ];
            outbox::enqueue_many(conn, &events).await?;
            Ok(row)
        })
        .await?;
    state.relay.wake();
    state.metrics.written.with_label_values(&["update"]).inc();
    tracing::info!(consent = %id, version = row.version_id, status = %row.status, "consent updated");
    let version = row_version(row.version_id)?;
    Ok(resource_response(
        StatusCode::OK,
        id,
        version,
        row.last_updated,
        &row.resource,
        Some(&state.public_url),
    ))
}
