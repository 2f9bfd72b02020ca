//! `GET /fhir/Consent/{id}` and `GET /fhir/Consent/{id}/_history/{vid}`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Interaction, Touched};
use custodian_fhir::http;

use super::{existing, known, record, refuse, resource_response, row_version};
use crate::{
    domain::{
        access::{self, CONSENT},
        resource::{named_in, shown},
        VersionId,
    },
    error::ConsentError,
    routes::AppState,
    store,
};

/// The current version of a consent: for its patient, and for the actors its provisions name.
/// Anyone else gets the 404 of an id that does not exist.
#[utoipa::path(
    get,
    path = "/fhir/Consent/{id}",
    tag = "Consent",
    params(("id" = String, Path, description = "The consent's id")),
    responses(
        (status = 200, description = "The consent", body = Object, content_type = "application/fhir+json"),
        (status = 304, description = "Not modified: If-None-Match names the current version, or If-Modified-Since is not before the last update"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known, or not the caller's to see", body = Object, content_type = "application/fhir+json"),
        (status = 410, description = "Deleted", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn read(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let interaction = Interaction::Read;
    let (id, row, patient) = existing(&state, &caller, interaction, &path).await?;
    let consent = format!("Consent/{id}");
    let decision = access::see(&caller, interaction, &consent, &patient, &row.actors);
    let touched = Touched::new(CONSENT, Some(&patient));
    if !decision.permitted() {
        let error = ConsentError::not_found(&path);
        return Err(refuse(
            &state,
            &caller,
            interaction,
            &decision,
            Some(&patient),
            error,
        )
        .await);
    }
    if row.deleted {
        record(
            &state,
            &[decision.failed_event(&caller, interaction, touched)],
        )
        .await?;
        return Err(ConsentError::gone(&path));
    }
    record(
        &state,
        &[decision.event(&caller, interaction, touched.count(1))],
    )
    .await?;
    let version = row_version(row.version_id)?;
    if let Some(current) = http::not_modified(&req, version.get(), row.last_updated) {
        return Ok(current);
    }
    Ok(resource_response(
        StatusCode::OK,
        id,
        version,
        row.last_updated,
        &shown(&access::view(&caller), &row.resource),
        None,
    ))
}

/// One version of a consent, for its patient and for the actors that version names.
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
        (status = 404, description = "No such consent or version, or not the caller's to see", body = Object, content_type = "application/fhir+json"),
        (status = 410, description = "That version is a deletion", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn vread(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let interaction = Interaction::Read;
    let (raw_id, raw_version) = path.into_inner();
    let (id, current, patient) = existing(&state, &caller, interaction, &raw_id).await?;
    let consent = format!("Consent/{id}");
    let unknown_version = || ConsentError::not_found(&format!("{raw_id}/_history/{raw_version}"));
    let found = match VersionId::parse(&raw_version) {
        Some(version) => {
            let mut conn = state.pool.get().await?;
            store::history_version(&mut conn, id, version.get())
                .await?
                .map(|row| (version, row))
        }
        None => None,
    };
    // Who may see this version: its own named actors (or, when it does not exist, the
    // current version's, so a missing version tells nothing to someone who may see nothing).
    let named = match &found {
        Some((_, row)) => named_in(&row.resource),
        None => current.actors.clone(),
    };
    let decision = access::see(&caller, interaction, &consent, &patient, &named);
    let touched = Touched::new(CONSENT, Some(&patient));
    if !decision.permitted() {
        return Err(refuse(
            &state,
            &caller,
            interaction,
            &decision,
            Some(&patient),
            unknown_version(),
        )
        .await);
    }
    let Some((version, row)) = found else {
        record(
            &state,
            &[decision.failed_event(&caller, interaction, touched)],
        )
        .await?;
        return Err(unknown_version());
    };
    if row.deleted {
        record(
            &state,
            &[decision.failed_event(&caller, interaction, touched)],
        )
        .await?;
        return Err(ConsentError::gone(&format!(
            "{raw_id}/_history/{raw_version}"
        )));
    }
    record(
        &state,
        &[decision.event(&caller, interaction, touched.count(1))],
    )
    .await?;
    Ok(resource_response(
        StatusCode::OK,
        id,
        version,
        row.last_updated,
        &shown(&access::view(&caller), &row.resource),
        None,
    ))
}
