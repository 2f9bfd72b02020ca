//! `GET /fhir/Consent?patient=&status=`

use actix_web::{web, HttpResponse};
use custodian_access::{Caller, Decision, Interaction, Touched};
use custodian_fhir::FHIR_JSON;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{known, record, refuse};
use crate::{
    domain::{
        access::{self, CONSENT},
        resource::{format_instant, now_millis, shown, STATUSES},
        PatientRef,
    },
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow, SearchFilter},
};

const DEFAULT_COUNT: i64 = 50;
const MAX_COUNT: i64 = 500;

/// A parsed search: the parameters this server supports, nothing else.
#[derive(Debug, Default)]
struct SearchParams {
    patient: Option<PatientRef>,
    statuses: Vec<String>,
    count: Option<i64>,
    offset: Option<i64>,
}

impl SearchParams {
    fn parse(pairs: &[(String, String)]) -> Result<Self, ConsentError> {
        let mut params = SearchParams::default();
        for (name, value) in pairs {
            match name.as_str() {
                "patient" | "patient:Patient" => {
                    params.patient = Some(
                        PatientRef::parse_lenient(value)
                            .map_err(|e| ConsentError::bad_request(e.to_string()))?,
                    );
                }
                "status" => {
                    for status in value.split(',').map(str::trim) {
                        if !STATUSES.contains(&status) {
                            return Err(ConsentError::bad_request(format!("status {status:?} is not a Consent status")));
                        }
                        params.statuses.push(status.to_string());
                    }
                }
                "_count" => params.count = Some(Self::number(name, value)?),
                "_offset" => params.offset = Some(Self::number(name, value)?),
                // Only JSON is served; the format parameter changes nothing.
                "_format" => {}
                other => {
                    return Err(ConsentError::bad_request(format!(
                        "search parameter {other:?} is not supported (patient, status, _count, _offset)"
                    )))
                }
            }
        }
        Ok(params)
    }

    fn number(name: &str, value: &str) -> Result<i64, ConsentError> {
        value
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ConsentError::bad_request(format!("{name} must be a non-negative integer"))
            })
    }
}

/// The query string of a page of this search.
fn query_string(
    patient: Option<&PatientRef>,
    statuses: &[String],
    count: i64,
    offset: i64,
) -> String {
    let mut parts = Vec::new();
    if let Some(p) = patient {
        parts.push(format!("patient={p}"));
    }
    if !statuses.is_empty() {
        parts.push(format!("status={}", statuses.join(",")));
    }
    parts.push(format!("_count={count}"));
    if offset > 0 {
        parts.push(format!("_offset={offset}"));
    }
    parts.join("&")
}

/// One access event per patient whose consents the page returned (or one naming the patient
/// asked for, or none, when it returned nothing).
fn events(
    caller: &Caller,
    decision: &Decision,
    requested: Option<&PatientRef>,
    rows: &[ConsentRow],
) -> Vec<custodian_events::AccessEvent> {
    let interaction = Interaction::Search;
    let mut patients: Vec<&str> = rows.iter().map(|r| r.patient.as_str()).collect();
    patients.sort_unstable();
    patients.dedup();
    let mut events = Vec::with_capacity(patients.len().max(1));
    for patient in patients {
        let Ok(reference) = PatientRef::parse(patient) else {
            continue;
        };
        let theirs: Vec<String> = rows
            .iter()
            .filter(|r| r.patient == patient)
            .map(|r| format!("Consent/{}", r.id))
            .collect();
        let count = u32::try_from(theirs.len()).unwrap_or(u32::MAX);
        let mut decided = decision.clone();
        decided.consents = theirs;
        events.push(decided.event(
            caller,
            interaction,
            Touched::new(CONSENT, Some(&reference)).count(count),
        ));
    }
    if events.is_empty() {
        events.push(decision.event(caller, interaction, Touched::new(CONSENT, requested)));
    }
    events
}

/// Consents matching the search that the caller may see, as a `searchset` Bundle: a patient
/// finds her own, a practitioner or service those whose provisions name it, administrators and
/// auditors none (they see consents through the ledger). What may be seen is part of the
/// query, so `total` and paging count only that.
#[utoipa::path(
    get,
    path = "/fhir/Consent",
    tag = "Consent",
    params(
        ("patient" = Option<String>, Query, description = "Patient/<id> or <id>"),
        ("status" = Option<String>, Query, description = "Consent status; several separated by commas"),
        ("_count" = Option<i64>, Query, description = "Page size (default 50, at most 500)"),
        ("_offset" = Option<i64>, Query, description = "Matches to skip"),
    ),
    responses(
        (status = 200, description = "A searchset Bundle of what the caller may see", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Unsupported or malformed parameter", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "A patient searching another patient's consents", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let interaction = Interaction::Search;
    let params = SearchParams::parse(&query)?;
    let requested = params.patient.as_ref();
    let (visible, decision) = match access::search(&caller, requested) {
        Ok(found) => found,
        Err(refused) => {
            let error = ConsentError::forbidden(refused.explanation.clone());
            return Err(refuse(&state, &caller, interaction, &refused, requested, error).await);
        }
    };
    let count = params.count.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
    let offset = params.offset.unwrap_or(0);
    let filter = SearchFilter {
        visible,
        patient: requested.map(|p| p.to_string()),
        statuses: params.statuses.clone(),
        limit: count,
        offset,
    };
    let mut conn = state.pool.get().await?;
    let (rows, total) = store::search(&mut conn, &filter).await?;
    drop(conn);

    let base = &state.public_url;
    let mut links = vec![json!({
        "relation": "self",
        "url": format!("{base}/fhir/Consent?{}", query_string(requested, &params.statuses, count, offset)),
    })];
    if count > 0 && offset + count < total {
        links.push(json!({
            "relation": "next",
            "url": format!("{base}/fhir/Consent?{}", query_string(requested, &params.statuses, count, offset + count)),
        }));
    }
    let view = access::view(&caller);
    let entries: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "fullUrl": format!("{base}/fhir/Consent/{}", row.id),
                "resource": shown(&view, &row.resource),
                "search": {"mode": "match"},
            })
        })
        .collect();
    record(&state, &events(&caller, &decision, requested, &rows)).await?;
    let bundle = json!({
        "resourceType": "Bundle",
        "id": Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": format_instant(now_millis())},
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    });
    Ok(HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .body(bundle.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_supported_parameters() {
        let p = SearchParams::parse(&pairs(&[
            ("patient", "alice"),
            ("status", "active,inactive"),
            ("_count", "5"),
        ]))
        .unwrap();
        assert_eq!(p.patient.unwrap().as_str(), "Patient/alice");
        assert_eq!(p.statuses, vec!["active", "inactive"]);
        assert_eq!(p.count, Some(5));
    }

    #[test]
    fn rejects_unknown_or_malformed_parameters() {
        assert!(SearchParams::parse(&pairs(&[("colour", "blue")])).is_err());
        assert!(SearchParams::parse(&pairs(&[("status", "sleepy")])).is_err());
        assert!(SearchParams::parse(&pairs(&[("_count", "-1")])).is_err());
        assert!(SearchParams::parse(&pairs(&[("patient", "Organization/h1")])).is_err());
    }
}
