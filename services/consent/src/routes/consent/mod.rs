//! The FHIR Consent interactions: create, read, vread, update, delete, search. The same handlers
//! serve `/fhir/Consent` and `/consent/Consent`.

mod create;
mod delete;
mod history;
mod read;
mod search;
mod update;

pub use create::*;
pub use delete::*;
pub use history::*;
pub use read::*;
pub use search::*;
pub use update::*;

use actix_web::{
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    web, HttpRequest, HttpResponse, HttpResponseBuilder,
};
use chrono::{DateTime, Utc};
use custodian_auth::Claims;
use custodian_events::{outbox, AccessAction, AccessEvent, AccessOutcome, Streams};
use custodian_fhir::{FhirError, FHIR_JSON};
use custodian_policy::{ConsentChange, ConsentRule};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    domain::{audit::RequestContext, IfMatch, PatientRef, VersionId},
    error::ConsentError,
    routes::AppState,
    store::ConsentRow,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/Consent")
            .route(web::post().to(create::create))
            .route(web::get().to(search::search)),
    )
    .service(
        web::resource("/Consent/{id}")
            .route(web::get().to(read::read))
            .route(web::put().to(update::update))
            .route(web::delete().to(delete::delete)),
    )
    .service(web::resource("/Consent/{id}/_history").route(web::get().to(history::history)))
    .service(web::resource("/Consent/{id}/_history/{vid}").route(web::get().to(read::vread)));
}

/// The body as JSON: `application/json` or `application/fhir+json` (or no content type).
fn json_body(req: &HttpRequest, body: &[u8]) -> Result<Value, ConsentError> {
    if let Some(value) = req.headers().get(header::CONTENT_TYPE) {
        let raw = value.to_str().unwrap_or_default();
        let essence = raw
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && essence != "application/fhir+json" {
            return Err(FhirError::UnsupportedMediaType(format!(
                "content type {raw:?} is not supported; send application/fhir+json"
            ))
            .into());
        }
    }
    serde_json::from_slice(body)
        .map_err(|e| ConsentError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// A path id: anything that is not one of our uuids is simply not known.
fn parse_id(raw: &str) -> Result<Uuid, ConsentError> {
    Uuid::parse_str(raw).map_err(|_| ConsentError::not_found(raw))
}

/// The `If-Match` precondition, when the request has one.
fn if_match(req: &HttpRequest) -> Result<Option<IfMatch>, ConsentError> {
    req.headers()
        .get(header::IF_MATCH)
        .map(|v| IfMatch::parse(v.to_str().unwrap_or_default()).map_err(ConsentError::bad_request))
        .transpose()
}

fn check_precondition(
    precondition: Option<IfMatch>,
    current: VersionId,
) -> Result<(), ConsentError> {
    match precondition {
        Some(m) if !m.matches(current) => Err(FhirError::PreconditionFailed(format!(
            "If-Match names version {} but the current version is {current}",
            m.version()
        ))
        .into()),
        _ => Ok(()),
    }
}

fn row_patient(row: &ConsentRow) -> Result<PatientRef, ConsentError> {
    PatientRef::parse(&row.patient).map_err(ConsentError::Unexpected)
}

fn row_version(version: i64) -> Result<VersionId, ConsentError> {
    VersionId::new(version)
        .ok_or_else(|| ConsentError::Unexpected(format!("stored version {version} is invalid")))
}

/// `Last-Modified` spelling (RFC 7231 IMF-fixdate).
fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn with_version_headers(
    builder: &mut HttpResponseBuilder,
    version: VersionId,
    last_updated: DateTime<Utc>,
) {
    builder
        .insert_header((header::ETAG, version.etag()))
        .insert_header((header::LAST_MODIFIED, http_date(last_updated)));
}

/// A resource answer with `ETag`, `Last-Modified` and (for writes) `Location`.
fn resource_response(
    status: StatusCode,
    id: Uuid,
    version: VersionId,
    last_updated: DateTime<Utc>,
    resource: &Value,
    location: Option<&str>,
) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.content_type(FHIR_JSON);
    with_version_headers(&mut builder, version, last_updated);
    if let Some(base) = location {
        let url = format!("{base}/fhir/Consent/{id}/_history/{version}");
        if let Ok(value) = HeaderValue::from_str(&url) {
            builder.insert_header((header::LOCATION, value));
        }
    }
    builder.body(resource.to_string())
}

/// The `ConsentChange` a write publishes on the consent stream.
fn change_event(
    streams: &Streams,
    row: &ConsentRow,
    rules: Vec<ConsentRule>,
) -> Result<(String, Uuid, Value), ConsentError> {
    let change = ConsentChange {
        consent: format!("Consent/{}", row.id),
        patient: row.patient.clone(),
        version: row.version_id,
        rules,
    };
    let payload =
        serde_json::to_value(&change).map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    Ok((streams.consent(), Uuid::new_v4(), payload))
}

fn access_event(
    streams: &Streams,
    event: &AccessEvent,
) -> Result<(String, Uuid, Value), ConsentError> {
    let payload =
        serde_json::to_value(event).map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    Ok((streams.access(), event.id, payload))
}

/// Writes an access event (reads, searches, refusals) before the answer goes out.
async fn record(state: &AppState, event: &AccessEvent) -> Result<(), ConsentError> {
    let (stream, id, payload) = access_event(&state.streams, event)?;
    let mut conn = state.pool.get().await?;
    outbox::enqueue(&mut conn, &stream, id, &payload).await?;
    state.relay.wake();
    Ok(())
}

/// Records a refusal and hands back the error to answer with.
async fn refuse(
    state: &AppState,
    ctx: &RequestContext,
    claims: &Claims,
    patient: Option<&PatientRef>,
    action: AccessAction,
    error: ConsentError,
) -> ConsentError {
    let event = ctx.event(claims, patient, action, 0, AccessOutcome::Deny);
    if let Err(e) = record(state, &event).await {
        tracing::error!(error = %e, "could not record a refused access");
    }
    error
}
