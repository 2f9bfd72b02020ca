//! The FHIR Consent interactions: create, read, vread, update, delete, search. The same handlers
//! serve `/fhir/Consent` and `/consent/Consent`.

mod conditional;
mod create;
mod delete;
mod history;
mod patch;
mod read;
mod search;
mod update;
mod validate;

pub use conditional::*;
pub use create::*;
pub use delete::*;
pub use history::*;
pub use patch::*;
pub use read::*;
pub use search::*;
pub use update::*;
pub use validate::*;

use actix_web::{
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    web, HttpRequest, HttpResponse,
};
use chrono::{DateTime, Utc};
use custodian_access::{absent_event, Caller, Decision, Interaction, Touched};
use custodian_events::{AccessEvent, Streams};
use custodian_fhir::{http, FhirError};
use custodian_policy::{ConsentChange, ParsedConsent};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    domain::{access::CONSENT, PatientRef, VersionId},
    error::ConsentError,
    routes::AppState,
    store::ConsentRow,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Methods a path does not serve: 405 with an OperationOutcome.
    let resource = |path: &str| {
        web::resource(path).default_service(web::to(custodian_fhir::http::method_not_allowed))
    };
    cfg.service(
        resource("/Consent")
            .route(web::post().to(create::create))
            .route(web::get().to(search::search))
            .route(web::put().to(conditional::conditional_update))
            .route(web::delete().to(conditional::conditional_delete)),
    )
    .service(resource("/Consent/_search").route(web::post().to(search::search_post)))
    .service(resource("/Consent/_history").route(web::get().to(history::type_history)))
    .service(resource("/Consent/$validate").route(web::post().to(validate::validate)))
    .service(
        resource("/Consent/{id}")
            .route(web::get().to(read::read))
            .route(web::put().to(update::update))
            .route(web::patch().to(patch::patch))
            .route(web::delete().to(delete::delete)),
    )
    .service(resource("/Consent/{id}/_history").route(web::get().to(history::history)))
    .service(resource("/Consent/{id}/_history/{vid}").route(web::get().to(read::vread)));
}

/// The caller, also known by the containers it is a member of (PractitionerRole, CareTeam,
/// Group), so a consent naming its care team is its to see. Before memberships are loaded it
/// is known by its own references only: it sees less, never more.
fn known(state: &AppState, caller: Caller) -> Caller {
    let containers = state
        .memberships
        .view(caller.actor_references(), Utc::now())
        .actors()
        .to_vec();
    caller.with_memberships(containers)
}

/// The body as JSON: FHIR JSON by the FHIR REST core's media rules.
fn json_body(req: &HttpRequest, body: &[u8]) -> Result<Value, ConsentError> {
    http::require_json(req)?;
    serde_json::from_slice(body)
        .map_err(|e| ConsentError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// A path id: anything that is not one of our uuids is simply not known.
fn parse_id(raw: &str) -> Result<Uuid, ConsentError> {
    Uuid::parse_str(raw).map_err(|_| ConsentError::not_found(raw))
}

/// The `If-Match` precondition, when the request has one.
fn if_match(req: &HttpRequest) -> Result<Option<VersionId>, ConsentError> {
    Ok(http::if_match(req)?.and_then(VersionId::new))
}

fn check_precondition(
    precondition: Option<VersionId>,
    current: VersionId,
) -> Result<(), ConsentError> {
    match precondition {
        Some(wanted) if wanted != current => Err(FhirError::PreconditionFailed(format!(
            "If-Match names version {wanted} but the current version is {current}"
        ))
        .into()),
        _ => Ok(()),
    }
}

fn row_patient(row: &ConsentRow) -> Result<PatientRef, ConsentError> {
    PatientRef::parse(&row.patient).map_err(|e| ConsentError::Unexpected(e.to_string()))
}

fn row_version(version: i64) -> Result<VersionId, ConsentError> {
    VersionId::new(version)
        .ok_or_else(|| ConsentError::Unexpected(format!("stored version {version} is invalid")))
}

/// A resource answer with `ETag`, `Last-Modified` and (for writes, with `location`: the base
/// URL) `Location` and the body `Prefer: return` asks for.
fn resource_response(
    status: StatusCode,
    id: Uuid,
    version: VersionId,
    last_updated: DateTime<Utc>,
    resource: &Value,
    location: Option<(&str, http::Return)>,
) -> HttpResponse {
    let mut builder = http::versioned(status, version.get(), last_updated);
    let Some((base, prefer)) = location else {
        return builder.body(resource.to_string());
    };
    let url = format!("{base}/fhir/Consent/{id}/_history/{version}");
    if let Ok(value) = HeaderValue::from_str(&url) {
        builder.insert_header((header::LOCATION, value));
    }
    http::write_body(
        builder,
        prefer,
        resource.to_string(),
        "the consent was stored",
    )
}

/// The `ConsentChange` a write publishes on the consent stream: the typed consent while it is
/// active, `None` once it is not (revoked, rejected, deleted ...).
fn change_event(
    streams: &Streams,
    row: &ConsentRow,
    consent_policy: Option<ParsedConsent>,
) -> Result<(String, Uuid, Value), ConsentError> {
    let change = ConsentChange {
        consent: format!("Consent/{}", row.id),
        patient: row.patient.clone(),
        version: row.version_id,
        consent_policy,
    };
    let payload =
        serde_json::to_value(&change).map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    Ok((streams.consent(), Uuid::new_v4(), payload))
}

/// Writes access events (reads, searches, refusals) through the outbox before the answer goes
/// out.
async fn record(state: &AppState, events: &[AccessEvent]) -> Result<(), ConsentError> {
    let mut conn = state.pool.get().await?;
    state.log.record(&mut conn, events).await?;
    Ok(())
}

/// Records a denial of `interaction` on `patient`'s consent and hands back the error to
/// answer with.
pub(crate) async fn refuse(
    state: &AppState,
    caller: &Caller,
    interaction: Interaction,
    decision: &Decision,
    patient: Option<&PatientRef>,
    error: ConsentError,
) -> ConsentError {
    let event = decision.event(caller, interaction, Touched::new(CONSENT, patient));
    if let Err(e) = record(state, &[event]).await {
        tracing::error!(error = %e, "could not record a refused access");
    }
    error
}

/// Records an attempt on a consent that does not exist and hands back the 404.
async fn absent(
    state: &AppState,
    caller: &Caller,
    interaction: Interaction,
    error: ConsentError,
) -> ConsentError {
    let event = absent_event(caller, interaction, CONSENT);
    if let Err(e) = record(state, &[event]).await {
        tracing::error!(error = %e, "could not record an access to an unknown consent");
    }
    error
}

/// The current row of the consent a request names by id, and its patient; an id that is not
/// one of ours, or not known, is the (recorded) 404.
async fn existing(
    state: &AppState,
    caller: &Caller,
    interaction: Interaction,
    raw_id: &str,
) -> Result<(Uuid, ConsentRow, PatientRef), ConsentError> {
    let Ok(id) = parse_id(raw_id) else {
        return Err(absent(state, caller, interaction, ConsentError::not_found(raw_id)).await);
    };
    let mut conn = state.pool.get().await?;
    let row = crate::store::find(&mut conn, id).await?;
    drop(conn);
    let Some(row) = row else {
        return Err(absent(state, caller, interaction, ConsentError::not_found(raw_id)).await);
    };
    let patient = row_patient(&row)?;
    Ok((id, row, patient))
}
