//! `GET /fhir/{type}/{id}` (read) and `GET /fhir/{type}/{id}/_history/{vid}` (vread).

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::AccessOutcome;
use custodian_fhir::FhirError;

use super::http;
use crate::{
    access::{Caller, EventDraft, Interaction, Verdict},
    domain::VersionId,
    error::RecordsError,
    state::AppState,
    store::{self, Current},
};

/// Read the current version of a resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "The resource; ETag and Last-Modified set"),
        (status = 403, description = "Not permitted (OperationOutcome)"),
        (status = 404, description = "Unknown resource"),
        (status = 410, description = "Deleted")
    ),
    security(("bearer" = []))
)]
pub async fn read(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = handle(&req, &raw_type, &raw_id, None, auth, &state).await;
    super::observe(&state, "read", &raw_type, &result);
    result
}

/// Read one version of a resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}/_history/{vid}",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path), ("vid" = String, Path)),
    responses(
        (status = 200, description = "That version"),
        (status = 403, description = "Not permitted"),
        (status = 404, description = "Unknown resource or version"),
        (status = 410, description = "That version is a deletion")
    ),
    security(("bearer" = []))
)]
pub async fn vread(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id, raw_version) = path.into_inner();
    let result = match VersionId::parse(&raw_version) {
        Ok(v) => handle(&req, &raw_type, &raw_id, Some(v), auth, &state).await,
        Err(e) => Err(FhirError::NotFound(e.to_string()).into()),
    };
    super::observe(&state, "vread", &raw_type, &result);
    result
}

/// Decides access to an existing resource, writing the event for a denial or an absence.
/// Returns the current row when the caller may read it.
pub async fn authorise_existing(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    interaction: Interaction,
) -> Result<(Current, bool), RecordsError> {
    let draft = |patient: Option<String>, outcome, confidentiality: Option<String>| {
        EventDraft {
            caller,
            patient,
            interaction,
            resource_type,
            count: 0,
            outcome,
            break_glass: false,
            confidentiality,
        }
        .build()
    };
    let Some(current) = store::current(conn, resource_type, id, false).await? else {
        state
            .record(conn, &[draft(None, AccessOutcome::Error, None)])
            .await?;
        return Err(FhirError::NotFound(format!("{resource_type}/{id} is not known")).into());
    };
    match state.access.decide(
        caller,
        current.patient_ref.as_deref(),
        resource_type,
        interaction,
    )? {
        Verdict::Deny(reason) => {
            state
                .record(
                    conn,
                    &[draft(
                        current.patient_ref.clone(),
                        AccessOutcome::Deny,
                        current.confidentiality.clone(),
                    )],
                )
                .await?;
            Err(FhirError::Forbidden(reason).into())
        }
        Verdict::Permit { break_glass } => Ok((current, break_glass)),
    }
}

async fn handle(
    req: &HttpRequest,
    raw_type: &str,
    raw_id: &str,
    version: Option<VersionId>,
    auth: Authenticated,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    let caller = Caller::from_request(req, auth.0)?;
    let mut conn = state.connection().await?;
    let (current, break_glass) = authorise_existing(
        state,
        &mut conn,
        &caller,
        resource_type.as_str(),
        id.as_str(),
        Interaction::Read,
    )
    .await?;
    let wanted = version.map(|v| v.get()).unwrap_or(current.version);
    let stored = match store::version(
        &mut conn,
        &state.cipher,
        resource_type.as_str(),
        id.as_str(),
        wanted,
    )
    .await
    {
        Ok(stored) => stored,
        Err(e) => {
            // The access was permitted but failed (e.g. a row that does not decrypt): say so.
            let event = EventDraft {
                caller: &caller,
                patient: current.patient_ref.clone(),
                interaction: Interaction::Read,
                resource_type: resource_type.as_str(),
                count: 0,
                outcome: AccessOutcome::Error,
                break_glass,
                confidentiality: current.confidentiality.clone(),
            }
            .build();
            state.record(&mut conn, &[event]).await?;
            return Err(e);
        }
    };
    let count = stored
        .as_ref()
        .and_then(|s| s.json.as_ref())
        .map(|_| 1)
        .unwrap_or(0);
    let event = EventDraft {
        caller: &caller,
        patient: current.patient_ref.clone(),
        interaction: Interaction::Read,
        resource_type: resource_type.as_str(),
        count,
        outcome: if count == 1 {
            AccessOutcome::Permit
        } else {
            AccessOutcome::Error
        },
        break_glass,
        confidentiality: current.confidentiality.clone(),
    }
    .build();
    state.record(&mut conn, &[event]).await?;
    match stored {
        None => {
            Err(FhirError::NotFound(format!("{resource_type}/{id} has no version {wanted}")).into())
        }
        Some(v) => match v.json {
            None => Err(FhirError::Gone(format!("{resource_type}/{id} was deleted")).into()),
            Some(json) => Ok(http::versioned(StatusCode::OK, v.version, v.last_updated).body(json)),
        },
    }
}
