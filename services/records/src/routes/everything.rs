//! `GET /fhir/Patient/{id}/$everything`: the patient's compartment, each resource decided on
//! its own facts (Bundle `searchset`). A patient the caller may not see answers like an unknown
//! one.

use std::collections::BTreeMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{absent_event, Caller, Interaction};
use custodian_fhir::FhirError;

use super::{
    bundle::{Bundle, Link},
    http,
    read::{decide_current, version_subject},
    search::{decide_each, Tally},
};
use crate::{
    access::{hidden, not_known},
    error::RecordsError,
    state::AppState,
    store::{self, Current},
};

/// Everything in a patient's record that the caller may see.
#[utoipa::path(
    get,
    path = "/fhir/Patient/{id}/$everything",
    tag = "fhir",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "searchset Bundle of what the caller may see"),
        (status = 404, description = "Unknown patient, or one the caller may not see"),
        (status = 410, description = "Deleted patient")
    ),
    security(("bearer" = []))
)]
pub async fn everything(
    _req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle(&path, caller, &state).await;
    super::observe(&state, "everything", "Patient", &result);
    result
}

async fn handle(
    raw_id: &str,
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let id = http::parse_id(raw_id)?;
    let mut conn = state.connection().await?;
    let Some(current) = store::current(&mut conn, "Patient", id.as_str(), false).await? else {
        state
            .record(
                &mut conn,
                &[absent_event(&caller, Interaction::Search, "Patient")],
            )
            .await?;
        return Err(not_known("Patient", id.as_str()).into());
    };
    // The Patient is decided on her own facts, as a read of her would be (a consent of hers
    // may depend on them); a deleted one at type level.
    let stored = store::version(
        &mut conn,
        &state.cipher,
        "Patient",
        id.as_str(),
        current.version,
    )
    .await?;
    let (subject, decision) = match stored {
        Some(version) if version.json.is_some() => {
            let subject =
                version_subject(state, &mut conn, "Patient", id.as_str(), &current, &version)
                    .await?;
            let decision = state
                .kernel
                .decide(&caller, Interaction::Search, &subject.target())?;
            (subject, decision)
        }
        _ => {
            decide_current(
                state,
                &mut conn,
                &caller,
                "Patient",
                &current,
                Interaction::Search,
            )
            .await?
        }
    };
    if !decision.permitted() {
        let event = decision.event(&caller, Interaction::Search, subject.touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(hidden(state, &decision, "Patient", id.as_str()).into());
    }
    if current.deleted {
        let event = decision.failed_event(&caller, Interaction::Search, subject.touched(0));
        state.record(&mut conn, &[event]).await?;
        return Err(FhirError::Gone(format!("Patient/{id} was deleted")).into());
    }
    let patient = format!("Patient/{id}");
    let mut by_type: BTreeMap<String, Vec<(String, Current)>> = BTreeMap::new();
    for (t, rid, row) in store::compartment(&mut conn, &patient).await? {
        by_type.entry(t).or_default().push((rid, row));
    }
    let mut entries = Vec::new();
    let mut tally = Tally::default();
    let mut budget = usize::MAX;
    for (t, rows) in by_type {
        decide_each(
            state,
            &mut conn,
            &caller,
            &t,
            rows,
            "match",
            &mut budget,
            &mut tally,
            &mut entries,
        )
        .await?;
    }
    state.record(&mut conn, &tally.events(&caller)).await?;
    let link = vec![Link {
        relation: "self",
        url: format!("{}/$everything", state.full_url("Patient", id.as_str())),
    }];
    let bundle = Bundle::new("searchset", entries.len(), link, entries);
    let body = serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
}
