//! `GET /fhir/{type}?...` and `POST /fhir/{type}/_search` (form body): Bundle `searchset`.
//!
//! The query runs first; then only resources the caller may see are kept (consent, own record,
//! or outside any patient compartment), so `total` counts what the caller can page through.
//! Events: one permit event per patient whose data is on the page (count = their resources),
//! one deny event per patient filtered out, and one event with patient null for resources
//! outside any compartment or when the page is empty. `_include`d and `_revinclude`d resources
//! are filtered and counted the same way, with events under their own resource type.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use actix_web::{http::header, http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_auth::Authenticated;
use custodian_events::{AccessEvent, AccessOutcome};
use custodian_fhir::FhirError;

use super::{
    bundle::{raw, Bundle, Entry, Link, Search},
    http,
};
use crate::{
    access::{Caller, EventDraft, Interaction, Verdict},
    domain::{is_valid_id, ResourceType},
    error::RecordsError,
    search::{SearchQuery, MAX_INCLUDES},
    state::AppState,
    store,
};

/// Search resources of one type.
#[utoipa::path(
    get,
    path = "/fhir/{type}",
    tag = "fhir",
    params(("type" = String, Path)),
    responses(
        (status = 200, description = "Bundle of type searchset, filtered to what the caller may see"),
        (status = 400, description = "Unknown or malformed search parameter")
    ),
    security(("bearer" = []))
)]
pub async fn search_get(
    req: HttpRequest,
    path: web::Path<String>,
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let result = handle(&req, &path, pairs, auth, &state).await;
    super::observe(&state, "search", &path, &result);
    result
}

/// Search with parameters in a form body.
#[utoipa::path(
    post,
    path = "/fhir/{type}/_search",
    tag = "fhir",
    params(("type" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Bundle of type searchset")),
    security(("bearer" = []))
)]
pub async fn search_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let result = if !body.is_empty()
        && !ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    {
        Err(FhirError::UnsupportedMediaType(
            "_search takes application/x-www-form-urlencoded".into(),
        )
        .into())
    } else {
        let mut pairs: Vec<(String, String)> =
            form_urlencoded::parse(req.query_string().as_bytes())
                .into_owned()
                .collect();
        pairs.extend(form_urlencoded::parse(&body).into_owned());
        handle(&req, &path, pairs, auth, &state).await
    };
    super::observe(&state, "search", &path, &result);
    result
}

fn link_url(
    state: &AppState,
    resource_type: &str,
    params: &[(String, String)],
    offset: Option<usize>,
) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    if let Some(o) = offset {
        s.append_pair("_offset", &o.to_string());
    }
    let query = s.finish();
    if query.is_empty() {
        format!("{}/fhir/{resource_type}", state.public_url)
    } else {
        format!("{}/fhir/{resource_type}?{query}", state.public_url)
    }
}

/// What a page returns of one (type, patient).
#[derive(Default)]
struct Returned {
    count: u32,
    confidentiality: Option<String>,
    break_glass: bool,
}

impl Returned {
    fn add(&mut self, confidentiality: Option<&String>, break_glass: bool) {
        self.count += 1;
        self.confidentiality = most_restrictive(self.confidentiality.take(), confidentiality);
        self.break_glass |= break_glass;
    }
}

/// `_include` and `_revinclude`: the referenced (or referencing) resources of the page that the
/// caller may see, as `include` entries; what is withheld goes to `denied`.
#[allow(clippy::too_many_arguments)]
async fn include(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    resource_type: &str,
    page_ids: &[String],
    query: &SearchQuery,
    returned: &mut BTreeMap<(String, Option<String>), Returned>,
    denied: &mut BTreeMap<(String, String), Option<String>>,
) -> Result<Vec<Entry>, RecordsError> {
    if page_ids.is_empty() || (query.includes.is_empty() && query.revincludes.is_empty()) {
        return Ok(Vec::new());
    }
    let mut candidates: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for inc in &query.includes {
        for reference in store::references_of(conn, resource_type, &inc.param, page_ids).await? {
            let Some((t, id)) = reference.split_once('/') else {
                continue;
            };
            if inc.target.as_deref().is_some_and(|target| target != t)
                || !is_valid_id(id)
                || ResourceType::parse(t).is_err()
            {
                continue;
            }
            candidates
                .entry(t.to_string())
                .or_default()
                .insert(id.to_string());
        }
    }
    let page_refs: Vec<String> = page_ids
        .iter()
        .map(|id| format!("{resource_type}/{id}"))
        .collect();
    for inc in &query.revincludes {
        if inc.target.as_deref().is_some_and(|t| t != resource_type) {
            continue;
        }
        for id in
            store::referencing(conn, &inc.source_type, &inc.param, &page_refs, MAX_INCLUDES).await?
        {
            candidates
                .entry(inc.source_type.clone())
                .or_default()
                .insert(id);
        }
    }
    if let Some(own) = candidates.get_mut(resource_type) {
        own.retain(|id| !page_ids.contains(id));
    }
    let mut verdicts: HashMap<(String, Option<String>), Verdict> = HashMap::new();
    let mut budget = MAX_INCLUDES as usize;
    let mut entries = Vec::new();
    for (t, ids) in candidates {
        let ids: Vec<String> = ids.into_iter().collect();
        let mut wanted = Vec::new();
        for (id, current) in store::current_rows(conn, &t, &ids).await? {
            let key = (t.clone(), current.patient_ref.clone());
            if !verdicts.contains_key(&key) {
                let v = state.access.decide(
                    caller,
                    current.patient_ref.as_deref(),
                    &t,
                    Interaction::Search,
                )?;
                verdicts.insert(key.clone(), v);
            }
            match verdicts.get(&key) {
                Some(Verdict::Permit { break_glass }) => wanted.push((id, current, *break_glass)),
                _ => {
                    if let Some(patient) = current.patient_ref.clone() {
                        let e = denied.entry((t.clone(), patient)).or_default();
                        *e = most_restrictive(e.take(), current.confidentiality.as_ref());
                    }
                }
            }
        }
        wanted.truncate(budget);
        budget -= wanted.len();
        let versions: Vec<(String, i64)> = wanted
            .iter()
            .map(|(id, c, _)| (id.clone(), c.version))
            .collect();
        let mut bodies = store::current_bodies(conn, &state.cipher, &t, &versions).await?;
        for (id, current, break_glass) in wanted {
            let Some(json) = bodies.remove(&id) else {
                continue;
            };
            returned
                .entry((t.clone(), current.patient_ref.clone()))
                .or_default()
                .add(current.confidentiality.as_ref(), break_glass);
            entries.push(Entry {
                full_url: state.full_url(&t, &id),
                resource: raw(json),
                search: Some(Search { mode: "include" }),
                request: None,
                response: None,
            });
        }
    }
    Ok(entries)
}

fn most_restrictive(a: Option<String>, b: Option<&String>) -> Option<String> {
    let rank = |c: &str| "ULMNRV".find(c).unwrap_or(0);
    match (a, b) {
        (Some(a), Some(b)) => Some(if rank(b) > rank(&a) { b.clone() } else { a }),
        (a, b) => a.or_else(|| b.cloned()),
    }
}

async fn handle(
    req: &HttpRequest,
    raw_type: &str,
    pairs: Vec<(String, String)>,
    auth: Authenticated,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let caller = Caller::from_request(req, auth.0)?;
    let query = SearchQuery::parse(state.registry, resource_type.as_str(), &pairs)?;
    let mut conn = state.connection().await?;
    let matches = query.run(&mut conn).await?;

    // One decision per patient.
    let mut verdicts: HashMap<Option<String>, Verdict> = HashMap::new();
    for m in &matches {
        if !verdicts.contains_key(&m.patient_ref) {
            let v = state.access.decide(
                &caller,
                m.patient_ref.as_deref(),
                resource_type.as_str(),
                Interaction::Search,
            )?;
            verdicts.insert(m.patient_ref.clone(), v);
        }
    }
    let visible: Vec<_> = matches
        .iter()
        .filter(|m| verdicts.get(&m.patient_ref).is_some_and(Verdict::permitted))
        .collect();
    let total = visible.len();
    let page: Vec<_> = visible
        .iter()
        .skip(query.offset)
        .take(query.count)
        .copied()
        .collect();
    let wanted: Vec<(String, i64)> = page
        .iter()
        .map(|m| (m.resource_id.clone(), m.version))
        .collect();
    let mut bodies =
        store::current_bodies(&mut conn, &state.cipher, resource_type.as_str(), &wanted).await?;

    // What the page returns and withholds, by (resource type, patient), for the events.
    let mut returned: BTreeMap<(String, Option<String>), Returned> = BTreeMap::new();
    let mut denied: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    let main_type = resource_type.to_string();
    for m in &page {
        if bodies.contains_key(&m.resource_id) {
            let break_glass = matches!(
                verdicts.get(&m.patient_ref),
                Some(Verdict::Permit { break_glass: true })
            );
            returned
                .entry((main_type.clone(), m.patient_ref.clone()))
                .or_default()
                .add(m.confidentiality.as_ref(), break_glass);
        }
    }
    for m in &matches {
        if let (Some(patient), Some(Verdict::Deny(_))) =
            (&m.patient_ref, verdicts.get(&m.patient_ref))
        {
            let e = denied
                .entry((main_type.clone(), patient.clone()))
                .or_default();
            *e = most_restrictive(e.take(), m.confidentiality.as_ref());
        }
    }
    let mut entries: Vec<Entry> = page
        .iter()
        .filter_map(|m| {
            let json = bodies.remove(&m.resource_id)?;
            Some(Entry {
                full_url: state.full_url(resource_type.as_str(), &m.resource_id),
                resource: raw(json),
                search: Some(Search { mode: "match" }),
                request: None,
                response: None,
            })
        })
        .collect();
    let page_ids: Vec<String> = page.iter().map(|m| m.resource_id.clone()).collect();
    let included = include(
        state,
        &mut conn,
        &caller,
        resource_type.as_str(),
        &page_ids,
        &query,
        &mut returned,
        &mut denied,
    )
    .await?;
    entries.extend(included);

    let mut events: Vec<AccessEvent> = Vec::new();
    let draft = |resource_type: &str,
                 patient: Option<String>,
                 count,
                 outcome,
                 break_glass,
                 confidentiality| {
        EventDraft {
            caller: &caller,
            patient,
            interaction: Interaction::Search,
            resource_type,
            count,
            outcome,
            break_glass,
            confidentiality,
        }
        .build()
    };
    let nothing = !returned.keys().any(|(t, _)| *t == main_type);
    for ((t, patient), r) in returned {
        events.push(draft(
            &t,
            patient,
            r.count,
            AccessOutcome::Permit,
            r.break_glass,
            r.confidentiality,
        ));
    }
    for ((t, patient), confidentiality) in denied {
        events.push(draft(
            &t,
            Some(patient),
            0,
            AccessOutcome::Deny,
            false,
            confidentiality,
        ));
    }
    if nothing {
        events.push(draft(
            &main_type,
            None,
            0,
            AccessOutcome::Permit,
            caller.breaks_glass(),
            None,
        ));
    }
    state.record(&mut conn, &events).await?;

    let mut link = vec![Link {
        relation: "self",
        url: link_url(
            state,
            resource_type.as_str(),
            &query.link_params,
            (query.offset > 0).then_some(query.offset),
        ),
    }];
    if query.offset + query.count < total && query.count > 0 {
        link.push(Link {
            relation: "next",
            url: link_url(
                state,
                resource_type.as_str(),
                &query.link_params,
                Some(query.offset + query.count),
            ),
        });
    }
    if query.offset > 0 {
        link.push(Link {
            relation: "previous",
            url: link_url(
                state,
                resource_type.as_str(),
                &query.link_params,
                Some(query.offset.saturating_sub(query.count)),
            ),
        });
    }
    let bundle = Bundle::new("searchset", total, link, entries);
    let body = serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(http::fhir(StatusCode::OK).body(body))
}
