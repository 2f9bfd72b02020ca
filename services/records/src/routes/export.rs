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
//! The kick-off takes its parameters from the URL (GET) or a `Parameters` body (POST): `_type`,
//! `_since`, `_typeFilter`, `_outputFormat`, `_elements` (`element` or `Type.element`: the
//! output keeps those and the mandatory elements, tagged `SUBSETTED`), and at Patient and Group
//! level `patient` (references; each decided as an export of her Patient resource before the
//! job exists: an unknown one and one the caller may not see are the same 404).
//! `includeAssociatedData` names no data set served here: refused under
//! `Prefer: handling=strict`, otherwise ignored, like unknown parameters, and each said in an
//! OperationOutcome of the manifest's `error` file.
//!
//! Polling the status URL: 202 with `X-Progress` while running, 200 with the manifest when
//! complete, an `OperationOutcome` when failed; `DELETE` on it cancels or removes the job.
//! Only the token subject that kicked a job off may poll it, download its files or delete
//! it; to anyone else it does not exist. A finished job is served for the configured
//! retention (`Expires` on the manifest and files), then answers 404 and is swept away
//! ([`exports::sweep`]).

use std::{
    collections::{BTreeMap, HashSet},
    time::SystemTime,
};

use actix_web::{
    http::{
        header::{self, Expires, HttpDate},
        StatusCode,
    },
    web, HttpRequest, HttpResponse, HttpResponseBuilder,
};
use chrono::{DateTime, Utc};
use custodian_access::{absent_event, Caller, Interaction, PatientRef, Touched};
use custodian_events::AccessEvent;
use custodian_fhir::{dates::format_instant, elements, FhirError, OperationOutcome};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    parameters,
    search::{decide_each, decide_each_as, decide_row, scope_query, Scoped, Tally},
};
use crate::{
    access::{custodians_of, hidden, not_known},
    domain::{resource::Fields, ResourceType},
    error::RecordsError,
    exports::{self, JobStatus, PartKind},
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
    /// `patient`: only these compartments (empty: no restriction).
    patients: Vec<PatientRef>,
    /// `_elements`.
    elements: Option<ElementNames>,
    /// What a lenient kick-off ignored, one message per parameter (the manifest's `error`).
    ignored: Vec<String>,
}

/// `_elements`: names for every type, and `Type.element` names for one type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ElementNames {
    all: Vec<String>,
    by_type: BTreeMap<String, Vec<String>>,
}

impl ElementNames {
    /// Adds the names of one `_elements` value (comma-separated).
    fn add(&mut self, raw: &str) -> Result<(), FhirError> {
        let is_name = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric());
        for item in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match item.split_once('.') {
                None if is_name(item) => self.all.push(item.to_string()),
                Some((t, name)) if is_name(name) => {
                    let t = ResourceType::parse(t)
                        .map_err(|e| bad(format!("_elements: {item:?}: {e}")))?;
                    self.by_type
                        .entry(t.as_str().to_string())
                        .or_default()
                        .push(name.to_string());
                }
                _ => {
                    return Err(bad(format!(
                    "_elements: {item:?} is not a top-level element name (element or Type.element)"
                )))
                }
            }
        }
        Ok(())
    }

    /// The names that apply to `resource_type`; `None` when none does (its resources are
    /// exported whole, as when `_elements` only names other types' elements).
    fn of(&self, resource_type: &str) -> Option<Vec<String>> {
        let own = self.by_type.get(resource_type);
        if self.all.is_empty() && own.is_none() {
            return None;
        }
        Some(
            self.all
                .iter()
                .chain(own.into_iter().flatten())
                .cloned()
                .collect(),
        )
    }
}

/// `resource` (stored JSON text) with only `names` and the elements every subset keeps, tagged
/// `SUBSETTED` ([`elements::subset`] decides), each kept element as its stored text (decimals
/// keep their form).
fn subset_text(resource: &str, names: &[String]) -> Result<String, RecordsError> {
    let internal = |e: serde_json::Error| RecordsError::Internal(e.to_string());
    let value: Value = serde_json::from_str(resource).map_err(internal)?;
    let kept = elements::subset(&value, None, Some(names));
    let Fields(fields) = serde_json::from_str(resource).map_err(internal)?;
    let mut out = String::with_capacity(resource.len());
    let mut meta_written = false;
    let push = |out: &mut String, key: &str, text: &str| {
        out.push(if out.is_empty() { '{' } else { ',' });
        out.push_str(&Value::String(key.to_string()).to_string());
        out.push(':');
        out.push_str(text);
    };
    for (key, raw) in &fields {
        if key == "meta" {
            // Rewritten: it carries the SUBSETTED tag now.
            push(&mut out, key, &kept["meta"].to_string());
            meta_written = true;
        } else if kept.get(key).is_some() {
            push(&mut out, key, raw.get());
        }
    }
    if !meta_written {
        push(&mut out, "meta", &kept["meta"].to_string());
    }
    out.push('}');
    Ok(out)
}

/// A `patient` reference: `Patient/{id}`, or this server's absolute URL of one.
fn patient_reference(raw: &str, base: &str) -> Result<PatientRef, FhirError> {
    let raw = raw.trim();
    let local = raw
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix("/fhir/"))
        .unwrap_or(raw);
    PatientRef::parse(local).map_err(|e| bad(format!("patient: {e}")))
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
    /// `base`: the public URL, which absolute `patient` references start with.
    fn parse(
        level: Level,
        pairs: &[(String, String)],
        handling: Handling,
        base: &str,
    ) -> Result<Self, FhirError> {
        let mut plan = Plan {
            level,
            types: Vec::new(),
            since: None,
            filters: BTreeMap::new(),
            patients: Vec::new(),
            elements: None,
            ignored: Vec::new(),
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
                            &crate::search::store(custodian_fhir_search::Registry::global()),
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
                "_elements" => plan.elements.get_or_insert_default().add(value)?,
                "patient" => {
                    // Refused whatever the handling, like a `_type` or `_typeFilter` that cannot
                    // be honoured: ignoring it would export every patient instead of those asked.
                    if plan.level == Level::System {
                        return Err(bad(
                            "patient applies to Patient and Group level exports (/fhir/Patient/$export, /fhir/Group/{id}/$export), not to a system export",
                        ));
                    }
                    let named: Vec<&str> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|r| !r.is_empty())
                        .collect();
                    if named.is_empty() {
                        return Err(bad("patient names no patient"));
                    }
                    for raw in named {
                        let patient = patient_reference(raw, base)?;
                        if !plan.patients.contains(&patient) {
                            plan.patients.push(patient);
                        }
                    }
                }
                "includeAssociatedData" => {
                    if handling == Handling::Strict {
                        return Err(bad(format!(
                            "includeAssociatedData={value} is not supported: no associated data set (LatestProvenanceResources, RelevantProvenanceResources or a custom one) is served here"
                        )));
                    }
                    plan.ignored.push(format!(
                        "includeAssociatedData={value} is not supported and was ignored"
                    ));
                }
                // Answered in FHIR JSON, negotiated before the route.
                "_format" => {}
                other => {
                    if handling == Handling::Strict {
                        return Err(bad(format!(
                            "the export parameter {other:?} is not supported (_outputFormat, _since, _type, _typeFilter, _elements, patient)"
                        )));
                    }
                    plan.ignored.push(format!(
                        "the export parameter {other:?} is not supported and was ignored"
                    ));
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

/// The parameters of a kick-off: its query string, and for a POST the `Parameters` body
/// (primitive values as the URL gives them; `patient` as a `valueReference`).
fn kickoff_pairs(req: &HttpRequest, body: &[u8]) -> Result<Vec<(String, String)>, FhirError> {
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(pairs);
    }
    custodian_fhir::http::require_json(req)?;
    for p in parameters::parse(body)? {
        let value = match p.kind.as_str() {
            "valueReference" if p.name == "patient" => p
                .value
                .get("reference")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad("patient: a valueReference needs a reference (Patient/<id>)"))?,
            _ => p.as_text()?,
        };
        pairs.push((p.name, value));
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
    path = "/fhir/$export", operation_id = "export_system",
    tag = "fhir",
    params(
        ("_type" = Option<String>, Query, description = "types to export, comma-separated (default: every type holding data)"),
        ("_since" = Option<String>, Query, description = "only resources changed after this instant"),
        ("_typeFilter" = Option<String>, Query, description = "Type?search, comma-separated: only matching resources of that type"),
        ("_outputFormat" = Option<String>, Query, description = "application/fhir+ndjson (the default and only format)"),
        ("_elements" = Option<String>, Query, description = "element or Type.element, comma-separated: only those and the mandatory elements, tagged SUBSETTED"),
        ("includeAssociatedData" = Option<String>, Query, description = "no value is supported: 400 under Prefer: handling=strict, otherwise ignored and reported in the manifest's error file"),
        ("Prefer" = String, Header, description = "respond-async (required); handling=strict refuses unsupported parameters"),
    ),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: no Prefer: respond-async, or a bad parameter (patient is refused at system level)"),
        (status = 401, description = "No valid token"),
    ),
    security(("smart" = []))
)]
pub async fn system(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &[], Level::System, caller, state).await
}

/// Kick-off of a system-level export with a `Parameters` body.
#[utoipa::path(
    post,
    path = "/fhir/$export", operation_id = "export_system_post",
    tag = "fhir",
    params(("Prefer" = String, Header, description = "respond-async (required); handling=strict refuses unsupported parameters")),
    request_body(content = serde_json::Value, content_type = "application/fhir+json", description = "Parameters: _type, _since (valueInstant), _typeFilter, _outputFormat, _elements, includeAssociatedData (each repeatable where the GET form takes a list)"),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: a bad parameter or body"),
        (status = 415, description = "The body is not application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn system_post(
    req: HttpRequest,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &body, Level::System, caller, state).await
}

/// Kick-off of an export of every patient compartment the caller may see (or of those
/// `patient` names).
#[utoipa::path(
    get,
    path = "/fhir/Patient/$export", operation_id = "export_patients",
    tag = "fhir",
    params(
        ("patient" = Option<String>, Query, description = "Patient/<id>, comma-separated: only these patients' compartments"),
        ("_type" = Option<String>, Query, description = "as for /fhir/$export"),
        ("_since" = Option<String>, Query, description = "as for /fhir/$export"),
        ("_typeFilter" = Option<String>, Query, description = "as for /fhir/$export"),
        ("_elements" = Option<String>, Query, description = "as for /fhir/$export"),
        ("includeAssociatedData" = Option<String>, Query, description = "as for /fhir/$export"),
        ("Prefer" = String, Header, description = "respond-async (required)"),
    ),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: a bad parameter"),
        (status = 404, description = "A patient named is unknown, or not one the caller may see"),
    ),
    security(("smart" = []))
)]
pub async fn patients(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &[], Level::Patients, caller, state).await
}

/// Kick-off of a Patient-level export with a `Parameters` body.
#[utoipa::path(
    post,
    path = "/fhir/Patient/$export", operation_id = "export_patients_post",
    tag = "fhir",
    params(("Prefer" = String, Header, description = "respond-async (required)")),
    request_body(content = serde_json::Value, content_type = "application/fhir+json", description = "Parameters: patient (valueReference, repeatable), _type, _since (valueInstant), _typeFilter, _outputFormat, _elements, includeAssociatedData"),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: a bad parameter or body"),
        (status = 404, description = "A patient named is unknown, or not one the caller may see"),
    ),
    security(("smart" = []))
)]
pub async fn patients_post(
    req: HttpRequest,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &body, Level::Patients, caller, state).await
}

/// Kick-off of an export of a group's members' compartments (or of those `patient` names).
#[utoipa::path(
    get,
    path = "/fhir/Group/{id}/$export", operation_id = "export_group",
    tag = "fhir",
    params(
        ("id" = String, Path),
        ("patient" = Option<String>, Query, description = "Patient/<id>, comma-separated: only these members' compartments"),
        ("_type" = Option<String>, Query, description = "as for /fhir/$export"),
        ("_since" = Option<String>, Query, description = "as for /fhir/$export"),
        ("_typeFilter" = Option<String>, Query, description = "as for /fhir/$export"),
        ("_elements" = Option<String>, Query, description = "as for /fhir/$export"),
        ("includeAssociatedData" = Option<String>, Query, description = "as for /fhir/$export"),
        ("Prefer" = String, Header, description = "respond-async (required)"),
    ),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: a bad parameter, or a patient not in the group"),
        (status = 404, description = "No such group the caller may see, or a patient named is unknown or hidden"),
    ),
    security(("smart" = []))
)]
pub async fn group(
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &[], Level::Group(path.into_inner()), caller, state).await
}

/// Kick-off of a Group-level export with a `Parameters` body.
#[utoipa::path(
    post,
    path = "/fhir/Group/{id}/$export", operation_id = "export_group_post",
    tag = "fhir",
    params(("id" = String, Path), ("Prefer" = String, Header, description = "respond-async (required)")),
    request_body(content = serde_json::Value, content_type = "application/fhir+json", description = "Parameters: patient (valueReference, repeatable), _type, _since (valueInstant), _typeFilter, _outputFormat, _elements, includeAssociatedData"),
    responses(
        (status = 202, description = "Accepted; Content-Location is the status URL"),
        (status = 400, description = "OperationOutcome: a bad parameter or body, or a patient not in the group"),
        (status = 404, description = "No such group the caller may see, or a patient named is unknown or hidden"),
    ),
    security(("smart" = []))
)]
pub async fn group_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    kickoff(&req, &body, Level::Group(path.into_inner()), caller, state).await
}

/// A patient a kick-off names, decided as an export of her Patient resource on its own facts
/// (as a read decides it): unknown, or hidden from the caller, she is the same 404 a read
/// answers (explained only where the deployment explains denials), and the refusal is
/// recorded as a refused export of her compartment, as the job records the ones it meets.
async fn visible_patient(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    patient: &PatientRef,
) -> Result<(), RecordsError> {
    let id = patient.id().to_string();
    let current = store::current_rows(conn, "Patient", std::slice::from_ref(&id))
        .await?
        .into_iter()
        .next()
        .map(|(_, current)| current);
    let body = match &current {
        Some(current) => store::current_bodies(
            conn,
            &state.cipher,
            "Patient",
            &[(id.clone(), current.version)],
        )
        .await?
        .remove(&id),
        None => None,
    };
    let (Some(current), Some(json)) = (current, body) else {
        state
            .record(
                conn,
                &[absent_event(caller, Interaction::Export, "Patient")],
            )
            .await?;
        return Err(not_known("Patient", &id).into());
    };
    let custodians = custodians_of(conn, &[patient]).await?;
    let (subject, decision) = decide_row(
        Interaction::Export,
        state,
        conn,
        caller,
        "Patient",
        &id,
        &current,
        &json,
        &custodians,
    )
    .await?;
    if decision.permitted() {
        return Ok(());
    }
    let event = decision.event(
        caller,
        Interaction::Export,
        Touched::new("Patient", subject.patient.as_ref())
            .confidentiality(subject.confidentiality.as_deref()),
    );
    state.record(conn, &[event]).await?;
    Err(hidden(state, &decision, "Patient", &id).into())
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
    let plan = Plan::parse(
        level,
        &kickoff_pairs(req, body)?,
        handling,
        &state.public_url,
    )?;
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
    for patient in &plan.patients {
        visible_patient(&mut conn, &state, &caller, patient).await?;
        if let (Level::Group(id), Some(members)) = (&plan.level, &members) {
            if !members.iter().any(|m| m == patient.as_str()) {
                return Err(bad(format!("{patient} is not a member of Group/{id}")).into());
            }
        }
    }
    // The compartments the job goes through: those named (members all, at Group level), else
    // the group's members, else every one the caller may see.
    let compartments = if plan.patients.is_empty() {
        members
    } else {
        Some(
            plan.patients
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
        )
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
        if let Err(e) = run(&runner, &caller, job, &plan, compartments.as_deref()).await {
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
                        runner.export_retention,
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
            PartKind::Output,
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

/// Runs a job through `compartments` (`None`: every one the caller may see, at Patient level)
/// and completes it.
async fn run(
    state: &AppState,
    caller: &Caller,
    job: Uuid,
    plan: &Plan,
    compartments: Option<&[String]>,
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
        let names = plan.elements.as_ref().and_then(|e| e.of(t));
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
            let mut query = SearchQuery::parse(&state.search_store(), t, &pairs, Handling::Strict)?;
            if in_compartments {
                query.within_compartments(compartments);
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
                        match &names {
                            Some(names) => part
                                .lines
                                .extend_from_slice(subset_text(resource.get(), names)?.as_bytes()),
                            None => part.lines.extend_from_slice(resource.get().as_bytes()),
                        }
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
    // What a lenient kick-off ignored: one OperationOutcome each, the manifest's `error`.
    if !plan.ignored.is_empty() {
        let mut lines = Vec::new();
        for message in &plan.ignored {
            let outcome = OperationOutcome::single("warning", "not-supported", message);
            lines.extend_from_slice(outcome.to_string().as_bytes());
            lines.push(b'\n');
        }
        part.seq += 1;
        exports::add_part(
            &mut conn,
            &state.cipher,
            job,
            part.seq,
            PartKind::Error,
            "OperationOutcome",
            i32::try_from(plan.ignored.len()).unwrap_or(i32::MAX),
            &lines,
        )
        .await?;
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
                    state.export_retention,
                )
                .await?;
                exports::delete_parts(conn, job).await?;
                return Ok(false);
            }
            // Deleted meanwhile: nothing was handed out, nothing to record.
            if !exports::finish_job(conn, job, JobStatus::Complete, None, state.export_retention)
                .await?
            {
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

/// The job `raw` names, when it is the caller's and has not expired.
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

/// `Expires`: when a finished job and its files stop being served.
fn expiring(mut response: HttpResponseBuilder, job: &exports::Job) -> HttpResponseBuilder {
    if let Some(at) = job.expires_at {
        response.insert_header(Expires(HttpDate::from(SystemTime::from(at))));
    }
    response
}

/// Polls a job: 202 while it runs, the manifest when complete (until it expires).
#[utoipa::path(
    get,
    path = "/fhir/$export-status/{job}", operation_id = "export_status",
    tag = "fhir",
    params(("job" = String, Path)),
    responses(
        (status = 200, description = "Complete: the manifest (application/json); Expires says until when it and its files are served"),
        (status = 202, description = "In progress; X-Progress says how far"),
        (status = 404, description = "No such job of the caller's, or it expired"),
        (status = 500, description = "The job failed: OperationOutcome"),
    ),
    security(("smart" = []))
)]
pub async fn status(
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let mut conn = state.connection().await?;
    exports::fail_interrupted(&mut conn, state.export_retention).await?;
    let job = own_job(&mut conn, &caller, &path).await?;
    match job.status {
        JobStatus::InProgress => Ok(HttpResponse::Accepted()
            .insert_header(("X-Progress", job.progress.clone()))
            .insert_header((header::RETRY_AFTER, "1"))
            .finish()),
        JobStatus::Failed => Ok(expiring(
            custodian_fhir::http::fhir(StatusCode::INTERNAL_SERVER_ERROR),
            &job,
        )
        .body(
            OperationOutcome::single(
                "error",
                "exception",
                job.error.as_deref().unwrap_or("the export failed"),
            )
            .to_string(),
        )),
        JobStatus::Complete => {
            let parts = exports::parts(&mut conn, job.id).await?;
            let list = |kind: PartKind| -> Vec<Value> {
                parts
                    .iter()
                    .filter(|p| p.kind() == kind)
                    .map(|p| {
                        json!({
                            "type": p.resource_type,
                            "url": format!("{}/fhir/$export-file/{}/{}", state.public_url, job.id, p.seq),
                            "count": p.resources,
                        })
                    })
                    .collect()
            };
            let manifest = json!({
                "transactionTime": format_instant(job.transaction_time),
                "request": job.request_url,
                "requiresAccessToken": true,
                "output": list(PartKind::Output),
                "error": list(PartKind::Error),
            });
            Ok(expiring(HttpResponse::Ok(), &job)
                .content_type("application/json")
                .body(manifest.to_string()))
        }
    }
}

/// Cancels a running job or removes a finished one (and its files).
#[utoipa::path(
    delete,
    path = "/fhir/$export-status/{job}", operation_id = "export_delete",
    tag = "fhir",
    params(("job" = String, Path)),
    responses(
        (status = 202, description = "Deleted"),
        (status = 404, description = "No such job of the caller's"),
    ),
    security(("smart" = []))
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
    path = "/fhir/$export-file/{job}/{part}", operation_id = "export_file",
    tag = "fhir",
    params(("job" = String, Path), ("part" = i32, Path)),
    responses(
        (status = 200, description = "NDJSON (application/fhir+ndjson); Expires says until when it is served"),
        (status = 404, description = "No such file of the caller's, or its job expired"),
    ),
    security(("smart" = []))
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
    Ok(expiring(HttpResponse::Ok(), &job)
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
            BASE,
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
                Plan::parse(Level::System, &pairs(&bad), Handling::Lenient, BASE).is_err(),
                "{bad:?}"
            );
        }
        assert!(Plan::parse(
            Level::System,
            &pairs(&[("_type", "Patient"), ("_typeFilter", "Observation?code=x")]),
            Handling::Lenient,
            BASE
        )
        .is_err());
        assert!(Plan::parse(
            Level::System,
            &pairs(&[("elements", "x")]),
            Handling::Strict,
            BASE
        )
        .is_err());
        assert!(Plan::parse(
            Level::System,
            &pairs(&[("elements", "x")]),
            Handling::Lenient,
            BASE
        )
        .is_ok_and(|p| p.ignored.len() == 1));
    }

    const BASE: &str = "https://fhir.example";

    #[test]
    fn patients_are_references_at_patient_and_group_level_only() {
        let plan = Plan::parse(
            Level::Patients,
            &pairs(&[
                ("patient", "Patient/a, Patient/b"),
                ("patient", "https://fhir.example/fhir/Patient/a"),
                ("patient", "https://fhir.example/fhir/Patient/c"),
            ]),
            Handling::Strict,
            BASE,
        )
        .unwrap();
        let named: Vec<&str> = plan.patients.iter().map(PatientRef::as_str).collect();
        assert_eq!(named, vec!["Patient/a", "Patient/b", "Patient/c"]);
        for bad in [
            "Group/a",
            "a",
            "https://elsewhere.example/fhir/Patient/a",
            "Patient/a b",
            "",
        ] {
            let parsed = Plan::parse(
                Level::Group("g".into()),
                &pairs(&[("patient", bad)]),
                Handling::Lenient,
                BASE,
            );
            assert!(parsed.is_err(), "{bad:?}");
        }
        // Not at system level, whatever the handling: ignoring it would widen the export.
        for handling in [Handling::Strict, Handling::Lenient] {
            assert!(Plan::parse(
                Level::System,
                &pairs(&[("patient", "Patient/a")]),
                handling,
                BASE
            )
            .is_err());
        }
    }

    #[test]
    fn associated_data_is_refused_when_strict_and_reported_when_lenient() {
        let raw = pairs(&[("includeAssociatedData", "LatestProvenanceResources")]);
        assert!(Plan::parse(Level::System, &raw, Handling::Strict, BASE).is_err());
        let plan = Plan::parse(Level::System, &raw, Handling::Lenient, BASE).unwrap();
        assert_eq!(plan.ignored.len(), 1);
        assert!(plan.ignored[0].contains("includeAssociatedData"));
    }

    #[test]
    fn elements_apply_to_every_type_or_to_theirs() {
        let plan = Plan::parse(
            Level::System,
            &pairs(&[
                ("_elements", "status,Observation.value"),
                ("_elements", "Patient.name"),
            ]),
            Handling::Strict,
            BASE,
        )
        .unwrap();
        let names = plan.elements.unwrap();
        assert_eq!(names.of("Observation").unwrap(), vec!["status", "value"]);
        assert_eq!(names.of("Patient").unwrap(), vec!["status", "name"]);
        assert_eq!(names.of("Condition").unwrap(), vec!["status"]);
        let only = Plan::parse(
            Level::System,
            &pairs(&[("_elements", "Observation.code")]),
            Handling::Strict,
            BASE,
        )
        .unwrap()
        .elements
        .unwrap();
        assert_eq!(only.of("Patient"), None, "exported whole");
        for bad in [
            "Nonsense.code",
            "Observation.code.text",
            "a-b",
            "Observation.",
        ] {
            assert!(
                Plan::parse(
                    Level::System,
                    &pairs(&[("_elements", bad)]),
                    Handling::Lenient,
                    BASE
                )
                .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_subset_keeps_the_stored_text_of_what_it_keeps() {
        let stored = r#"{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"},"status":"final","code":{"text":"weight"},"valueQuantity":{"value":60.50},"note":[{"text":"x"}]}"#;
        let out = subset_text(stored, &["value".to_string()]).unwrap();
        assert!(out.starts_with(r#"{"resourceType":"Observation","id":"o1","meta":{"#));
        assert!(out.contains(r#""valueQuantity":{"value":60.50}"#), "{out}");
        let value: Value = serde_json::from_str(&out).unwrap();
        // Mandatory (status, code) kept, note left out, tagged.
        assert!(value.get("status").is_some() && value.get("code").is_some());
        assert!(value.get("note").is_none());
        assert_eq!(value["meta"]["versionId"], "1");
        assert_eq!(value["meta"]["tag"][0]["code"], "SUBSETTED");
    }
}
