//! Bulk Data Access (FHIR Bulk Data IG v2) `$export`: system (`/fhir/$export`), all patients
//! (`/fhir/Patient/$export`) and a group's members (`/fhir/Group/{id}/$export`).
//!
//! The kick-off (`Prefer: respond-async`) answers 202 with `Content-Location`, the status URL.
//! A job runs in the background: each type (`_type`, or every type holding data) is searched
//! page by page (`_since`, `_typeFilter` as searches of that type) with the caller's access
//! inside the query, exactly as a search ([`super::search::scope_query`]), and every resource is
//! then decided on its own facts as an export ([`Interaction::Export`]); what is permitted goes
//! into NDJSON parts, sealed in the database like resource versions. When the job completes,
//! its events (one export event per patient whose data it holds, counting every resource)
//! are enqueued in the same transaction that marks it complete: the ledger has exactly the
//! exports that could be downloaded. A job whose runner stopped (a restart) stops beating and
//! is then marked failed (nothing of it was handed out).
//!
//! Polling the status URL: 202 with `X-Progress` while running, 200 with the manifest when
//! complete, an `OperationOutcome` when failed; `DELETE` on it cancels or removes the job.
//! Only the token subject that kicked a job off may poll it, download its files or delete
//! it; to anyone else it does not exist.

use std::collections::{BTreeMap, HashSet};

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use chrono::{DateTime, Utc};
use custodian_access::{Caller, Interaction};
use custodian_events::AccessEvent;
use custodian_fhir::{dates::format_instant, FhirError, OperationOutcome};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{json, Value};
use uuid::Uuid;

use super::search::{decide_each, decide_each_as, scope_query, Scoped, Tally};
use crate::{
    domain::ResourceType,
    error::RecordsError,
    exports::{self, JobStatus},
    search::{Handling, SearchQuery},
    state::AppState,
    store,
};

/// The formats `_outputFormat` may name: all NDJSON.
const OUTPUT_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];
/// Resources searched per page of a job.
const PAGE: usize = 500;
/// Resources per NDJSON part at most.
const PART_RESOURCES: usize = 10_000;
/// Search result parameters a `_typeFilter` cannot use (an export takes every match).
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_offset",
    "_cursor",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_total",
    "_elements",
    "_format",
];

/// What is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Level {
    System,
    /// Every patient compartment the caller may see.
    Patients,
    /// The compartments of a group's members.
    Group(String),
}

/// A parsed kick-off.
#[derive(Debug, Clone)]
struct Plan {
    level: Level,
    /// Empty: every type holding data.
    types: Vec<String>,
    since: Option<DateTime<Utc>>,
    /// Per type, its filters (each a search; several OR).
    filters: BTreeMap<String, Vec<Vec<(String, String)>>>,
}

fn bad(message: impl Into<String>) -> FhirError {
    FhirError::BadRequest(message.into())
}

/// `_typeFilter` values: `Type?query`, several separated by commas (a comma inside a query
/// belongs to it).
fn split_type_filters(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in raw.split(',') {
        let starts_filter = piece
            .split_once('?')
            .is_some_and(|(t, _)| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphabetic()));
        match out.last_mut() {
            Some(last) if !starts_filter => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

impl Plan {
    fn parse(
        level: Level,
        pairs: &[(String, String)],
        handling: Handling,
    ) -> Result<Self, FhirError> {
        let mut plan = Plan {
            level,
            types: Vec::new(),
            since: None,
            filters: BTreeMap::new(),
        };
        for (name, value) in pairs {
            match name.as_str() {
                "_outputFormat" => {
                    if !OUTPUT_FORMATS.contains(&value.as_str()) {
                        return Err(bad(format!(
                            "_outputFormat={value} is not served; exports are NDJSON (application/fhir+ndjson)"
                        )));
                    }
                }
                "_since" => {
                    let (start, _) = custodian_fhir::dates::parse_range(value)
                        .filter(|_| value.contains('T'))
                        .ok_or_else(|| bad(format!("_since={value} is not a FHIR instant")))?;
                    plan.since = Some(start);
                }
                "_type" => {
                    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        let parsed = ResourceType::parse(t).map_err(|e| {
                            bad(format!(
                                "_type names {t:?}, which is not exported here: {e}"
                            ))
                        })?;
                        plan.types.push(parsed.as_str().to_string());
                    }
                }
                "_typeFilter" => {
                    for filter in split_type_filters(value) {
                        let (t, query) = filter.split_once('?').ok_or_else(|| {
                            bad(format!("_typeFilter {filter:?} is not Type?search"))
                        })?;
                        let t = ResourceType::parse(t)
                            .map_err(|e| bad(format!("_typeFilter {filter:?}: {e}")))?;
                        let search: Vec<(String, String)> =
                            form_urlencoded::parse(query.as_bytes())
                                .into_owned()
                                .filter(|(k, _)| !RESULT_PARAMS.contains(&k.as_str()))
                                .collect();
                        // Parsed now, so a bad filter is the kick-off's 400, not a failed job.
                        SearchQuery::parse(
                            crate::domain::search_params::Registry::global(),
                            t.as_str(),
                            &search,
                            Handling::Strict,
                        )?;
                        plan.filters
                            .entry(t.as_str().to_string())
                            .or_default()
                            .push(search);
                    }
                }
                // Answered in FHIR JSON, negotiated before the route.
                "_format" => {}
                other => {
                    if handling == Handling::Strict {
                        return Err(bad(format!(
                            "the export parameter {other:?} is not supported (_outputFormat, _since, _type, _typeFilter)"
                        )));
                    }
                }
            }
        }
        if let Some(t) = plan
            .filters
            .keys()
            .find(|t| !plan.types.is_empty() && !plan.types.contains(t))
        {
            return Err(bad(format!(
                "_typeFilter names {t}, which _type leaves out"
            )));
        }
        Ok(plan)
    }
}

/// The parameters of a kick-off: its query string, and for a POST the `Parameters` body.
fn kickoff_pairs(req: &HttpRequest, body: &[u8]) -> Result<Vec<(String, String)>, FhirError> {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    if body.is_empty() {
        return Ok(pairs);
    }
    custodian_fhir::http::require_json(req)?;
    let parameters: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    if parameters["resourceType"] != "Parameters" {
        return Err(bad("a POST kick-off takes a Parameters resource"));
    }
    for p in parameters["parameter"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default();
        let value = ["valueString", "valueInstant", "valueCode", "valueUri"]
            .iter()
            .find_map(|k| p[*k].as_str());
        match (name, value) {
            ("", _) => return Err(bad("a parameter without a name")),
            (name, Some(value)) => pairs.push((name.to_string(), value.to_string())),
            (name, None) => return Err(bad(format!("parameter {name} has no value"))),
        }
    }
    Ok(pairs)
}

fn status_url(state: &AppState, job: Uuid) -> String {
    format!("{}/fhir/$export-status/{job}", state.public_url)
}

fn respond_async(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// A group's members that are patients (`Group.member.entity`), as `Patient/{id}`, when the
/// caller may see the group; none otherwise (the group is then answered as unknown).
async fn group_members(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Option<Vec<String>>, RecordsError> {
    let rows = store::current_rows(conn, "Group", &[id.to_string()]).await?;
    let mut tally = Tally::default();
    let mut entries = Vec::new();
    let mut budget = 1;
    let permitted = decide_each(
        state,
        conn,
        caller,
        "Group",
        rows,
        "match",
        &mut budget,
        &mut tally,
        &mut entries,
    )
    .await?;
    state.record(conn, &tally.events(caller)).await?;
    let Some(entry) = entries.first().filter(|_| !permitted.is_empty()) else {
        return Ok(None);
    };
    let group: Value = entry
        .resource
        .as_ref()
        .map(|r| serde_json::from_str(r.get()))
        .transpose()
        .map_err(|e| RecordsError::Internal(e.to_string()))?
        .unwrap_or_default();
    let members = group["member"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["entity"]["reference"].as_str())
        .filter_map(|r| r.rfind("Patient/").map(|at| r[at..].to_string()))
        .collect();
    Ok(Some(members))
}

/// Kick-off of a system-level export.
#[utoipa::path(
    get,
    path = "/fhir/$export",
    tag = "fhir",
    params(
        ("_type" = Option<String>, Query, description = "types to export, comma-separated (default: every type holding data)"),
        ("_since" = Option<String>, Query, description = "only resources changed after this instant"),
        ("_typeFilter" = Option<String>, Query, description = "Type?search, comma-separated: only matching resources of that type"),
        ("_outputFormat" = Option<String>, Query, description = "application/fhir+ndjson (the default and only format)"),
        ("Prefer" = String, Header, description = "respond-async (required)"),
    ),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: no Prefer: respond-async, or a bad parameter"),
        (status = 401, description = "No valid token"),
    ),
    security(("bearer" = []))
)]
pub async fn system(
    req: HttpRequest,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &body, Level::System, caller, state).await
}

/// Kick-off of an export of every patient compartment the caller may see.
#[utoipa::path(
    get,
    path = "/fhir/Patient/$export",
    tag = "fhir",
    params(("Prefer" = String, Header, description = "respond-async (required)")),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: a bad parameter"),
    ),
    security(("bearer" = []))
)]
pub async fn patients(
    req: HttpRequest,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &body, Level::Patients, caller, state).await
}

/// Kick-off of an export of a group's members' compartments.
#[utoipa::path(
    get,
    path = "/fhir/Group/{id}/$export",
    tag = "fhir",
    params(("id" = String, Path), ("Prefer" = String, Header, description = "respond-async (required)")),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 404, description = "No such group the caller may see"),
    ),
    security(("bearer" = []))
)]
pub async fn group(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &body, Level::Group(path.into_inner()), caller, state).await
}

async fn kickoff(
    req: &HttpRequest,
    body: &[u8],
    level: Level,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    if !respond_async(req) {
        return Err(bad("a bulk export is asynchronous: send Prefer: respond-async").into());
    }
    let handling = custodian_fhir::http::Prefer::of(req).handling;
    let plan = Plan::parse(level, &kickoff_pairs(req, body)?, handling)?;
    let mut conn = state.connection().await?;
    let members = match &plan.level {
        Level::Group(id) => match group_members(&mut conn, &state, &caller, id).await? {
            Some(members) => Some(members),
            None => {
                return Err(FhirError::NotFound(format!("Group/{id} is not known")).into());
            }
        },
        _ => None,
    };
    let job = Uuid::new_v4();
    let request_url = format!("{}{}", state.public_url, req.uri());
    exports::create_job(
        &mut conn,
        job,
        &caller.claims.sub,
        &request_url,
        chrono::Utc::now(),
    )
    .await?;
    drop(conn);
    let runner = state.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = run(&runner, &caller, job, &plan, members.as_deref()).await {
            let Ok(mut conn) = runner.connection().await else {
                tracing::error!(job = %job, error = %e, "bulk export failed");
                return;
            };
            match exports::find_job(&mut conn, job).await {
                // Its requester deleted it while it ran: nothing failed.
                Ok(None) => tracing::info!(job = %job, "bulk export deleted while running"),
                _ => {
                    tracing::error!(job = %job, error = %e, "bulk export failed");
                    let _ = exports::finish_job(
                        &mut conn,
                        job,
                        JobStatus::Failed,
                        Some("the export failed; kick it off again"),
                    )
                    .await;
                }
            }
        }
    });
    state.metrics.operation("export", "*", "ok");
    Ok(HttpResponse::Accepted()
        .insert_header((header::CONTENT_LOCATION, status_url(&state, job)))
        .finish())
}

/// The types a job goes through when `_type` names none: those holding data at its level.
async fn types_with_data(
    conn: &mut AsyncPgConnection,
    in_compartments: bool,
) -> Result<Vec<String>, RecordsError> {
    let types = exports::types_in_use(conn, in_compartments).await?;
    Ok(types
        .into_iter()
        .filter(|t| ResourceType::parse(t).is_ok())
        .collect())
}

/// One NDJSON part being filled.
struct PartWriter {
    resource_type: String,
    lines: Vec<u8>,
    count: usize,
    seq: i32,
}

impl PartWriter {
    async fn flush(
        &mut self,
        conn: &mut AsyncPgConnection,
        state: &AppState,
        job: Uuid,
    ) -> Result<(), RecordsError> {
        if self.count == 0 {
            return Ok(());
        }
        self.seq += 1;
        let count = i32::try_from(self.count).unwrap_or(i32::MAX);
        exports::add_part(
            conn,
            &state.cipher,
            job,
            self.seq,
            &self.resource_type,
            count,
            &self.lines,
        )
        .await?;
        self.lines.clear();
        self.count = 0;
        Ok(())
    }
}

async fn run(
    state: &AppState,
    caller: &Caller,
    job: Uuid,
    plan: &Plan,
    members: Option<&[String]>,
) -> Result<(), RecordsError> {
    let mut conn = state.connection().await?;
    let in_compartments = plan.level != Level::System;
    let types = if plan.types.is_empty() {
        types_with_data(&mut conn, in_compartments).await?
    } else {
        plan.types.clone()
    };
    let mut tally = Tally::default();
    let mut refusals: Vec<AccessEvent> = Vec::new();
    let mut part = PartWriter {
        resource_type: String::new(),
        lines: Vec::new(),
        count: 0,
        seq: 0,
    };
    let mut exported = 0usize;
    for t in &types {
        part.resource_type.clone_from(t);
        let unfiltered = vec![Vec::new()];
        let filters = plan.filters.get(t).unwrap_or(&unfiltered);
        // Several filters OR: a resource matching two is exported once.
        let mut seen: HashSet<String> = HashSet::new();
        for filter in filters {
            let mut pairs = filter.clone();
            if let Some(since) = plan.since {
                pairs.push((
                    "_lastUpdated".into(),
                    format!("gt{}", format_instant(since)),
                ));
            }
            let mut query = SearchQuery::parse(state.registry, t, &pairs, Handling::Strict)?;
            if in_compartments {
                query.within_compartments(members);
            }
            match scope_query(&mut conn, state, caller, t, &mut query).await? {
                Scoped::Visible { .. } => {}
                Scoped::Denied { event, .. } => {
                    refusals.push(*event);
                    continue;
                }
            }
            loop {
                let page = query.page(&mut conn, 0, PAGE).await?;
                let Some(last) = page.last() else {
                    break;
                };
                query.continue_after(last.last_updated, &last.resource_id);
                let full = page.len() == PAGE;
                let ids: Vec<String> = page
                    .into_iter()
                    .map(|m| m.resource_id)
                    .filter(|id| seen.insert(id.clone()))
                    .collect();
                let rows = store::current_rows(&mut conn, t, &ids).await?;
                let mut entries = Vec::new();
                let mut budget = usize::MAX;
                decide_each_as(
                    Interaction::Export,
                    state,
                    &mut conn,
                    caller,
                    t,
                    rows,
                    "match",
                    &mut budget,
                    &mut tally,
                    &mut entries,
                )
                .await?;
                for entry in entries {
                    if let Some(resource) = entry.resource {
                        part.lines.extend_from_slice(resource.get().as_bytes());
                        part.lines.push(b'\n');
                        part.count += 1;
                        exported += 1;
                    }
                    if part.count >= PART_RESOURCES {
                        part.flush(&mut conn, state, job).await?;
                    }
                }
                exports::set_progress(&mut conn, job, &format!("{t}: {exported} resources so far"))
                    .await?;
                if !full {
                    break;
                }
            }
        }
        part.flush(&mut conn, state, job).await?;
    }
    let mut patients = tally.patients();
    patients.sort();
    patients.dedup();
    let mut events = tally.export_events(caller);
    events.extend(refusals);
    let finished = conn
        .transaction::<bool, RecordsError, _>(async |conn| {
            // A patient in it erased meanwhile: her data must not be handed out.
            if exports::any_erased(conn, &patients).await? {
                exports::finish_job(
                    conn,
                    job,
                    JobStatus::Failed,
                    Some("a patient's record was erased while the export ran; kick it off again"),
                )
                .await?;
                exports::delete_parts(conn, job).await?;
                return Ok(false);
            }
            // Deleted meanwhile: nothing was handed out, nothing to record.
            if !exports::finish_job(conn, job, JobStatus::Complete, None).await? {
                return Ok(false);
            }
            exports::add_job_patients(conn, job, &patients).await?;
            state.enqueue_events(conn, &events).await?;
            Ok(true)
        })
        .await?;
    if finished {
        state.relay.wake();
    }
    Ok(())
}

/// The job `raw` names, when it is the caller's.
async fn own_job(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    raw: &str,
) -> Result<exports::Job, RecordsError> {
    let unknown = || FhirError::NotFound(format!("no export job {raw}"));
    let id = Uuid::parse_str(raw).map_err(|_| unknown())?;
    match exports::find_job(conn, id).await? {
        Some(job) if job.requester == caller.claims.sub => Ok(job),
        _ => Err(unknown().into()),
    }
}

/// Polls a job: 202 while it runs, the manifest when complete.
#[utoipa::path(
    get,
    path = "/fhir/$export-status/{job}",
    tag = "fhir",
    params(("job" = String, Path)),
    responses(
        (status = 200, description = "Complete: the manifest (application/json)"),
        (status = 202, description = "In progress; X-Progress says how far"),
        (status = 404, description = "No such job of the caller's"),
        (status = 500, description = "The job failed: OperationOutcome"),
    ),
    security(("bearer" = []))
)]
pub async fn status(
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let mut conn = state.connection().await?;
    exports::fail_interrupted(&mut conn).await?;
    let job = own_job(&mut conn, &caller, &path).await?;
    match job.status {
        JobStatus::InProgress => Ok(HttpResponse::Accepted()
            .insert_header(("X-Progress", job.progress.clone()))
            .insert_header((header::RETRY_AFTER, "1"))
            .finish()),
        JobStatus::Failed => Ok(
            custodian_fhir::http::fhir(StatusCode::INTERNAL_SERVER_ERROR).body(
                OperationOutcome::single(
                    "error",
                    "exception",
                    job.error.as_deref().unwrap_or("the export failed"),
                )
                .to_string(),
            ),
        ),
        JobStatus::Complete => {
            let parts = exports::parts(&mut conn, job.id).await?;
            let output: Vec<Value> = parts
                .iter()
                .map(|p| {
                    json!({
                        "type": p.resource_type,
                        "url": format!("{}/fhir/$export-file/{}/{}", state.public_url, job.id, p.seq),
                        "count": p.resources,
                    })
                })
                .collect();
            let manifest = json!({
                "transactionTime": format_instant(job.transaction_time),
                "request": job.request_url,
                "requiresAccessToken": true,
                "output": output,
                "error": [],
            });
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body(manifest.to_string()))
        }
    }
}

/// Cancels a running job or removes a finished one (and its files).
#[utoipa::path(
    delete,
    path = "/fhir/$export-status/{job}",
    tag = "fhir",
    params(("job" = String, Path)),
    responses(
        (status = 202, description = "Deleted"),
        (status = 404, description = "No such job of the caller's"),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let mut conn = state.connection().await?;
    let job = own_job(&mut conn, &caller, &path).await?;
    exports::delete_job(&mut conn, job.id).await?;
    Ok(custodian_fhir::http::fhir(StatusCode::ACCEPTED)
        .body(OperationOutcome::information(&format!("export {} deleted", job.id)).to_string()))
}

/// One NDJSON file of a complete job.
#[utoipa::path(
    get,
    path = "/fhir/$export-file/{job}/{part}",
    tag = "fhir",
    params(("job" = String, Path), ("part" = i32, Path)),
    responses(
        (status = 200, description = "NDJSON (application/fhir+ndjson)"),
        (status = 404, description = "No such file of the caller's"),
    ),
    security(("bearer" = []))
)]
pub async fn file(
    path: web::Path<(String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_job, raw_part) = path.into_inner();
    let mut conn = state.connection().await?;
    let job = own_job(&mut conn, &caller, &raw_job).await?;
    let missing = || FhirError::NotFound(format!("no file {raw_part} in export {raw_job}"));
    if job.status != JobStatus::Complete {
        return Err(missing().into());
    }
    let seq: i32 = raw_part.parse().map_err(|_| missing())?;
    let body = exports::part_body(&mut conn, &state.cipher, job.id, seq)
        .await?
        .ok_or_else(missing)?;
    Ok(HttpResponse::Ok()
        .content_type("application/fhir+ndjson")
        .body(body))
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
    fn type_filters_split_where_a_new_type_starts() {
        assert_eq!(
            split_type_filters(
                "Observation?code=a,b&status=final,Condition?clinical-status=active"
            ),
            vec![
                "Observation?code=a,b&status=final".to_string(),
                "Condition?clinical-status=active".to_string()
            ]
        );
    }

    #[test]
    fn plans_parse_and_refuse_what_cannot_be_exported() {
        let plan = Plan::parse(
            Level::System,
            &pairs(&[
                ("_type", "Patient,Observation"),
                ("_since", "2026-01-01T00:00:00Z"),
                ("_typeFilter", "Observation?code=http://loinc.org|8867-4"),
                ("_outputFormat", "application/fhir+ndjson"),
            ]),
            Handling::Lenient,
        )
        .unwrap();
        assert_eq!(plan.types, vec!["Patient", "Observation"]);
        assert!(plan.since.is_some());
        assert_eq!(plan.filters["Observation"].len(), 1);
        for bad in [
            [("_outputFormat", "text/csv")],
            [("_type", "Nonsense")],
            [("_since", "2026-01-01")],
            [("_typeFilter", "Observation?colour=red")],
            [("_typeFilter", "code=x")],
        ] {
            assert!(
                Plan::parse(Level::System, &pairs(&bad), Handling::Lenient).is_err(),
                "{bad:?}"
            );
        }
        assert!(Plan::parse(
            Level::System,
            &pairs(&[("_type", "Patient"), ("_typeFilter", "Observation?code=x")]),
            Handling::Lenient
        )
        .is_err());
        assert!(Plan::parse(
            Level::System,
            &pairs(&[("elements", "x")]),
            Handling::Strict
        )
        .is_err());
        assert!(Plan::parse(
            Level::System,
            &pairs(&[("elements", "x")]),
            Handling::Lenient
        )
        .is_ok());
    }
}
