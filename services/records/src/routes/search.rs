//! `GET /fhir/{type}?...` and `POST /fhir/{type}/_search` (form body): Bundle `searchset`.
//!
//! Access is inside the query: the kernel says which compartments the caller may see (or
//! decides for the one patient the search names), the query is restricted to them, and
//! `total`, paging and `_summary=count` are computed over visible resources only. A patient
//! whose consents answer by the data itself (labels, codes, data period, instances) comes as
//! conditions the query evaluates over each resource's access facts; her resources on a page
//! are then decided one by one on their own facts, as reads by id are.
//! Events: one permit event per (type, patient, basis, consents) on the page (count = their
//! resources), one
//! deny event for a named patient the caller may not see, and one event for a search that
//! returned nothing. `_include`d and `_revinclude`d resources (`:iterate` too) are decided one
//! by one with their own facts, with events under their own resource type.
//! Chains and `_has` go only through resources of each type the caller may see (the kernel's
//! scope for that type, compiled into the query; none under break-glass, which is for one named
//! patient's own data). Linked resources are not returned, so they have no event.
//! Parameters a lenient search ignored are named in an `outcome` entry.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use actix_web::{http::header, http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{
    Basis, Caller, CompartmentTarget, Decision, Interaction, OrganizationRef, PatientRef,
    PatientScope, PatientVisibility, ResourceFacts, Touched, Visibility,
};
use custodian_events::AccessEvent;
use custodian_fhir::{http::Prefer, FhirError};
use custodian_fhir_search::{
    registry::ParamType,
    value_set::{self, ValueSetError, MAX_VALUE_SETS},
};

use super::{
    bundle::{raw, Entry, Search},
    http,
};
use crate::{
    access::{
        custodian_of, custodians_of, most_restrictive, refused, stored_patient, InstanceFacts,
        Subject,
    },
    domain::{is_valid_id, ResourceType},
    error::RecordsError,
    search::{page, Handling, Include, Restrict, SearchQuery, MAX_INCLUDES, MAX_ITERATIONS},
    state::AppState,
    store::{self, Current},
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
    security(("smart" = []))
)]
pub async fn search_get(
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let result = handle(&path, pairs, Prefer::of(&req).handling, caller, &state).await;
    super::observe(&state, "search", &path, &result);
    result
}

/// Search by GET on `_search` too (the same handler as `GET [type]`; documentation only).
#[utoipa::path(
    get,
    path = "/fhir/{type}/_search",
    tag = "fhir",
    params(("type" = String, Path)),
    responses(
        (status = 200, description = "Bundle of type searchset, filtered to what the caller may see"),
        (status = 400, description = "Unknown or malformed search parameter")
    ),
    security(("smart" = []))
)]
#[allow(dead_code)]
pub(crate) fn search_get_alias() {}

/// Search with parameters in a form body.
#[utoipa::path(
    post,
    path = "/fhir/{type}/_search",
    tag = "fhir",
    params(("type" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Bundle of type searchset")),
    security(("smart" = []))
)]
pub async fn search_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
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
        handle(&path, pairs, Prefer::of(&req).handling, caller, &state).await
    };
    super::observe(&state, "search", &path, &result);
    result
}

/// What a page returns of one (type, patient), for its event.
struct Returned {
    decision: Decision,
    count: u32,
    confidentiality: Option<String>,
}

/// (resource type, patient, basis, consents).
type ReturnedKey = (String, Option<PatientRef>, &'static str, Vec<String>);

/// (patient, "Patient") for a patient's exported data; (None, type) for data in no compartment.
type ExportKey = (Option<PatientRef>, String);

/// Events of a search, grouped by (resource type, patient, and for returned data the basis
/// and consents that decided: a patient whose consents answer resource by resource gets one
/// event per distinct answer).
#[derive(Default)]
pub(super) struct Tally {
    returned: BTreeMap<ReturnedKey, Returned>,
    denied: BTreeMap<(String, Option<PatientRef>), (Decision, Option<String>)>,
}

impl Tally {
    pub(super) fn permit(&mut self, subject: &Subject, decision: &Decision) {
        let r = self
            .returned
            .entry((
                subject.resource_type.clone(),
                subject.patient.clone(),
                decision.basis.code(),
                decision.consents.clone(),
            ))
            .or_insert_with(|| Returned {
                decision: decision.clone(),
                count: 0,
                confidentiality: None,
            });
        r.count += 1;
        r.confidentiality =
            most_restrictive(r.confidentiality.take(), subject.confidentiality.as_deref());
    }

    pub(super) fn deny(&mut self, subject: &Subject, decision: &Decision) {
        let e = self
            .denied
            .entry((subject.resource_type.clone(), subject.patient.clone()))
            .or_insert_with(|| (decision.clone(), None));
        e.1 = most_restrictive(e.1.take(), subject.confidentiality.as_deref());
    }

    /// The patients whose data was returned.
    pub(super) fn patients(&self) -> Vec<String> {
        let mut patients: Vec<String> = self
            .returned
            .keys()
            .filter_map(|(_, p, ..)| p.as_ref().map(|p| p.as_str().to_string()))
            .collect();
        patients.dedup();
        patients
    }

    /// Nothing was decided.
    pub(super) fn is_empty(&self) -> bool {
        self.returned.is_empty() && self.denied.is_empty()
    }

    fn returned_any(&self, resource_type: &str) -> bool {
        self.returned.keys().any(|(t, ..)| t == resource_type)
    }

    pub(super) fn events(self, caller: &Caller) -> Vec<AccessEvent> {
        let mut events = Vec::new();
        for ((t, patient, ..), r) in &self.returned {
            events.push(
                r.decision.event(
                    caller,
                    Interaction::Search,
                    Touched::new(t, patient.as_ref())
                        .count(r.count)
                        .confidentiality(r.confidentiality.as_deref()),
                ),
            );
        }
        for ((t, patient), (decision, confidentiality)) in &self.denied {
            events.push(decision.event(
                caller,
                Interaction::Search,
                Touched::new(t, patient.as_ref()).confidentiality(confidentiality.as_deref()),
            ));
        }
        events
    }

    /// The events of a bulk export: one per patient whose data left (what the ledger shows
    /// her: an export of her compartment, `Patient`, counting every resource of every type),
    /// one per patient refused, and one per type for resources in no compartment.
    pub(super) fn export_events(self, caller: &Caller) -> Vec<AccessEvent> {
        let key = |t: String, patient: Option<PatientRef>| match patient {
            Some(p) => (Some(p), "Patient".to_string()),
            None => (None, t),
        };
        let mut exported: BTreeMap<ExportKey, (Decision, u32, Option<String>)> = BTreeMap::new();
        for ((t, patient, ..), r) in self.returned {
            let e = exported
                .entry(key(t, patient))
                .or_insert_with(|| (r.decision.clone(), 0, None));
            e.1 += r.count;
            e.2 = most_restrictive(e.2.take(), r.confidentiality.as_deref());
        }
        let mut refused: BTreeMap<ExportKey, (Decision, Option<String>)> = BTreeMap::new();
        for ((t, patient), (decision, confidentiality)) in self.denied {
            let e = refused
                .entry(key(t, patient))
                .or_insert_with(|| (decision, None));
            e.1 = most_restrictive(e.1.take(), confidentiality.as_deref());
        }
        let exported = exported
            .into_iter()
            .map(|((patient, t), (decision, count, c))| {
                decision.event(
                    caller,
                    Interaction::Export,
                    Touched::new(&t, patient.as_ref())
                        .count(count)
                        .confidentiality(c.as_deref()),
                )
            });
        let refused = refused.into_iter().map(|((patient, t), (decision, c))| {
            decision.event(
                caller,
                Interaction::Export,
                Touched::new(&t, patient.as_ref()).confidentiality(c.as_deref()),
            )
        });
        exported.chain(refused).collect()
    }
}

/// Decides every resource of `rows` one by one, with its own facts (`_include`d and
/// `_revinclude`d resources, which come from other compartments than the page's, and
/// `$everything`), adding what is permitted to `entries` with search mode `mode`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide_each(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    resource_type: &str,
    rows: Vec<(String, Current)>,
    mode: &'static str,
    budget: &mut usize,
    tally: &mut Tally,
    entries: &mut Vec<Entry>,
) -> Result<Vec<String>, RecordsError> {
    decide_each_as(
        Interaction::Search,
        state,
        conn,
        caller,
        resource_type,
        rows,
        mode,
        budget,
        tally,
        entries,
    )
    .await
}

/// [`decide_each`] for another interaction than a search (a bulk export).
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide_each_as(
    interaction: Interaction,
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    resource_type: &str,
    rows: Vec<(String, Current)>,
    mode: &'static str,
    budget: &mut usize,
    tally: &mut Tally,
    entries: &mut Vec<Entry>,
) -> Result<Vec<String>, RecordsError> {
    let mut permitted = Vec::new();
    let versions: Vec<(String, i64)> = rows.iter().map(|(id, c)| (id.clone(), c.version)).collect();
    let mut bodies = store::current_bodies(conn, &state.cipher, resource_type, &versions).await?;
    let patients: Vec<PatientRef> = rows
        .iter()
        .filter_map(|(_, c)| stored_patient(c.patient_ref.as_deref()))
        .collect();
    let custodians = custodians_of(conn, &patients.iter().collect::<Vec<_>>()).await?;
    for (id, current) in rows {
        if *budget == 0 {
            break;
        }
        let Some(json) = bodies.remove(&id) else {
            continue;
        };
        let (subject, decision) = decide_row(
            interaction,
            state,
            conn,
            caller,
            resource_type,
            &id,
            &current,
            &json,
            &custodians,
        )
        .await?;
        if decision.permitted() {
            *budget -= 1;
            tally.permit(&subject, &decision);
            entries.push(Entry {
                full_url: state.full_url(resource_type, &id),
                resource: raw(json),
                search: Some(Search { mode }),
                request: None,
                response: None,
            });
            permitted.push(id);
        } else {
            tally.deny(&subject, &decision);
        }
    }
    Ok(permitted)
}

/// One stored resource decided for a search on its own facts: its compartment, custodian
/// (from `custodians`), confidentiality and the facts of its body `json`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn decide_row(
    interaction: Interaction,
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    current: &Current,
    json: &str,
    custodians: &HashMap<PatientRef, OrganizationRef>,
) -> Result<(Subject, Decision), RecordsError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| RecordsError::Internal(e.to_string()))?;
    let patient = stored_patient(current.patient_ref.as_deref());
    let subject = Subject {
        resource_type: resource_type.to_string(),
        id: Some(id.to_string()),
        custodian: patient.as_ref().and_then(|p| custodians.get(p).cloned()),
        patient,
        confidentiality: current.confidentiality.clone(),
        instance: Some(InstanceFacts::of(
            state.registry,
            &state.public_url,
            resource_type,
            &value,
        )),
    }
    .with_referrers(conn, state)
    .await?;
    let decision = state
        .kernel
        .decide(caller, interaction, &subject.target())?;
    Ok((subject, decision))
}

/// The (type, reference parameter) pairs a `_revinclude` follows back to `target_type`: its
/// own, or for `_revinclude=*` every reference parameter of every type that may refer to it.
fn referrers(state: &AppState, inc: &Include, target_type: &str) -> Vec<(String, String)> {
    if inc.source_type != "*" {
        return inc
            .params(state.registry, &inc.source_type)
            .into_iter()
            .map(|p| (inc.source_type.clone(), p))
            .collect();
    }
    let mut out = Vec::new();
    for source in ResourceType::all() {
        for p in state.registry.params(source.as_str()) {
            if p.kind == ParamType::Reference
                && (p.targets.is_empty() || p.targets.iter().any(|t| t == target_type))
            {
                out.push((source.to_string(), p.code.clone()));
            }
        }
    }
    out
}

/// `_include` and `_revinclude`: the referenced (or referencing) resources of the page that the
/// caller may see, as `include` entries, at most [`MAX_INCLUDES`] of them. Candidates are
/// decided before they count, so hidden resources never crowd out visible ones; when the limit
/// cuts the list short, an `outcome` entry says so (as HAPI FHIR does). `:iterate` includes are
/// then followed from the included resources, [`MAX_ITERATIONS`] times at most, and only from
/// those the caller was shown: a hidden resource is never a step to another (its references
/// would tell what it holds).
async fn include(
    state: &AppState,
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    resource_type: &str,
    page_ids: &[String],
    query: &SearchQuery,
    tally: &mut Tally,
) -> Result<Vec<Entry>, RecordsError> {
    if page_ids.is_empty() || (query.includes.is_empty() && query.revincludes.is_empty()) {
        return Ok(Vec::new());
    }
    let mut budget = MAX_INCLUDES as usize;
    let mut entries = Vec::new();
    let mut cut_short = false;
    // Every resource already decided (shown or not), by type: none is decided twice.
    let mut decided: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    decided
        .entry(resource_type.to_string())
        .or_default()
        .extend(page_ids.iter().cloned());
    // The resources shown in the last round: where the next one starts.
    let mut frontier: BTreeMap<String, Vec<String>> = BTreeMap::new();
    frontier.insert(resource_type.to_string(), page_ids.to_vec());
    for round in 0..=MAX_ITERATIONS {
        let includes: Vec<&Include> = query
            .includes
            .iter()
            .filter(|i| round == 0 || i.iterate)
            .collect();
        let revincludes: Vec<&Include> = query
            .revincludes
            .iter()
            .filter(|i| round == 0 || i.iterate)
            .collect();
        if frontier.is_empty() || (includes.is_empty() && revincludes.is_empty()) {
            break;
        }
        let mut next: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut candidates: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (source, ids) in &frontier {
            for inc in includes.iter().filter(|i| i.applies_to(source)) {
                for param in inc.params(state.registry, source) {
                    for reference in store::references_of(conn, source, &param, ids).await? {
                        let Some((t, id)) = reference.split_once('/') else {
                            continue;
                        };
                        if inc.target.as_deref().is_some_and(|target| target != t)
                            || !is_valid_id(id)
                            || ResourceType::parse(t).is_err()
                            || decided.get(t).is_some_and(|d| d.contains(id))
                        {
                            continue;
                        }
                        candidates
                            .entry(t.to_string())
                            .or_default()
                            .insert(id.to_string());
                    }
                }
            }
        }
        for (t, ids) in candidates {
            if budget == 0 {
                cut_short = true;
                break;
            }
            let total = ids.len();
            let ids: Vec<String> = ids.into_iter().collect();
            let rows = store::current_rows(conn, &t, &ids).await?;
            let before = entries.len();
            let shown = decide_each(
                state,
                conn,
                caller,
                &t,
                rows,
                "include",
                &mut budget,
                tally,
                &mut entries,
            )
            .await?;
            cut_short |= budget == 0 && entries.len() - before < total;
            decided.entry(t.clone()).or_default().extend(ids);
            next.entry(t).or_default().extend(shown);
        }
        for inc in &revincludes {
            for (target_type, ids) in &frontier {
                if inc.target.as_deref().is_some_and(|t| t != target_type) {
                    continue;
                }
                let refs: Vec<String> =
                    ids.iter().map(|id| format!("{target_type}/{id}")).collect();
                let sources = referrers(state, inc, target_type);
                // Keyset pages of referencing resources, each decided before the next is read.
                let mut after: Option<(String, String)> = None;
                loop {
                    if budget == 0 {
                        cut_short = true;
                        break;
                    }
                    let chunk = SearchQuery::referencing_any(
                        conn,
                        &sources,
                        &refs,
                        after.as_ref(),
                        MAX_INCLUDES,
                    )
                    .await?;
                    let Some(last) = chunk.last().cloned() else {
                        break;
                    };
                    let full = chunk.len() as i64 == MAX_INCLUDES;
                    let mut fresh: BTreeMap<String, Vec<String>> = BTreeMap::new();
                    for (t, id) in chunk {
                        if decided.entry(t.clone()).or_default().insert(id.clone()) {
                            fresh.entry(t).or_default().push(id);
                        }
                    }
                    let before = entries.len();
                    let candidates: usize = fresh.values().map(Vec::len).sum();
                    for (t, ids) in fresh {
                        let rows = store::current_rows(conn, &t, &ids).await?;
                        let shown = decide_each(
                            state,
                            conn,
                            caller,
                            &t,
                            rows,
                            "include",
                            &mut budget,
                            tally,
                            &mut entries,
                        )
                        .await?;
                        next.entry(t).or_default().extend(shown);
                    }
                    if budget == 0 && (full || entries.len() - before < candidates) {
                        cut_short = true;
                        break;
                    }
                    if !full {
                        break;
                    }
                    after = Some(last);
                }
            }
        }
        frontier = next;
    }
    if cut_short {
        entries.push(Entry::outcome(vec![serde_json::json!({
            "severity": "warning",
            "code": "incomplete",
            "diagnostics": format!(
                "only the first {MAX_INCLUDES} included resources are returned for one page; ask for a smaller _count to get the rest"
            ),
        })]));
    }
    Ok(entries)
}

/// An `outcome` entry: an OperationOutcome with `issues`.
/// Denials that answer a search with 403 rather than an empty result: they are about the
/// request itself (its scopes, break-glass without a patient), not about whether data exists.
pub(super) fn refuses_the_request(decision: &Decision) -> bool {
    matches!(decision.basis, Basis::Scope | Basis::BreakGlassRefused)
}

/// What a search may see, decided before its query runs.
pub(super) enum Scoped {
    /// The query is restricted to what the caller may see: the main type's compartments, and
    /// every type its chains and `_has` link through.
    Visible {
        decision: Decision,
        /// The named patient's consents answer resource by resource.
        named_conditional: bool,
    },
    /// Nothing may be seen: the event to record, and whether a patient was named (an empty
    /// result may then answer, as for a patient with no data).
    Denied {
        decision: Decision,
        event: Box<AccessEvent>,
        named: bool,
    },
}

/// Puts access into `query`: for one named patient, her decision; otherwise the caller's
/// visible compartments of `resource_type`; and for every linked type of a chain or `_has`,
/// that type's visible compartments (a link through what may not be seen matches nothing).
/// The ValueSets of `:in`/`:not-in` and the Lists of `_list` are read here too, each by a
/// search of its own type scoped the same way: only one the caller may see is ever used.
/// The search route and conditional interactions both search through it.
pub(super) async fn scope_query(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    query: &mut SearchQuery,
) -> Result<Scoped, RecordsError> {
    use_value_sets(conn, state, caller, query).await?;
    use_lists(conn, state, caller, resource_type, query).await?;
    scope_plain(conn, state, caller, resource_type, query).await
}

/// The one resource of `resource_type` the caller may see that `pairs` find (None when there
/// is none; an error when there are several), with its current body.
async fn visible_one(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    pairs: Vec<(String, String)>,
    several: impl FnOnce() -> FhirError,
) -> Result<Option<serde_json::Value>, RecordsError> {
    let mut query = SearchQuery::parse(
        &state.search_store(),
        resource_type,
        &pairs,
        Handling::Strict,
    )?;
    // A resource that may not be seen is as one that does not exist: no event (as for the
    // resources a chain goes through, it is not returned).
    if let Scoped::Denied { .. } =
        scope_plain(conn, state, caller, resource_type, &mut query).await?
    {
        return Ok(None);
    }
    let rows = query.page(conn, 0, 2).await?;
    let row = match rows.as_slice() {
        [] => return Ok(None),
        [row] => row,
        _ => return Err(several().into()),
    };
    let mut bodies = store::current_bodies(
        conn,
        &state.cipher,
        resource_type,
        &[(row.resource_id.clone(), row.version)],
    )
    .await?;
    let Some(json) = bodies.remove(&row.resource_id) else {
        return Ok(None);
    };
    let value = serde_json::from_str(&json).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(Some(value))
}

/// A search value, escaped so that it is read as given (`,` separates values, `\` escapes).
fn escaped(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,")
}

/// The ValueSet a search names (`ValueSet/id`, `url` or `url|version`), if the caller may see it.
async fn visible_value_set(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    named: &str,
) -> Result<Option<serde_json::Value>, RecordsError> {
    let pairs = match named.strip_prefix("ValueSet/") {
        Some(id) if is_valid_id(id) => vec![("_id".to_string(), id.to_string())],
        _ => match named.split_once('|') {
            Some((url, version)) => vec![
                ("url".to_string(), escaped(url)),
                ("version".to_string(), escaped(version).replace('|', "\\|")),
            ],
            None => vec![("url".to_string(), escaped(named))],
        },
    };
    visible_one(conn, state, caller, "ValueSet", pairs, || {
        FhirError::BadRequest(ValueSetError::Ambiguous(named.to_string()).to_string())
    })
    .await
}

/// Reads the ValueSets of `:in`/`:not-in` (and those they import) that the caller may see, and
/// gives the query their codes. A ValueSet that is unknown, not visible, or not listable
/// exactly is a 400 whatever the handling: ignoring `:in` would return what was not asked.
async fn use_value_sets(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    query: &mut SearchQuery,
) -> Result<(), RecordsError> {
    let wanted = query.value_sets_wanted();
    if wanted.is_empty() {
        return Ok(());
    }
    let refuse = |e: ValueSetError| RecordsError::from(FhirError::BadRequest(e.to_string()));
    let mut read: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut queue: Vec<String> = wanted.iter().cloned().collect();
    while let Some(named) = queue.pop() {
        if read.contains_key(&named) || unknown.contains(&named) {
            continue;
        }
        if read.len() >= MAX_VALUE_SETS {
            return Err(refuse(ValueSetError::TooMany));
        }
        match visible_value_set(conn, state, caller, &named).await? {
            Some(vs) => {
                queue.extend(value_set::imports(&vs));
                read.insert(named, vs);
            }
            None if wanted.contains(&named) => return Err(refuse(ValueSetError::Unknown(named))),
            // An import that is not here: the expansion says which and refuses.
            None => {
                unknown.insert(named);
            }
        }
    }
    let mut sets = BTreeMap::new();
    for named in &wanted {
        let Some(vs) = read.get(named) else {
            return Err(refuse(ValueSetError::Unknown(named.clone())));
        };
        let set = value_set::expand(named, vs, &|c| read.get(c)).map_err(refuse)?;
        sets.insert(named.clone(), set);
    }
    query.use_value_sets(&sets);
    Ok(())
}

/// `Type/id` of a reference to a resource of this server (relative, or under its base URL);
/// None for anything else (another server's, contained, `urn:`, identifier only).
fn local_reference(state: &AppState, reference: &str) -> Option<(String, String)> {
    let base = format!("{}/fhir/", state.public_url);
    let relative = reference.strip_prefix(&base).unwrap_or(reference);
    let relative = match relative.find("/_history/") {
        Some(at) => &relative[..at],
        None => relative,
    };
    let (t, id) = relative.split_once('/')?;
    (ResourceType::parse(t).is_ok() && is_valid_id(id)).then(|| (t.to_string(), id.to_string()))
}

/// Reads the Lists `_list` names that the caller may see, and gives the query the resources
/// of `resource_type` their entries name (entries marked deleted are no longer in the List).
/// A List that is unknown or not visible names nothing: the same empty answer either way.
async fn use_lists(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    query: &mut SearchQuery,
) -> Result<(), RecordsError> {
    let wanted = query.lists_wanted();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut members = BTreeMap::new();
    for id in wanted {
        let pairs = vec![("_id".to_string(), id.clone())];
        let several = || FhirError::Internal("two current Lists with one id".into());
        let Some(list) = visible_one(conn, state, caller, "List", pairs, several).await? else {
            continue;
        };
        let ids: Vec<String> = list["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["deleted"] != serde_json::Value::Bool(true))
            .filter_map(|e| e["item"]["reference"].as_str())
            .filter_map(|r| local_reference(state, r))
            .filter(|(t, _)| t == resource_type)
            .map(|(_, id)| id)
            .collect();
        members.insert(id, ids);
    }
    query.use_lists(&members);
    Ok(())
}

/// [`scope_query`] for a query that names no ValueSet or List.
async fn scope_plain(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    query: &mut SearchQuery,
) -> Result<Scoped, RecordsError> {
    let named = query
        .named_patient
        .as_deref()
        .and_then(|p| PatientRef::parse(p).ok());
    let (scope, decision, named_conditional) = match &named {
        Some(patient) => {
            let custodian = custodian_of(conn, patient).await?;
            let target = CompartmentTarget {
                patient,
                custodian: custodian.as_ref(),
                facts: ResourceFacts::of_type(resource_type),
            };
            match state.kernel.search_patient(caller, &target)? {
                // Her consents answer resource by resource: their conditions go into the query.
                PatientVisibility::Conditional { scope, decision } => (scope, decision, true),
                PatientVisibility::Decided(decision) if decision.permitted() => {
                    let scope = PatientScope {
                        unowned: true,
                        included: vec![patient.clone()],
                        ..PatientScope::default()
                    };
                    (scope, decision, false)
                }
                PatientVisibility::Decided(decision) => {
                    let subject = Subject::of_type(resource_type, Some(patient.clone()), custodian);
                    let event = decision.event(caller, Interaction::Search, subject.touched(0));
                    return Ok(Scoped::Denied {
                        decision,
                        event: Box::new(event),
                        named: true,
                    });
                }
            }
        }
        None => match state.kernel.visibility(caller, resource_type)? {
            Visibility::Denied(decision) => {
                let event = decision.event(
                    caller,
                    Interaction::Search,
                    Touched::new(resource_type, None),
                );
                return Ok(Scoped::Denied {
                    decision,
                    event: Box::new(event),
                    named: false,
                });
            }
            Visibility::Visible { scope, decision } => (scope, decision, false),
        },
    };
    query.restrict(&scope);
    for linked in query.linked_types() {
        let scope = match state.kernel.visibility(caller, &linked)? {
            Visibility::Visible { scope, .. } => Some(scope),
            Visibility::Denied(_) => None,
        };
        query.restrict_linked(&linked, scope.as_ref());
    }
    Ok(Scoped::Visible {
        decision,
        named_conditional,
    })
}

async fn handle(
    raw_type: &str,
    pairs: Vec<(String, String)>,
    handling: Handling,
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let mut conn = state.connection().await?;
    let searched = search_on(&mut conn, state, &caller, raw_type, &pairs, handling).await?;
    state.record(&mut conn, &searched.events).await?;
    Ok(http::fhir(StatusCode::OK).body(searched.bundle?))
}

/// A search's answer, not yet recorded: the searchset Bundle (or the refusal to answer) and
/// the access events it made.
pub(super) struct Searched {
    pub bundle: Result<String, RecordsError>,
    pub events: Vec<AccessEvent>,
}

/// Runs a search on `conn` (a Bundle's GET entry runs it in the transaction, after its
/// writes): the caller's access in the query, every returned resource decided, the events
/// for the caller to record with what it answers.
pub(super) async fn search_on(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    raw_type: &str,
    pairs: &[(String, String)],
    handling: Handling,
) -> Result<Searched, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let main_type = resource_type.as_str();
    let mut query = SearchQuery::parse(&state.search_store(), main_type, pairs, handling)?;

    let (search_decision, named_conditional) =
        match scope_query(conn, state, caller, main_type, &mut query).await? {
            Scoped::Visible {
                decision,
                named_conditional,
            } => (decision, named_conditional),
            Scoped::Denied {
                decision,
                event,
                named,
            } => {
                let events = vec![*event];
                if named
                    && !refuses_the_request(&decision)
                    && !state.kernel.settings().explain_denials
                {
                    // As for a patient with no data: an empty result.
                    let bundle = searchset(
                        state,
                        main_type,
                        &query,
                        Some(0),
                        page::Paging::default(),
                        Vec::new(),
                    );
                    return Ok(Searched { bundle, events });
                }
                return Ok(Searched {
                    bundle: Err(refused(state, &decision).into()),
                    events,
                });
            }
        };
    let named = query
        .named_patient
        .as_deref()
        .and_then(|p| PatientRef::parse(p).ok());

    let page::Page {
        rows: page,
        total,
        paging,
    } = page::read(conn, &query).await?;

    // Each patient on the page is decided again, for the event's basis and consents (and so a
    // consent revoked since the scope was computed is honoured). A patient whose consents
    // answer by the data (Undetermined at type level) is decided resource by resource, on each
    // resource's own facts, as a read by id would be.
    let patients: BTreeSet<PatientRef> = page
        .iter()
        .filter_map(|m| stored_patient(m.patient_ref.as_deref()))
        .collect();
    let custodians = custodians_of(conn, &patients.iter().collect::<Vec<_>>()).await?;
    let mut decisions: HashMap<Option<PatientRef>, Decision> = HashMap::new();
    for patient in patients.iter().cloned().map(Some).chain([None]) {
        let custodian = patient.as_ref().and_then(|p| custodians.get(p).cloned());
        let subject = Subject::of_type(main_type, patient.clone(), custodian);
        let decision = match (&named, &patient) {
            (Some(n), Some(p)) if n == p && !named_conditional => search_decision.clone(),
            _ => state
                .kernel
                .decide(caller, Interaction::Search, &subject.target())?,
        };
        decisions.insert(patient, decision);
    }
    let by_resource = |d: &Decision| !d.permitted() && d.basis == Basis::Undetermined;
    let wanted: Vec<(String, i64)> = page
        .iter()
        .filter(|m| {
            decisions
                .get(&stored_patient(m.patient_ref.as_deref()))
                .is_some_and(|d| d.permitted() || by_resource(d))
        })
        .map(|m| (m.resource_id.clone(), m.version))
        .collect();
    let mut bodies = store::current_bodies(conn, &state.cipher, main_type, &wanted).await?;
    let mut tally = Tally::default();
    let mut entries = Vec::new();
    let mut page_ids = Vec::new();
    for m in &page {
        let patient = stored_patient(m.patient_ref.as_deref());
        let Some(patient_decision) = decisions.get(&patient) else {
            continue;
        };
        let mut subject = Subject::of_type(
            main_type,
            patient.clone(),
            patient.as_ref().and_then(|p| custodians.get(p).cloned()),
        );
        subject.confidentiality = m.confidentiality.clone();
        if !patient_decision.permitted() && !by_resource(patient_decision) {
            tally.deny(&subject, patient_decision);
            continue;
        }
        let Some(json) = bodies.remove(&m.resource_id) else {
            continue;
        };
        let decision = if patient_decision.permitted() {
            patient_decision.clone()
        } else {
            let value: serde_json::Value =
                serde_json::from_str(&json).map_err(|e| RecordsError::Internal(e.to_string()))?;
            subject.id = Some(m.resource_id.clone());
            subject.instance = Some(InstanceFacts::of(
                state.registry,
                &state.public_url,
                main_type,
                &value,
            ));
            subject = subject.with_referrers(conn, state).await?;
            state
                .kernel
                .decide(caller, Interaction::Search, &subject.target())?
        };
        if !decision.permitted() {
            tally.deny(&subject, &decision);
            continue;
        }
        tally.permit(&subject, &decision);
        page_ids.push(m.resource_id.clone());
        entries.push(Entry {
            full_url: state.full_url(main_type, &m.resource_id),
            resource: raw(json),
            search: Some(Search { mode: "match" }),
            request: None,
            response: None,
        });
    }
    let included = include(
        state, conn, caller, main_type, &page_ids, &query, &mut tally,
    )
    .await?;
    entries.extend(included);

    let nothing = !tally.returned_any(main_type);
    let mut events = tally.events(caller);
    if nothing {
        events.push(search_decision.event(
            caller,
            Interaction::Search,
            Touched::new(main_type, named.as_ref()),
        ));
    }
    let bundle = searchset(state, main_type, &query, total, paging, entries);
    Ok(Searched { bundle, events })
}

/// The searchset Bundle of a page, as JSON.
fn searchset(
    state: &AppState,
    resource_type: &str,
    query: &SearchQuery,
    total: Option<usize>,
    paging: page::Paging,
    entries: Vec<Entry>,
) -> Result<String, RecordsError> {
    let base = format!("{}/fhir", state.public_url);
    let bundle = page::searchset(&base, resource_type, query, total, paging, entries)?;
    serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))
}
