//! `GET /fhir/Consent?...` and `POST /fhir/Consent/_search`: the one FHIR search engine
//! (`custodian_fhir_search`, as records uses it) over this service's Consents, restricted in
//! the query to what the caller may see (her own consents, or those naming the caller).
//!
//! Every R4 search parameter of Consent works as it does at records (`patient`, `status`,
//! `category`, `date`, `period`, `actor`, `action`, `purpose`, `scope`, `consentor`,
//! `organization`, `source-reference`, `security-label`, `identifier`, `_id`,
//! `_lastUpdated`, modifiers, prefixes, `_sort`, `_count` with cursor pages, `_total`,
//! `_summary`, `_elements`). What only another service holds cannot be answered here: chains
//! and `_has` through Patients, Organizations ..., and `_include`s of them, follow
//! `Prefer: handling` (left out and reported, or a 400); `:in` and `_list` need a ValueSet or
//! List, which records holds: a 400.

use actix_web::{http::header, http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Decision, Interaction, Touched};
use custodian_fhir::{
    bundle::{raw, Entry, Search},
    http::{self, Handling, Prefer},
    FhirError,
};
use custodian_fhir_search::{
    page,
    query::{Builder, Match},
    Registry, SearchQuery, Store,
};

use super::{known, record, refuse};
use crate::{
    domain::{
        access::{self, Visible, CONSENT},
        resource::shown,
        PatientRef,
    },
    error::ConsentError,
    routes::AppState,
    store,
};

/// What this service's searches search: Consents only.
pub fn search_store() -> Store {
    Store {
        registry: Registry::global(),
        holds: |t| t == CONSENT,
    }
}

/// Limits `query` to what the caller may see, its matches and every Consent a chain links
/// through (`source-reference:Consent.status=`) alike.
pub(super) fn restrict(query: &mut SearchQuery, visible: &Visible) {
    query.restrict_with(|b| visible_sql(b, visible));
    for linked in query.linked_types() {
        query.restrict_linked_with(&linked, Some(|b: &mut Builder| visible_sql(b, visible)));
    }
}

/// What the caller may see, as SQL over `r` (a row of the `resources` view over `consents`).
fn visible_sql(b: &mut Builder, visible: &Visible) -> String {
    match visible {
        Visible::Patient(patient) => format!("r.patient_ref = {}", b.text(patient.as_str())),
        Visible::NamingAny(actors) => format!("r.actors && {}", b.texts(actors.clone())),
        Visible::Nothing => "false".into(),
    }
}

/// One access event per patient whose consents the page returned (or one naming the patient
/// asked for, or none, when it returned nothing).
fn events(
    caller: &Caller,
    decision: &Decision,
    requested: Option<&PatientRef>,
    rows: &[Match],
) -> Vec<custodian_events::AccessEvent> {
    let interaction = Interaction::Search;
    let mut patients: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.patient_ref.as_deref())
        .collect();
    patients.sort_unstable();
    patients.dedup();
    let mut events = Vec::with_capacity(patients.len().max(1));
    for patient in patients {
        let Ok(reference) = PatientRef::parse(patient) else {
            continue;
        };
        let theirs: Vec<String> = rows
            .iter()
            .filter(|r| r.patient_ref.as_deref() == Some(patient))
            .map(|r| format!("Consent/{}", r.resource_id))
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

/// Parses a search of Consents: the engine's parse, then what only records could answer.
fn parse(pairs: &[(String, String)], handling: Handling) -> Result<SearchQuery, ConsentError> {
    let mut query = SearchQuery::parse(&search_store(), CONSENT, pairs, handling)?;
    if !query.value_sets_wanted().is_empty() || !query.lists_wanted().is_empty() {
        return Err(ConsentError::bad_request(
            ":in, :not-in and _list name ValueSets and Lists, which the records service holds: \
             they cannot be answered for Consent",
        ));
    }
    // Only `*` forms (and Consent:source-reference) get here: the rest named types not held.
    query.leave_out_includes(
        handling,
        "_include and _revinclude are not followed from Consents: what they refer to is held \
         by the records service (search it by id)",
    )?;
    Ok(query)
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
        ("actor" = Option<String>, Query, description = "A reference a provision names as actor"),
        ("category" = Option<String>, Query, description = "system|code"),
        ("date" = Option<String>, Query, description = "Consent.dateTime, with a prefix (ge2024-01-01)"),
        ("_count" = Option<i64>, Query, description = "Page size (default 50, at most 1000)"),
        ("_cursor" = Option<String>, Query, description = "The page a next or previous link leads to"),
        ("_sort" = Option<String>, Query, description = "Search parameters, - for descending"),
        ("_total" = Option<String>, Query, description = "none, estimate or accurate"),
    ),
    responses(
        (status = 200, description = "A searchset Bundle of what the caller may see", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Unsupported or malformed parameter", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "A patient searching another patient's consents", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn search(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsentError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    handle(&state, caller, &pairs, Prefer::of(&req).handling).await
}

/// The same search with its parameters in a form body.
#[utoipa::path(
    post,
    path = "/fhir/Consent/_search",
    tag = "Consent",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A searchset Bundle of what the caller may see", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Unsupported or malformed parameter", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "A patient searching another patient's consents", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "A body that is not a form", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn search_post(
    req: HttpRequest,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsentError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded");
    if !body.is_empty() && !form {
        return Err(FhirError::UnsupportedMediaType(
            "_search takes application/x-www-form-urlencoded".into(),
        )
        .into());
    }
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    pairs.extend(form_urlencoded::parse(&body).into_owned());
    handle(&state, caller, &pairs, Prefer::of(&req).handling).await
}

async fn handle(
    state: &AppState,
    caller: Caller,
    pairs: &[(String, String)],
    handling: Handling,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(state, caller);
    let interaction = Interaction::Search;
    let mut query = parse(pairs, handling)?;
    let requested = query
        .named_patient
        .as_deref()
        .and_then(|p| PatientRef::parse(p).ok());
    let (visible, decision) = match access::search(&caller, requested.as_ref()) {
        Ok(found) => found,
        Err(refused) => {
            let error = ConsentError::forbidden(refused.explanation.clone());
            return Err(refuse(
                state,
                &caller,
                interaction,
                &refused,
                requested.as_ref(),
                error,
            )
            .await);
        }
    };
    restrict(&mut query, &visible);
    let mut conn = state.pool.get().await?;
    let found = page::read(&mut conn, &query)
        .await
        .map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    let ids: Vec<String> = found.rows.iter().map(|m| m.resource_id.clone()).collect();
    let mut bodies = store::current_resources(&mut conn, &ids).await?;
    drop(conn);

    let base = format!("{}/fhir", state.public_url);
    let view = access::view(&caller);
    let mut entries = Vec::with_capacity(found.rows.len());
    let mut returned = Vec::with_capacity(found.rows.len());
    for m in found.rows {
        // Deleted between the page and the read: not returned (nor recorded).
        let Some(resource) = bodies.remove(&m.resource_id) else {
            continue;
        };
        entries.push(Entry {
            full_url: format!("{base}/Consent/{}", m.resource_id),
            resource: raw(shown(&view, &resource).to_string()),
            search: Some(Search { mode: "match" }),
            request: None,
            response: None,
        });
        returned.push(m);
    }
    record(
        state,
        &events(&caller, &decision, requested.as_ref(), &returned),
    )
    .await?;
    let bundle = page::searchset(&base, CONSENT, &query, found.total, found.paging, entries)?;
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
    fn parses_the_specification_parameters_of_consent() {
        let q = parse(
            &pairs(&[
                ("patient", "alice"),
                ("status", "active,inactive"),
                ("category", "http://loinc.org|59284-0"),
                ("date", "ge2024-01-01"),
                ("actor", "Organization/h1"),
                ("_count", "5"),
                ("_total", "accurate"),
                ("_sort", "-date"),
            ]),
            Handling::Strict,
        )
        .unwrap();
        assert_eq!(q.named_patient.as_deref(), Some("Patient/alice"));
        assert_eq!(q.count, 5);
        assert!(q.ignored.is_empty());
    }

    #[test]
    fn nul_characters_are_refused_before_the_database() {
        for raw in [[("category", "a\0b")], [("x\0", "1")]] {
            let err = parse(&pairs(&raw), Handling::Lenient).unwrap_err();
            assert!(err.to_string().contains("NUL"), "{err}");
        }
    }

    #[test]
    fn what_only_records_holds_follows_handling_or_is_refused() {
        let strict = |raw: &[(&str, &str)]| parse(&pairs(raw), Handling::Strict);
        let lenient = |raw: &[(&str, &str)]| parse(&pairs(raw), Handling::Lenient);
        for unknown in [
            ("colour", "blue"),
            ("patient:Patient.name", "peter"),
            ("patient.name", "peter"),
            ("_has:Provenance:target:agent", "Practitioner/p"),
            ("_include", "Consent:patient"),
            ("_revinclude", "Provenance:target"),
            ("_include", "*"),
        ] {
            assert!(strict(&[unknown]).is_err(), "{unknown:?}");
            let q = lenient(&[unknown]).unwrap();
            assert_eq!(q.ignored.len(), 1, "{unknown:?}");
            assert!(q.includes.is_empty() && q.revincludes.is_empty());
            assert!(q.link_params.is_empty(), "{unknown:?}: {:?}", q.link_params);
        }
        for handling in [strict, lenient] {
            assert!(handling(&[("status:in", "http://x/vs")]).is_err());
            assert!(handling(&[("_list", "List/a")]).is_err());
            assert!(handling(&[("date", "yesterday")]).is_err());
            assert!(handling(&[("_count", "-1")]).is_err());
        }
    }

    #[test]
    fn visibility_is_bound_never_spliced() {
        let mut q = parse(&pairs(&[("status", "active")]), Handling::Strict).unwrap();
        let visible = Visible::NamingAny(vec!["Organization/h1' OR true --".into()]);
        q.restrict_with(|b| visible_sql(b, &visible));
        assert!(q.statement().contains("r.actors && $"), "{}", q.statement());
        assert!(!q.statement().contains("h1'"));
        let mut q = parse(&[], Handling::Strict).unwrap();
        q.restrict_with(|b| visible_sql(b, &Visible::Nothing));
        assert!(q.statement().contains("AND false"));
    }
}
