//! `GET /fhir/Consent?patient=&status=`

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Decision, Interaction, Touched};
use custodian_fhir::{
    bundle::{page_size, raw, Bundle, Entry, Ignored, Link, Search, DEFAULT_COUNT},
    http::{self, Handling, Prefer},
};

use super::{known, record, refuse};
use crate::{
    domain::{
        access::{self, CONSENT},
        resource::{shown, STATUSES},
        PatientRef,
    },
    error::ConsentError,
    routes::AppState,
    store::{self, ConsentRow, SearchFilter},
};

/// A parsed search: the parameters this server supports, and those it ignored (lenient
/// handling) or refused (strict).
#[derive(Debug, Default)]
struct SearchParams {
    patient: Option<PatientRef>,
    statuses: Vec<String>,
    count: Option<usize>,
    offset: Option<i64>,
    ignored: Vec<Ignored>,
}

impl SearchParams {
    fn parse(pairs: &[(String, String)], handling: Handling) -> Result<Self, ConsentError> {
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
                "_count" => params.count = Some(page_size(value)?),
                "_offset" => params.offset = Some(Self::number(name, value)?),
                // Negotiated before the route (only JSON is served); no effect on the matches.
                "_format" | "_pretty" => {}
                other => match handling {
                    Handling::Strict => {
                        return Err(ConsentError::bad_request(format!(
                            "search parameter {other:?} is not supported (patient, status, _count, _offset)"
                        )))
                    }
                    Handling::Lenient => params.ignored.push(Ignored {
                        name: other.to_string(),
                        reason: "not a search parameter of Consent here (patient, status, _count, _offset)".into(),
                    }),
                },
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
    count: usize,
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
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let interaction = Interaction::Search;
    let params = SearchParams::parse(&query, Prefer::of(&req).handling)?;
    let requested = params.patient.as_ref();
    let (visible, decision) = match access::search(&caller, requested) {
        Ok(found) => found,
        Err(refused) => {
            let error = ConsentError::forbidden(refused.explanation.clone());
            return Err(refuse(&state, &caller, interaction, &refused, requested, error).await);
        }
    };
    let count = params.count.unwrap_or(DEFAULT_COUNT);
    let offset = params.offset.unwrap_or(0);
    let filter = SearchFilter {
        visible,
        patient: requested.map(|p| p.to_string()),
        statuses: params.statuses.clone(),
        limit: i64::try_from(count).unwrap_or(i64::MAX),
        offset,
    };
    let mut conn = state.pool.get().await?;
    let (rows, total) = store::search(&mut conn, &filter).await?;
    drop(conn);

    let base = &state.public_url;
    let page = |offset: i64| {
        format!(
            "{base}/fhir/Consent?{}",
            query_string(requested, &params.statuses, count, offset)
        )
    };
    let mut links = vec![Link {
        relation: "self",
        url: page(offset),
    }];
    let end = offset.saturating_add(i64::try_from(count).unwrap_or(i64::MAX));
    if count > 0 && end < total {
        links.push(Link {
            relation: "next",
            url: page(end),
        });
    }
    let view = access::view(&caller);
    let mut entries: Vec<Entry> = rows
        .iter()
        .map(|row| Entry {
            full_url: format!("{base}/fhir/Consent/{}", row.id),
            resource: raw(shown(&view, &row.resource).to_string()),
            search: Some(Search { mode: "match" }),
            request: None,
            response: None,
        })
        .collect();
    entries.extend(Entry::ignored_parameters(&params.ignored));
    record(&state, &events(&caller, &decision, requested, &rows)).await?;
    let total = usize::try_from(total).unwrap_or_default();
    let bundle = Bundle::new("searchset", total, links, entries);
    let body =
        serde_json::to_string(&bundle).map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
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
        let p = SearchParams::parse(
            &pairs(&[
                ("patient", "alice"),
                ("status", "active,inactive"),
                ("_count", "5"),
                ("_total", "accurate"),
            ]),
            Handling::Lenient,
        )
        .unwrap();
        assert_eq!(p.patient.unwrap().as_str(), "Patient/alice");
        assert_eq!(p.statuses, vec!["active", "inactive"]);
        assert_eq!(p.count, Some(5));
        assert_eq!(p.ignored[0].name, "_total");
    }

    #[test]
    fn rejects_malformed_parameters_and_unknown_ones_when_strict() {
        let strict = |raw: &[(&str, &str)]| SearchParams::parse(&pairs(raw), Handling::Strict);
        let lenient = |raw: &[(&str, &str)]| SearchParams::parse(&pairs(raw), Handling::Lenient);
        assert!(strict(&[("colour", "blue")]).is_err());
        assert_eq!(
            lenient(&[("colour", "blue")]).unwrap().ignored[0].name,
            "colour"
        );
        for handling in [strict, lenient] {
            assert!(handling(&[("status", "sleepy")]).is_err());
            assert!(handling(&[("_count", "-1")]).is_err());
            assert!(handling(&[("patient", "Organization/h1")]).is_err());
        }
    }
}
