//! `GET /fhir/{type}/{id}/_history`: every version, newest first (Bundle type `history`).

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::AccessOutcome;

use super::{
    bundle::{raw, Bundle, Entry, Link, Request, Response},
    http,
};
use crate::{
    access::{Caller, EventDraft, Interaction},
    domain::resource::format_instant,
    error::RecordsError,
    state::AppState,
    store,
};

/// The history of one resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}/_history",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "Bundle of type history"),
        (status = 403, description = "Not permitted"),
        (status = 404, description = "Unknown resource")
    ),
    security(("bearer" = []))
)]
pub async fn history(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = handle(&req, &raw_type, &raw_id, auth, &state).await;
    super::observe(&state, "history", &raw_type, &result);
    result
}

async fn handle(
    req: &HttpRequest,
    raw_type: &str,
    raw_id: &str,
    auth: Authenticated,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    let caller = Caller::from_request(req, auth.0)?;
    let mut conn = state.connection().await?;
    let (current, break_glass) = super::read::authorise_existing(
        state,
        &mut conn,
        &caller,
        resource_type.as_str(),
        id.as_str(),
        Interaction::Read,
    )
    .await?;
    let versions = store::history(
        &mut conn,
        &state.cipher,
        resource_type.as_str(),
        id.as_str(),
    )
    .await?;
    let full_url = state.full_url(resource_type.as_str(), id.as_str());
    let count = versions.iter().filter(|v| v.json.is_some()).count();
    let entries: Vec<Entry> = versions
        .into_iter()
        .map(|v| {
            let (method, status, url) = match (&v.json, v.version) {
                (None, _) => ("DELETE", "204", format!("{resource_type}/{id}")),
                (Some(_), 1) => ("POST", "201", resource_type.to_string()),
                (Some(_), _) => ("PUT", "200", format!("{resource_type}/{id}")),
            };
            Entry {
                full_url: full_url.clone(),
                resource: v.json.and_then(raw),
                search: None,
                request: Some(Request { method, url }),
                response: Some(Response {
                    status: status.to_string(),
                    etag: http::etag(v.version),
                    last_modified: format_instant(v.last_updated),
                }),
            }
        })
        .collect();
    let event = EventDraft {
        caller: &caller,
        patient: current.patient_ref.clone(),
        interaction: Interaction::Read,
        resource_type: resource_type.as_str(),
        count: count as u32,
        outcome: AccessOutcome::Permit,
        break_glass,
        confidentiality: current.confidentiality.clone(),
    }
    .build();
    state.record(&mut conn, &[event]).await?;
    let link = vec![Link {
        relation: "self",
        url: format!("{full_url}/_history"),
    }];
    let bundle = Bundle::new("history", entries.len(), link, entries);
    let body = serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
}
