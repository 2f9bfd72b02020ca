//! `GET /fhir/Consent/{id}` and `GET /fhir/Consent/{id}/_history/{vid}`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::{AccessAction, AccessOutcome};

use super::{parse_id, record, refuse, resource_response, row_patient, row_version};
use crate::{
    domain::{audit::RequestContext, Caller, VersionId},
    error::ConsentError,
    routes::AppState,
    store,
};

/// The current version of a consent.
#[utoipa::path(
    get,
    path = "/fhir/Consent/{id}",
    tag = "Consent",
    params(("id" = String, Path, description = "The consent's id")),
    responses(
        (status = 200, description = "The consent", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Another patient's consent", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known", body = Object, content_type = "application/fhir+json"),
        (status = 410, description = "Deleted", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn read(
    req: HttpRequest,
    auth: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsentError> {
    let Authenticated(claims) = auth;
    let ctx = RequestContext::from_request(&req)?;
    let id = parse_id(&path)?;
    let mut conn = state.pool.get().await?;
    let row = store::find(&mut conn, id)
        .await?
        .ok_or_else(|| ConsentError::not_found(&path))?;
    drop(conn);
    let patient = row_patient(&row)?;
    if let Err(e) = Caller::new(&claims).may_read(&patient) {
        return Err(refuse(&state, &ctx, &claims, Some(&patient), AccessAction::Read, e).await);
    }
    if row.deleted {
        return Err(ConsentError::gone(&path));
    }
    record(
        &state,
        &ctx.event(
            &claims,
            Some(&patient),
            AccessAction::Read,
            1,
            AccessOutcome::Permit,
        ),
    )
    .await?;
    Ok(resource_response(
        StatusCode::OK,
        id,
        row_version(row.version_id)?,
        row.last_updated,
        &row.resource,
        None,
    ))
}

/// One version of a consent.
#[utoipa::path(
    get,
    path = "/fhir/Consent/{id}/_history/{vid}",
    tag = "Consent",
    params(
        ("id" = String, Path, description = "The consent's id"),
        ("vid" = String, Path, description = "The version id"),
    ),
    responses(
        (status = 200, description = "That version", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Another patient's consent", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "No such consent or version", body = Object, content_type = "application/fhir+json"),
        (status = 410, description = "That version is a deletion", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn vread(
    req: HttpRequest,
    auth: Authenticated,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsentError> {
    let Authenticated(claims) = auth;
    let ctx = RequestContext::from_request(&req)?;
    let (raw_id, raw_version) = path.into_inner();
    let id = parse_id(&raw_id)?;
    let mut conn = state.pool.get().await?;
    let current = store::find(&mut conn, id)
        .await?
        .ok_or_else(|| ConsentError::not_found(&raw_id))?;
    let patient = row_patient(&current)?;
    if let Err(e) = Caller::new(&claims).may_read(&patient) {
        drop(conn);
        return Err(refuse(&state, &ctx, &claims, Some(&patient), AccessAction::Read, e).await);
    }
    let unknown_version = || ConsentError::not_found(&format!("{raw_id}/_history/{raw_version}"));
    let version = VersionId::parse(&raw_version).ok_or_else(unknown_version)?;
    let row = store::history_version(&mut conn, id, version.get())
        .await?
        .ok_or_else(unknown_version)?;
    drop(conn);
    if row.deleted {
        return Err(ConsentError::gone(&format!(
            "{raw_id}/_history/{raw_version}"
        )));
    }
    record(
        &state,
        &ctx.event(
            &claims,
            Some(&patient),
            AccessAction::Read,
            1,
            AccessOutcome::Permit,
        ),
    )
    .await?;
    Ok(resource_response(
        StatusCode::OK,
        id,
        version,
        row.last_updated,
        &row.resource,
        None,
    ))
}
