//! `GET /fhir/Patient/{id}/$everything`: every current resource in the patient's compartment
//! that the caller may see (decided per resource type, since consents can name types), as a
//! `searchset` Bundle. Events: one per resource type returned, one deny event per type withheld.

use std::collections::BTreeMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::AccessOutcome;
use custodian_fhir::FhirError;

use super::{
    bundle::{raw, Bundle, Entry, Link, Search},
    http,
};
use crate::{
    access::{Caller, EventDraft, Interaction, Verdict},
    error::RecordsError,
    search::MAX_MATCHES,
    state::AppState,
    store,
};

/// Everything in one patient's record.
#[utoipa::path(
    get,
    path = "/fhir/Patient/{id}/$everything",
    tag = "fhir",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "searchset Bundle of what the caller may see"),
        (status = 403, description = "Not permitted to read the Patient"),
        (status = 404, description = "Unknown patient"),
        (status = 410, description = "Deleted patient")
    ),
    security(("bearer" = []))
)]
pub async fn everything(
    req: HttpRequest,
    path: web::Path<String>,
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle(&req, &path, auth, &state).await;
    super::observe(&state, "everything", "Patient", &result);
    result
}

async fn handle(
    req: &HttpRequest,
    raw_id: &str,
    auth: Authenticated,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let id = http::parse_id(raw_id)?;
    let caller = Caller::from_request(req, auth.0)?;
    let mut conn = state.connection().await?;
    let (current, _) = super::read::authorise_existing(
        state,
        &mut conn,
        &caller,
        "Patient",
        id.as_str(),
        Interaction::Search,
    )
    .await?;
    if current.deleted {
        return Err(FhirError::Gone(format!("Patient/{id} was deleted")).into());
    }
    let patient = format!("Patient/{id}");
    let rows = store::compartment(&mut conn, &patient, MAX_MATCHES).await?;
    let mut by_type: BTreeMap<String, Vec<(String, i64, Option<String>)>> = BTreeMap::new();
    for (t, rid, version, confidentiality) in rows {
        by_type
            .entry(t)
            .or_default()
            .push((rid, version, confidentiality));
    }
    let mut entries = Vec::new();
    let mut events = Vec::new();
    for (t, rows) in by_type {
        let verdict = state
            .access
            .decide(&caller, Some(&patient), &t, Interaction::Search)?;
        let confidentiality = rows
            .iter()
            .filter_map(|r| r.2.clone())
            .max_by_key(|c| "ULMNRV".find(c.as_str()));
        let draft = |count, outcome, break_glass| {
            EventDraft {
                caller: &caller,
                patient: Some(patient.clone()),
                interaction: Interaction::Search,
                resource_type: &t,
                count,
                outcome,
                break_glass,
                confidentiality: confidentiality.clone(),
            }
            .build()
        };
        match verdict {
            Verdict::Deny(_) => events.push(draft(0, AccessOutcome::Deny, false)),
            Verdict::Permit { break_glass } => {
                let wanted: Vec<(String, i64)> =
                    rows.iter().map(|(rid, v, _)| (rid.clone(), *v)).collect();
                let mut bodies =
                    store::current_bodies(&mut conn, &state.cipher, &t, &wanted).await?;
                let mut count = 0;
                for (rid, _, _) in &rows {
                    if let Some(json) = bodies.remove(rid) {
                        count += 1;
                        entries.push(Entry {
                            full_url: state.full_url(&t, rid),
                            resource: raw(json),
                            search: Some(Search { mode: "match" }),
                            request: None,
                            response: None,
                        });
                    }
                }
                events.push(draft(count, AccessOutcome::Permit, break_glass));
            }
        }
    }
    state.record(&mut conn, &events).await?;
    let link = vec![Link {
        relation: "self",
        url: format!("{}/$everything", state.full_url("Patient", id.as_str())),
    }];
    let bundle = Bundle::new("searchset", entries.len(), link, entries);
    let body = serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
}
