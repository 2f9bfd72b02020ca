//! `GET /fhir/{type}/{id}/_history`: every version the caller may see, newest first (Bundle
//! type `history`). Each version is decided on its own compartment and facts: an id re-used
//! for another patient's data never shows the earlier patient's versions to the later one's
//! readers. None visible: the same 404 as an unknown id.

use std::collections::BTreeMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{absent_event, Caller, Decision, Interaction, PatientRef};

use super::{
    bundle::{raw, Bundle, Entry, Link, Request, Response},
    http,
    read::version_subject,
};
use crate::{
    access::{hidden, most_restrictive, not_known},
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
        (status = 200, description = "Bundle of type history: the versions the caller may see"),
        (status = 404, description = "Unknown resource, or none of its versions visible")
    ),
    security(("bearer" = []))
)]
pub async fn history(
    _req: HttpRequest,
    path: web::Path<(String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = handle(&raw_type, &raw_id, &caller, &state).await;
    super::observe(&state, "history", &raw_type, &result);
    result
}

async fn handle(
    raw_type: &str,
    raw_id: &str,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    let (rt, id) = (resource_type.as_str(), id.as_str());
    let mut conn = state.connection().await?;
    let Some(current) = store::current(&mut conn, rt, id, false).await? else {
        state
            .record(&mut conn, &[absent_event(caller, Interaction::Read, rt)])
            .await?;
        return Err(not_known(rt, id).into());
    };
    let versions = store::history(&mut conn, &state.cipher, rt, id).await?;
    let full_url = state.full_url(rt, id);
    let mut entries = Vec::new();
    // One event per compartment the versions belong to.
    let mut seen: BTreeMap<Option<PatientRef>, (Decision, u32, Option<String>)> = BTreeMap::new();
    let mut last_denial = None;
    for v in versions {
        let subject = version_subject(state, &mut conn, rt, id, &current, &v).await?;
        let decision = state
            .kernel
            .decide(caller, Interaction::Read, &subject.target())?;
        let slot = seen
            .entry(subject.patient.clone())
            .or_insert_with(|| (decision.clone(), 0, None));
        if !decision.permitted() {
            // A version this caller may not see is left out, and the compartment's denial is
            // what the ledger records for it.
            if slot.0.permitted() {
                slot.0 = decision.clone();
            }
            last_denial = Some(decision);
            continue;
        }
        if slot.0.permitted() {
            slot.1 += u32::from(v.json.is_some());
            slot.2 = most_restrictive(slot.2.take(), subject.confidentiality.as_deref());
        }
        let (method, status, url) = match (&v.json, v.version) {
            (None, _) => ("DELETE", "204", format!("{rt}/{id}")),
            (Some(_), 1) => ("POST", "201", rt.to_string()),
            (Some(_), _) => ("PUT", "200", format!("{rt}/{id}")),
        };
        entries.push(Entry {
            full_url: full_url.clone(),
            resource: v.json.and_then(raw),
            search: None,
            request: Some(Request { method, url }),
            response: Some(Response {
                status: status.to_string(),
                etag: http::etag(v.version),
                last_modified: format_instant(v.last_updated),
            }),
        });
    }
    let events: Vec<_> = seen
        .iter()
        .map(|(patient, (decision, count, confidentiality))| {
            decision.event(
                caller,
                Interaction::Read,
                custodian_access::Touched::new(rt, patient.as_ref())
                    .count(*count)
                    .confidentiality(confidentiality.as_deref()),
            )
        })
        .collect();
    state.record(&mut conn, &events).await?;
    if entries.is_empty() {
        return Err(match last_denial {
            Some(decision) => hidden(state, &decision, rt, id),
            None => not_known(rt, id),
        }
        .into());
    }
    let link = vec![Link {
        relation: "self",
        url: format!("{full_url}/_history"),
    }];
    let bundle = Bundle::new("history", entries.len(), link, entries);
    let body = serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
}
