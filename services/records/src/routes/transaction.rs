//! `POST /fhir` with a Bundle of type `transaction` (all or nothing, one database transaction)
//! or `batch` (each entry on its own). Entries may create (`POST Type`, conditionally with
//! `ifNoneExist`), update or create with an id (`PUT Type/id`, `ifMatch`), update
//! conditionally (`PUT Type?params`), delete (`DELETE Type/id`) and delete conditionally
//! (`DELETE Type?params`), patch (`PATCH Type/id` or `Type?params`, the patch a Binary
//! holding a JSON Patch or a FHIRPath Patch Parameters), change a resource's meta
//! (`POST Type/id/$meta-add|$meta-delete` with a Parameters, as `meta.rs` does), and read
//! (`GET`/`HEAD` of `Type/id`, `Type/id/_history/vid`, and their `$meta`), and search
//! (`GET Type?params`: the searchset Bundle as the entry's resource, lenient handling, what the
//! caller may see, its events recorded with the transaction's).
//!
//! Order (R4 http.html#trules): entries run DELETE, then POST, then PUT/PATCH, then GET/HEAD,
//! so a read sees what the transaction wrote; the response keeps the request's order.
//! Conditions (`ifNoneExist`, conditional URLs) are matched as `conditional.rs` matches them
//! (the caller's access inside the query), all before any entry is written: on the state
//! before the transaction; conditional creates with the same condition make or name one
//! resource (the first decides). Conditional references are resolved after the writes that
//! come before their entry (step 5: "resolve any conditional references"; HAPI FHIR resolves
//! them as it writes): one to a resource a DELETE of the transaction removed matches nothing,
//! one to a resource a POST made matches it. Two writes of a transaction that name the same
//! resource (after conditions are matched; a conditional create that matched names the match)
//! fail it with a 400, as the specification requires and HAPI FHIR does (HAPI-0535): which of
//! them wins would otherwise depend on this order.
//!
//! In a transaction, references to an entry's `fullUrl` (e.g. `urn:uuid:...`) are rewritten
//! to the `Type/id` the server assigned (for a conditional create that matched, the match's),
//! and conditional references (`Patient?identifier=s|v`) to the one resource they match (the
//! one a conditional create of the Bundle with that condition makes); none or several fail the
//! transaction with a 412. Access control and events are per entry, exactly as for the single
//! interactions; a denied or failed entry fails the whole transaction and its event is still
//! recorded, as are the searches the matching made; the reads of a transaction that fails are
//! not (nothing was returned).

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use base64::{engine::general_purpose::STANDARD, Engine};
use custodian_access::Caller;
use custodian_events::AccessEvent;
use custodian_fhir::{exact_numbers, FhirError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use serde_json::{value::RawValue, Value};

use super::{
    apply::{self, Applied, WriteRequest},
    conditional::{self, Condition, Resolved},
    fhirpath_patch::FhirPatch,
    http,
    meta::{self, Changed, MetaChange},
    patch::{self, Patch},
    read::{self, Subset},
    write::{parse_body, prepare, Prepared},
};
use crate::{
    batch::Batch,
    domain::{
        resource::{format_instant, now_millis, IncomingResource},
        ResourceId, ResourceType, VersionId,
    },
    error::RecordsError,
    state::AppState,
    store,
};

#[derive(Deserialize)]
struct InBundle {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    entry: Vec<InEntry>,
}

#[derive(Deserialize)]
struct InEntry {
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    resource: Option<Box<RawValue>>,
    request: Option<InRequest>,
}

#[derive(Deserialize)]
struct InRequest {
    method: String,
    url: String,
    #[serde(rename = "ifMatch")]
    if_match: Option<String>,
    #[serde(rename = "ifNoneExist")]
    if_none_exist: Option<String>,
}

enum Op {
    Create {
        body: String,
        if_none_exist: Option<Condition>,
    },
    Update {
        body: String,
        expected: Option<i64>,
    },
    Delete {
        expected: Option<i64>,
    },
    /// A JSON Patch (a Binary) or a FHIRPath Patch (a Parameters).
    Patch {
        patch: Box<Patch>,
        expected: Option<i64>,
    },
    /// `$meta-add` or `$meta-delete`.
    Meta {
        change: meta::Change,
        wanted: MetaChange,
    },
    /// `GET [type]?params` (or `HEAD`): a search of what the caller may see, after the
    /// transaction's writes, recorded as any search is.
    Search {
        pairs: Vec<(String, String)>,
        head: bool,
    },
    /// `GET` or `HEAD` of a resource (a version when `version`), or of its `$meta`.
    Read {
        version: Option<VersionId>,
        meta: bool,
        head: bool,
        subset: Subset,
    },
}

struct Planned {
    index: usize,
    resource_type: ResourceType,
    /// For a conditional update or delete, a placeholder until the condition is matched.
    id: ResourceId,
    /// `PUT Type?params` or `DELETE Type?params`.
    condition: Option<Condition>,
    full_url: Option<String>,
    op: Op,
}

/// What matching an entry's condition decided.
#[derive(Clone, Copy)]
enum Resolution {
    /// Write (create, update or delete `id`).
    Write,
    /// A conditional create matched this version of an existing resource: nothing written.
    Existing(i64),
    /// A conditional create with the condition of an earlier one of its transaction: it names
    /// the resource that one makes or matches (this version of it), and writes nothing.
    Same(i64),
    /// A conditional delete matched nothing.
    Nothing,
}

impl Planned {
    /// Its place in the processing order (R4 http.html#trules): DELETE, POST, PUT/PATCH,
    /// GET/HEAD.
    fn order(&self) -> u8 {
        match self.op {
            Op::Delete { .. } => 0,
            Op::Create { .. } | Op::Meta { .. } => 1,
            Op::Update { .. } | Op::Patch { .. } => 2,
            Op::Read { .. } | Op::Search { .. } => 3,
        }
    }

    /// The resource it writes (or, for a conditional create that matched, names), if any.
    fn writes(&self, resolution: Resolution) -> Option<(&str, &str)> {
        match (&self.op, resolution) {
            (Op::Read { .. } | Op::Search { .. }, _)
            | (_, Resolution::Nothing | Resolution::Same(_)) => None,
            _ => Some((self.resource_type.as_str(), self.id.as_str())),
        }
    }
}

/// A parsed and validated entry, ready to write.
struct Ready {
    planned: Planned,
    resolution: Resolution,
    incoming: Option<IncomingResource>,
    prepared: Option<Prepared>,
}

fn entry_error(index: usize, e: FhirError) -> FhirError {
    match e {
        FhirError::BadRequest(m) => FhirError::BadRequest(format!("entry {index}: {m}")),
        FhirError::Unprocessable(issues) => FhirError::Unprocessable(
            issues
                .into_iter()
                .map(|(loc, m)| (format!("Bundle.entry[{index}].resource.{loc}"), m))
                .collect(),
        ),
        FhirError::NotFound(m) => FhirError::NotFound(format!("entry {index}: {m}")),
        other => other,
    }
}

fn parse_etag(raw: &str) -> Result<i64, FhirError> {
    let inner = raw
        .trim()
        .strip_prefix("W/")
        .unwrap_or(raw.trim())
        .trim_matches('"');
    inner
        .parse()
        .map_err(|_| FhirError::BadRequest(format!("ifMatch {raw:?} is not a version ETag")))
}

/// The patch of a PATCH entry: a Binary holding a JSON Patch, or a FHIRPath Patch Parameters.
fn patch_of(entry: &InEntry) -> Result<Patch, FhirError> {
    // Numbers kept as written (`exact_numbers`), as the PATCH interaction reads them.
    let resource: Value = entry
        .resource
        .as_ref()
        .and_then(|r| exact_numbers::parse(r.get().as_bytes()).ok())
        .ok_or_else(|| FhirError::BadRequest("a PATCH entry needs its patch as resource".into()))?;
    match resource.get("resourceType").and_then(Value::as_str) {
        Some("Binary") => {
            if resource.get("contentType").and_then(Value::as_str) != Some(patch::JSON_PATCH) {
                return Err(FhirError::BadRequest(format!(
                    "a PATCH entry's Binary must have contentType {}",
                    patch::JSON_PATCH
                )));
            }
            let data = resource
                .get("data")
                .and_then(Value::as_str)
                .and_then(|d| STANDARD.decode(d).ok())
                .ok_or_else(|| FhirError::BadRequest("the Binary's data is not base64".into()))?;
            exact_numbers::parse(&data)
                .map_err(|e| FhirError::BadRequest(format!("the Binary is not a JSON Patch: {e}")))
                .and_then(Patch::json_patch)
        }
        Some("Parameters") => FhirPatch::parse(&resource).map(Patch::Fhir),
        _ => Err(FhirError::BadRequest(
            "a PATCH entry's resource is a Binary (JSON Patch) or a Parameters (FHIRPath Patch)"
                .into(),
        )),
    }
}

fn plan(state: &AppState, index: usize, entry: &InEntry) -> Result<Planned, FhirError> {
    let request = entry
        .request
        .as_ref()
        .ok_or_else(|| FhirError::BadRequest("entry has no request".into()))?;
    let prefix = format!("{}/fhir/", state.public_url);
    let url = request
        .url
        .strip_prefix(&prefix)
        .unwrap_or(&request.url)
        .trim_start_matches('/');
    let method = request.method.to_ascii_uppercase();
    let reading = matches!(method.as_str(), "GET" | "HEAD");
    // A read's query is `_summary`/`_elements`; any other method's is a condition.
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    let condition = match query {
        Some(_) if !reading => Some(Condition::parse(path, url)?),
        _ => None,
    };
    let read = |version: Option<&str>, meta: bool| -> Result<Op, FhirError> {
        Ok(Op::Read {
            version: version
                .map(VersionId::parse)
                .transpose()
                .map_err(|e| FhirError::NotFound(e.to_string()))?,
            meta,
            head: method == "HEAD",
            subset: Subset::parse(query.unwrap_or_default())?,
        })
    };
    let parts: Vec<&str> = path.split('/').collect();
    let body = || {
        entry
            .resource
            .as_ref()
            .map(|r| r.get().to_string())
            .ok_or_else(|| FhirError::BadRequest("entry has no resource".into()))
    };
    let expected = request.if_match.as_deref().map(parse_etag).transpose()?;
    let (resource_type, id, op) = match (method.as_str(), parts.as_slice(), &condition) {
        ("POST", [t], None) => {
            let resource_type = http::parse_type(t)?;
            let if_none_exist = request
                .if_none_exist
                .as_deref()
                .map(|c| Condition::parse(resource_type.as_str(), c))
                .transpose()?;
            (
                resource_type,
                ResourceId::generate(),
                Op::Create {
                    body: body()?,
                    if_none_exist,
                },
            )
        }
        ("PUT", [t], Some(_)) => (
            http::parse_type(t)?,
            ResourceId::generate(),
            Op::Update {
                body: body()?,
                expected,
            },
        ),
        ("DELETE", [t], Some(_)) => (
            http::parse_type(t)?,
            ResourceId::generate(),
            Op::Delete { expected },
        ),
        ("PUT", [t, id], None) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            Op::Update {
                body: body()?,
                expected,
            },
        ),
        ("DELETE", [t, id], None) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            Op::Delete { expected },
        ),
        ("PATCH", [t, id], None) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            Op::Patch {
                patch: Box::new(patch_of(entry)?),
                expected,
            },
        ),
        ("PATCH", [t], Some(_)) => (
            http::parse_type(t)?,
            ResourceId::generate(),
            Op::Patch {
                patch: Box::new(patch_of(entry)?),
                expected,
            },
        ),
        ("POST", [t, id, op @ ("$meta-add" | "$meta-delete")], None) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            Op::Meta {
                change: if *op == "$meta-add" {
                    meta::Change::Add
                } else {
                    meta::Change::Delete
                },
                wanted: MetaChange::parse(body()?.as_bytes())?,
            },
        ),
        ("GET" | "HEAD", [t, id], None) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            read(None, false)?,
        ),
        ("GET" | "HEAD", [t, id, "$meta"], None) => {
            (http::parse_type(t)?, http::parse_id(id)?, read(None, true)?)
        }
        ("GET" | "HEAD", [t, id, "_history", v], None) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            read(Some(v), false)?,
        ),
        ("GET" | "HEAD", [t, id, "_history", v, "$meta"], None) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            read(Some(v), true)?,
        ),
        ("GET" | "HEAD", [t], None) => (
            http::parse_type(t)?,
            ResourceId::generate(),
            Op::Search {
                pairs: form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect(),
                head: method == "HEAD",
            },
        ),
        (method, _, _) => {
            return Err(FhirError::BadRequest(format!(
                "{method} {} is not supported in a Bundle",
                request.url
            )))
        }
    };
    Ok(Planned {
        index,
        resource_type,
        id,
        condition,
        full_url: entry.full_url.clone(),
        op,
    })
}

fn ready(
    state: &AppState,
    planned: Planned,
    resolution: Resolution,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Ready, FhirError> {
    let body = match (&planned.op, resolution) {
        (Op::Create { body, .. } | Op::Update { body, .. }, Resolution::Write) => body,
        _ => {
            return Ok(Ready {
                planned,
                resolution,
                incoming: None,
                prepared: None,
            })
        }
    };
    let incoming = parse_body(body.as_bytes(), &planned.resource_type)?;
    if let Op::Update { .. } = planned.op {
        let conditional_without_id = planned.condition.is_some() && incoming.id().is_none();
        if !conditional_without_id && incoming.id().as_deref() != Some(planned.id.as_str()) {
            return Err(FhirError::BadRequest(
                "the resource's id must equal the request URL's".into(),
            ));
        }
    }
    let prepared = prepare(
        state,
        &incoming,
        &planned.resource_type,
        planned.id.as_str(),
        now,
    )?;
    Ok(Ready {
        planned,
        resolution,
        incoming: Some(incoming),
        prepared: Some(prepared),
    })
}

/// How one entry ended.
struct Answer {
    index: usize,
    status: String,
    location: Option<String>,
    etag: Option<String>,
    /// When the resource returned was last updated (else the time of the answer).
    last_modified: Option<chrono::DateTime<chrono::Utc>>,
    outcome: Option<Value>,
    /// The resource a read returns, as stored (its decimals as written).
    resource: Option<String>,
    /// A read's or a search's events, recorded with the transaction.
    reads: Vec<AccessEvent>,
    /// Membership changes of the entry, for the replica once committed.
    memberships: Vec<custodian_events::MembershipChange>,
}

impl Answer {
    fn new(index: usize, status: &str) -> Self {
        Answer {
            index,
            status: status.to_string(),
            location: None,
            etag: None,
            last_modified: None,
            outcome: None,
            resource: None,
            reads: Vec::new(),
            memberships: Vec::new(),
        }
    }
}

enum Failure {
    Records(RecordsError),
    Denied(usize, Box<AccessEvent>, FhirError),
    /// Refused, with the events to record once the transaction is over (a missing resource,
    /// a search refused).
    Refused(usize, FhirError, Vec<AccessEvent>),
    /// Failed (not a refusal), with the event to record once the transaction is over.
    Failed(RecordsError, Box<AccessEvent>),
}

/// An entry's error, with its event.
fn failed(index: usize, e: RecordsError, event: AccessEvent) -> Failure {
    match e {
        RecordsError::Fhir(e) => Failure::Refused(index, entry_error(index, e), vec![event]),
        other => Failure::Failed(other, Box::new(event)),
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure::Records(e.into())
    }
}

impl From<RecordsError> for Failure {
    fn from(e: RecordsError) -> Self {
        Failure::Records(e)
    }
}

/// Runs one entry on `conn`, its writes held by `batch`.
async fn run_entry(
    conn: &mut diesel_async::AsyncPgConnection,
    batch: &mut Batch<'_>,
    caller: &Caller,
    entry: &Ready,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Answer, Failure> {
    let state = batch.state();
    let p = &entry.planned;
    let (t, id) = (p.resource_type.as_str(), p.id.as_str());
    let answer = |status: &str, version: Option<i64>| Answer {
        location: version.map(|v| format!("{t}/{id}/_history/{v}")),
        etag: version.map(http::etag),
        ..Answer::new(p.index, status)
    };
    match entry.resolution {
        Resolution::Existing(version) | Resolution::Same(version) => {
            return Ok(answer("200 OK", Some(version)))
        }
        Resolution::Nothing => return Ok(answer("204 No Content", None)),
        Resolution::Write => {}
    }
    let applied = match (&p.op, &entry.incoming, &entry.prepared) {
        (
            Op::Read {
                version,
                meta: of_meta,
                head,
                subset,
            },
            _,
            _,
        ) => {
            // After every write of the transaction, on what they wrote.
            if batch.holds_writes() {
                batch.flush(conn).await?;
            }
            let (read, event) = read::decide_version(state, conn, caller, t, id, *version).await?;
            let (stored, json) = match read {
                Ok(found) => found,
                Err(e) => return Err(failed(p.index, e, event)),
            };
            let body = if *of_meta {
                meta::parameters_of(&meta::meta_of(&json)?).to_string()
            } else {
                subset.apply(json)?
            };
            return Ok(Answer {
                last_modified: Some(stored.last_updated),
                resource: (!*head).then_some(body),
                reads: vec![event],
                ..answer("200 OK", Some(stored.version))
            });
        }
        (Op::Search { pairs, head }, _, _) => {
            // After every write of the transaction, on what they wrote.
            if batch.holds_writes() {
                batch.flush(conn).await?;
            }
            let handling = custodian_fhir::http::Handling::default();
            let searched =
                match super::search::search_on(conn, state, caller, t, pairs, handling).await {
                    Ok(searched) => searched,
                    // Malformed: refused before any access was decided.
                    Err(RecordsError::Fhir(e)) => {
                        return Err(Failure::Refused(
                            p.index,
                            entry_error(p.index, e),
                            Vec::new(),
                        ))
                    }
                    Err(other) => return Err(Failure::Records(other)),
                };
            let bundle = match searched.bundle {
                Ok(bundle) => bundle,
                Err(RecordsError::Fhir(e)) => {
                    return Err(Failure::Refused(
                        p.index,
                        entry_error(p.index, e),
                        searched.events,
                    ))
                }
                Err(other) => return Err(Failure::Records(other)),
            };
            return Ok(Answer {
                resource: (!*head).then_some(bundle),
                reads: searched.events,
                ..Answer::new(p.index, "200 OK")
            });
        }
        (Op::Meta { change, wanted }, _, _) => {
            // Changed in place on its own, as the operation does: what the batch holds is
            // written first, and what it read may have changed.
            batch.flush(conn).await?;
            batch.forget_reads();
            let changed =
                meta::apply_change(conn, state, caller, &p.resource_type, id, wanted, *change)
                    .await?;
            return match changed {
                Changed::Done(meta) => Ok(Answer {
                    resource: Some(meta::parameters_of(&meta).to_string()),
                    ..Answer::new(p.index, "200 OK")
                }),
                Changed::Not(event, e) => Err(failed(p.index, e, *event)),
            };
        }
        (Op::Create { .. }, Some(incoming), Some(prepared)) => {
            let request = WriteRequest {
                caller,
                resource_type: t,
                id,
                incoming,
                prepared,
                expected: None,
                now,
            };
            apply::create_in(conn, batch, request).await?
        }
        (Op::Update { expected, .. }, Some(incoming), Some(prepared)) => {
            let request = WriteRequest {
                caller,
                resource_type: t,
                id,
                incoming,
                prepared,
                expected: *expected,
                now,
            };
            apply::update_in(conn, batch, request).await?
        }
        (Op::Delete { expected }, _, _) => {
            apply::delete_in(conn, batch, caller, t, id, *expected, now).await?
        }
        (Op::Patch { patch, expected }, _, _) => {
            // A patch reads and writes on its own: what the batch holds is written first, and
            // what it read may have changed.
            batch.flush(conn).await?;
            batch.forget_reads();
            match patch::patch_on(
                conn,
                state,
                caller,
                &p.resource_type,
                id,
                patch,
                *expected,
                now,
            )
            .await?
            {
                conditional::Outcome::Applied { applied, .. } => applied,
                conditional::Outcome::Refused(e) => {
                    return Err(Failure::Refused(
                        p.index,
                        entry_error(p.index, e),
                        Vec::new(),
                    ))
                }
                _ => {
                    return Err(Failure::Records(RecordsError::Internal(
                        "a patch entry wrote nothing".into(),
                    )))
                }
            }
        }
        _ => {
            return Err(Failure::Records(RecordsError::Internal(
                "entry not prepared".into(),
            )))
        }
    };
    let memberships = applied.memberships().to_vec();
    let answer = |status: &str, version: Option<i64>| Answer {
        memberships: memberships.clone(),
        ..answer(status, version)
    };
    match applied {
        Applied::Written {
            version,
            created: true,
            ..
        } => Ok(answer("201 Created", Some(version))),
        Applied::Written {
            version,
            json: Some(_),
            ..
        } => Ok(answer("200 OK", Some(version))),
        Applied::Written { .. } | Applied::AlreadyDeleted { .. } => {
            Ok(answer("204 No Content", None))
        }
        Applied::Missing { event } => Err(Failure::Refused(
            p.index,
            FhirError::NotFound(format!("entry {}: {t}/{id} is not known", p.index)),
            vec![event],
        )),
        Applied::Denied {
            decision,
            event,
            hidden,
        } => Err(Failure::Denied(
            p.index,
            Box::new(event),
            if hidden {
                crate::access::hidden(state, &decision, t, id)
            } else {
                crate::access::refused(state, &decision)
            },
        )),
        Applied::Conflict(m) => Err(Failure::Refused(
            p.index,
            FhirError::Conflict(format!("entry {}: {m}", p.index)),
            Vec::new(),
        )),
        Applied::Precondition(m) => Err(Failure::Refused(
            p.index,
            FhirError::PreconditionFailed(format!("entry {}: {m}", p.index)),
            Vec::new(),
        )),
    }
}

/// Process a transaction or batch Bundle.
#[utoipa::path(
    post,
    path = "/fhir",
    tag = "fhir",
    request_body(content = serde_json::Value, content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "transaction-response or batch-response Bundle"),
        (status = 400, description = "Not a transaction or batch, or an unsupported entry"),
        (status = 403, description = "An entry of a transaction was not permitted"),
        (status = 412, description = "A condition of a transaction (ifNoneExist, a conditional URL or reference) matched several resources, or a conditional reference none"),
        (status = 422, description = "An entry is not valid FHIR R4")
    ),
    security(("smart" = []))
)]
pub async fn bundle(
    req: HttpRequest,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle(&req, &body, caller, &state).await;
    super::observe(&state, "transaction", "Bundle", &result);
    result
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutBundle {
    resource_type: &'static str,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    entry: Vec<OutEntry>,
}

#[derive(Serialize)]
struct OutEntry {
    /// Embedded as stored: parsing it into a `Value` would rewrite its decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Box<RawValue>>,
    response: OutResponse,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutResponse {
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    last_modified: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Value>,
}

/// The response Bundle, its entries in the request's order.
fn response_bundle(kind: &'static str, mut answers: Vec<Answer>) -> Result<String, RecordsError> {
    answers.sort_by_key(|a| a.index);
    let now = chrono::Utc::now();
    let mut entry = Vec::with_capacity(answers.len());
    for a in answers {
        let resource = a
            .resource
            .map(RawValue::from_string)
            .transpose()
            .map_err(|e| RecordsError::Internal(format!("a returned resource: {e}")))?;
        entry.push(OutEntry {
            resource,
            response: OutResponse {
                status: a.status,
                location: a.location,
                etag: a.etag,
                last_modified: format_instant(a.last_modified.unwrap_or(now)),
                outcome: a.outcome,
            },
        });
    }
    let bundle = OutBundle {
        resource_type: "Bundle",
        id: uuid::Uuid::new_v4().to_string(),
        kind,
        entry,
    };
    serde_json::to_string(&bundle).map_err(|e| RecordsError::Internal(e.to_string()))
}

async fn handle(
    req: &HttpRequest,
    body: &[u8],
    caller: Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    http::require_json(req)?;
    let bundle: InBundle = serde_json::from_slice(body)
        .map_err(|e| FhirError::BadRequest(format!("the body is not a Bundle: {e}")))?;
    if bundle.resource_type.as_deref() != Some("Bundle") {
        return Err(FhirError::BadRequest("POST /fhir takes a Bundle".into()).into());
    }
    let now = now_millis();
    match bundle.kind.as_deref() {
        Some("transaction") => transaction(state, &caller, bundle, now).await,
        Some("batch") => batch(state, &caller, bundle, now).await,
        _ => Err(FhirError::BadRequest(
            "only transaction and batch Bundles can be processed".into(),
        )
        .into()),
    }
}

fn fail(index: usize, e: FhirError) -> Failure {
    Failure::Refused(index, entry_error(index, e), Vec::new())
}

/// Matches `condition` for entry `index`, keeping the matching's events in `events`.
async fn matched(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    index: usize,
    resource_type: &str,
    condition: &Condition,
    events: &mut Vec<AccessEvent>,
) -> Result<conditional::Matches, Failure> {
    let matches = conditional::matches(conn, state, caller, resource_type, condition).await?;
    events.extend(matches.events.iter().cloned());
    if let Some(decision) = &matches.refused {
        return Err(Failure::Refused(
            index,
            crate::access::refused(state, decision),
            Vec::new(),
        ));
    }
    Ok(matches)
}

fn found_id(found: &conditional::Found) -> Result<ResourceId, RecordsError> {
    http::parse_id(&found.id).map_err(|e| RecordsError::Internal(e.to_string()))
}

/// Resolves an entry's condition (`ifNoneExist`, `PUT`/`DELETE Type?params`), setting its id.
async fn resolve(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    p: &mut Planned,
    events: &mut Vec<AccessEvent>,
) -> Result<Resolution, Failure> {
    let t = p.resource_type.as_str().to_string();
    let index = p.index;
    match (&p.op, &p.condition) {
        (
            Op::Create {
                if_none_exist: Some(c),
                ..
            },
            _,
        ) => {
            let m = matched(conn, state, caller, index, &t, c, events).await?;
            match m.resolved() {
                Resolved::None => Ok(Resolution::Write),
                Resolved::One(found) => {
                    p.id = found_id(found)?;
                    Ok(Resolution::Existing(found.version))
                }
                Resolved::Several => Err(fail(
                    index,
                    conditional::several(&t, "make ifNoneExist more selective"),
                )),
            }
        }
        (Op::Update { body, .. }, Some(c)) => {
            let body_id = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
            let m = matched(conn, state, caller, index, &t, c, events).await?;
            match m.resolved() {
                Resolved::One(found) => {
                    if body_id.as_ref().is_some_and(|b| *b != found.id) {
                        return Err(fail(
                            index,
                            FhirError::BadRequest(
                                "the resource's id is not the id of the resource the condition \
                                 matched"
                                    .into(),
                            ),
                        ));
                    }
                    p.id = found_id(found)?;
                }
                Resolved::None => {
                    if let Some(b) = body_id {
                        let id = http::parse_id(&b).map_err(|e| fail(index, e))?;
                        if store::current(conn, &t, id.as_str(), false)
                            .await?
                            .is_none()
                        {
                            p.id = id;
                        }
                    }
                }
                Resolved::Several => {
                    return Err(fail(
                        index,
                        conditional::several(&t, "a conditional update changes one resource"),
                    ))
                }
            }
            Ok(Resolution::Write)
        }
        (Op::Patch { .. }, Some(c)) => {
            let m = matched(conn, state, caller, index, &t, c, events).await?;
            match m.resolved() {
                Resolved::One(found) => {
                    p.id = found_id(found)?;
                    Ok(Resolution::Write)
                }
                Resolved::None => Err(fail(
                    index,
                    FhirError::NotFound(format!("no {t} matches the condition")),
                )),
                Resolved::Several => Err(fail(
                    index,
                    conditional::several(&t, "a conditional patch changes one resource"),
                )),
            }
        }
        (Op::Delete { .. }, Some(c)) => {
            let m = matched(conn, state, caller, index, &t, c, events).await?;
            match m.resolved() {
                Resolved::None => Ok(Resolution::Nothing),
                Resolved::One(found) => {
                    p.id = found_id(found)?;
                    Ok(Resolution::Write)
                }
                Resolved::Several => Err(fail(
                    index,
                    conditional::several(&t, "a conditional delete removes one resource"),
                )),
            }
        }
        _ => Ok(Resolution::Write),
    }
}

/// The conditional references (`Type?params`) in a resource.
fn conditional_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("reference", Value::String(r)) => {
                        if let Some((t, q)) = r.split_once('?') {
                            if !t.contains('/')
                                && !q.is_empty()
                                && custodian_fhir::validate::is_resource_type(t)
                                && !out.contains(r)
                            {
                                out.push(r.clone());
                            }
                        }
                    }
                    _ => conditional_references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| conditional_references(v, out)),
        _ => {}
    }
}

/// Replaces every string of a JSON text that is a key of `rewrites` (as `serde_json` quotes
/// it) by its value, quoted, in one pass over the text: a Bundle's n entries each referring to
/// any of its n `fullUrl`s cost n passes, not n².
fn rewrite_all(body: &mut String, rewrites: &HashMap<String, String>) {
    if rewrites.is_empty() {
        return;
    }
    let rewritten = custodian_fhir::json_text::replace_strings(body, |quoted| {
        rewrites.get(quoted).map(|to| format!("\"{to}\""))
    });
    if let Some(rewritten) = rewritten {
        *body = rewritten;
    }
}

/// Replaces every `from` string value in a JSON text by `to`.
fn rewrite(body: &mut String, from: &str, to: &str) -> Result<(), RecordsError> {
    let quoted = serde_json::to_string(from).map_err(|e| RecordsError::Internal(e.to_string()))?;
    if body.contains(&quoted) {
        *body = body.replace(&quoted, &format!("\"{to}\""));
    }
    Ok(())
}

/// Matches the entries' conditions, rewrites their references (to entries' `fullUrl`s when
/// `full_urls`, and conditional ones, those that need a search once the entries before them
/// are written), validates them and runs them in the specification's order, on `conn`. The
/// matching's events are kept in `events` (and enqueued on success).
async fn process(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    mut planned: Vec<Planned>,
    full_urls: bool,
    now: chrono::DateTime<chrono::Utc>,
    events: &mut Vec<AccessEvent>,
) -> Result<Vec<Answer>, Failure> {
    let mut resolutions = Vec::with_capacity(planned.len());
    for p in planned.iter_mut() {
        resolutions.push(resolve(conn, state, caller, p, events).await?);
    }
    if full_urls {
        same_conditions(&mut planned, &mut resolutions);
        if let Some((index, m)) = overlap(&planned, &resolutions) {
            return Err(fail(index, FhirError::BadRequest(m)));
        }
    }
    // fullUrl (quoted as in JSON) -> the Type/id it becomes, rewritten wherever the Bundle
    // refers to it; the first entry with a fullUrl has it.
    let mut rewrites: HashMap<String, String> = HashMap::new();
    if full_urls {
        for p in &planned {
            let Some(from) = p.full_url.as_deref().filter(|u| !u.is_empty()) else {
                continue;
            };
            let quoted =
                serde_json::to_string(from).map_err(|e| RecordsError::Internal(e.to_string()))?;
            rewrites
                .entry(quoted)
                .or_insert_with(|| format!("{}/{}", p.resource_type, p.id));
        }
    }
    // Conditions of the Bundle's own conditional creates: a reference with the same condition
    // is to that entry's resource.
    let own: Vec<(String, String)> = planned
        .iter()
        .filter_map(|p| match &p.op {
            Op::Create {
                if_none_exist: Some(c),
                ..
            } if full_urls => Some((
                c.key(p.resource_type.as_str()),
                format!("{}/{}", p.resource_type, p.id),
            )),
            _ => None,
        })
        .collect();
    // Conditional references are resolved once the writes before them are made (R4
    // http.html#trules step 5, and HAPI FHIR resolves them as it writes): to a resource a
    // DELETE of the transaction removed, none; to one a POST of it made, that one. Those to
    // the Bundle's own conditional creates need no search and are rewritten now; an entry with
    // others waits (`Pending::Deferred`) until its turn.
    let mut references = References {
        own,
        resolved: Vec::new(),
    };
    let mut pending = Vec::new();
    for (mut p, resolution) in planned.into_iter().zip(resolutions) {
        let index = p.index;
        if let Op::Create { body, .. } | Op::Update { body, .. } = &mut p.op {
            rewrite_all(body, &rewrites);
        }
        let left = references
            .rewrite(conn, state, caller, &mut p, events, false)
            .await?;
        pending.push(if left {
            Pending::Deferred(Box::new(p), resolution)
        } else {
            Pending::Ready(Box::new(
                ready(state, p, resolution, now).map_err(|e| fail(index, e))?,
            ))
        });
    }
    pending.sort_by_key(|e| match e {
        Pending::Ready(r) => r.planned.order(),
        Pending::Deferred(p, _) => p.order(),
    });
    let mut batch = Batch::new(state);
    let readies: Vec<&Ready> = pending
        .iter()
        .filter_map(|e| match e {
            Pending::Ready(r) => Some(r.as_ref()),
            Pending::Deferred(..) => None,
        })
        .collect();
    read_ahead(conn, &mut batch, &readies).await?;
    let mut answers = Vec::new();
    let mut reads = Vec::new();
    for entry in pending {
        let r = match entry {
            Pending::Ready(r) => *r,
            Pending::Deferred(mut p, resolution) => {
                // The searches see what the entries before it wrote.
                if batch.holds_writes() {
                    batch.flush(conn).await?;
                }
                references
                    .rewrite(conn, state, caller, &mut p, events, true)
                    .await?;
                let index = p.index;
                ready(state, *p, resolution, now).map_err(|e| fail(index, e))?
            }
        };
        let mut answer = run_entry(conn, &mut batch, caller, &r, now).await?;
        reads.append(&mut answer.reads);
        answers.push(answer);
    }
    batch.enqueue_events(&std::mem::take(events));
    batch.enqueue_events(&reads);
    batch.flush(conn).await?;
    Ok(answers)
}

/// Conditional creates of a transaction with one condition make or name one resource, as HAPI
/// FHIR has it: the first decides (creates, or matches), the others name what it does. Without
/// this, two entries meant to create a resource once (a Practitioner each document of a Bundle
/// names, say) would create it twice, the condition matching neither on the state before.
fn same_conditions(planned: &mut [Planned], resolutions: &mut [Resolution]) {
    let mut first: HashMap<String, (ResourceId, i64)> = HashMap::new();
    for (p, resolution) in planned.iter_mut().zip(resolutions.iter_mut()) {
        let Op::Create {
            if_none_exist: Some(c),
            ..
        } = &p.op
        else {
            continue;
        };
        let key = c.key(p.resource_type.as_str());
        match (first.get(&key), *resolution) {
            (Some((id, version)), _) => {
                p.id = id.clone();
                *resolution = Resolution::Same(*version);
            }
            (None, Resolution::Write) => {
                first.insert(key, (p.id.clone(), 1));
            }
            (None, Resolution::Existing(version)) => {
                first.insert(key, (p.id.clone(), version));
            }
            (None, _) => {}
        }
    }
}

/// The first entry of a transaction that writes a resource an earlier entry writes, and what
/// to answer: R4 http.html#trules, "If any resource identities (including resolved identities
/// from conditional update/delete) overlap in steps 1-3, then the transaction SHALL fail".
fn overlap(planned: &[Planned], resolutions: &[Resolution]) -> Option<(usize, String)> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (p, resolution) in planned.iter().zip(resolutions) {
        let Some(key) = p.writes(*resolution) else {
            continue;
        };
        if let Some(first) = seen.insert(key, p.index) {
            return Some((
                p.index,
                format!(
                    "entry {first} already changes {}/{}: the entries of a transaction must \
                     name distinct resources",
                    key.0, key.1
                ),
            ));
        }
    }
    None
}

/// An entry before its turn: ready to run, or with conditional references still to resolve.
enum Pending {
    Ready(Box<Ready>),
    Deferred(Box<Planned>, Resolution),
}

/// How a transaction's conditional references (`Type?params`) resolve.
struct References {
    /// (condition key, `Type/id`) of the Bundle's own conditional creates.
    own: Vec<(String, String)>,
    /// (reference, `Type/id`) resolved so far: one reference names one resource throughout.
    resolved: Vec<(String, String)>,
}

impl References {
    /// Rewrites the conditional references in `p`'s resource to the one resource each
    /// matches: the Bundle's own conditional create with that condition, or (when `search`)
    /// the one match of a search on `conn`, none or several failing the entry with a 412.
    /// Returns whether some are left (not searched for).
    async fn rewrite(
        &mut self,
        conn: &mut AsyncPgConnection,
        state: &AppState,
        caller: &Caller,
        p: &mut Planned,
        events: &mut Vec<AccessEvent>,
        search: bool,
    ) -> Result<bool, Failure> {
        let index = p.index;
        let (Op::Create { body, .. } | Op::Update { body, .. }) = &mut p.op else {
            return Ok(false);
        };
        let mut refs = Vec::new();
        // A conditional reference has a `?`, written as such or escaped.
        if body.contains('?') || body.contains("\\u") {
            if let Ok(value) = serde_json::from_str::<Value>(body) {
                conditional_references(&value, &mut refs);
            }
        }
        let mut left = false;
        for r in refs {
            if let Some((_, to)) = self.resolved.iter().find(|(from, _)| *from == r) {
                rewrite(body, &r, to)?;
                continue;
            }
            let (t, _) = r.split_once('?').unwrap_or_default();
            let c = Condition::parse(t, &r).map_err(|e| fail(index, e))?;
            let to = match self.own.iter().find(|(k, _)| *k == c.key(t)) {
                Some((_, to)) => to.clone(),
                None if !search => {
                    left = true;
                    continue;
                }
                None => {
                    let m = matched(conn, state, caller, index, t, &c, events).await?;
                    match m.resolved() {
                        Resolved::One(found) => format!("{t}/{}", found.id),
                        Resolved::None | Resolved::Several => {
                            return Err(fail(
                                index,
                                FhirError::PreconditionFailed(format!(
                                    "the conditional reference {r:?} must match exactly one \
                                     resource; it matches {}",
                                    if m.found.is_empty() {
                                        "none"
                                    } else {
                                        "several"
                                    }
                                )),
                            ))
                        }
                    }
                }
            };
            self.resolved.push((r.clone(), to.clone()));
            rewrite(body, &r, &to)?;
        }
        Ok(left)
    }
}

/// Reads at once what the entries will read one by one (each answered by `batch` from then
/// on): the current rows of the ids they update or delete, locked; the custodians of the
/// compartments they write into; and those compartments' data keys.
async fn read_ahead(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    readies: &[&Ready],
) -> Result<(), Failure> {
    let mut targets = Vec::new();
    let mut patients = Vec::new();
    let mut sealed_in = Vec::new();
    for r in readies {
        let p = &r.planned;
        if !matches!(r.resolution, Resolution::Write) {
            continue;
        }
        if let Op::Update { .. } | Op::Delete { .. } = p.op {
            targets.push((
                p.resource_type.as_str().to_string(),
                p.id.as_str().to_string(),
            ));
        }
        if let Some(prepared) = &r.prepared {
            patients.extend(prepared.other_patients.iter().cloned());
            if let Some(patient) = &prepared.patient {
                patients.push(patient.clone());
                sealed_in.push(patient.clone());
            }
        }
    }
    batch.lock_currents(conn, &targets).await?;
    batch.read_custodians(conn, &patients).await?;
    batch.read_keys(conn, &sealed_in).await?;
    Ok(())
}

async fn transaction(
    state: &AppState,
    caller: &Caller,
    bundle: InBundle,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<HttpResponse, RecordsError> {
    let mut planned = Vec::new();
    for (index, entry) in bundle.entry.iter().enumerate() {
        planned.push(plan(state, index, entry).map_err(|e| entry_error(index, e))?);
    }
    let mut conn = state.connection().await?;
    let mut events = Vec::new();
    let result = {
        let events = &mut events;
        conn.transaction::<Vec<Answer>, Failure, _>(async move |conn| {
            process(conn, state, caller, planned, true, now, events).await
        })
        .await
    };
    if result.is_err() && !events.is_empty() {
        // Rolled back: the searches the matching made are still accesses to record.
        state.record(&mut conn, &events).await?;
    }
    match result {
        Ok(answers) => {
            state.relay.wake();
            for answer in &answers {
                state.relationships.committed(&answer.memberships);
            }
            Ok(http::fhir(StatusCode::OK).body(response_bundle("transaction-response", answers)?))
        }
        Err(Failure::Records(e)) => Err(e),
        Err(Failure::Failed(e, event)) => {
            state.record(&mut conn, &[*event]).await?;
            Err(e)
        }
        Err(Failure::Denied(_, event, error)) => {
            // The transaction rolled back; the denial is still an access to record.
            state.record(&mut conn, &[*event]).await?;
            Err(error.into())
        }
        Err(Failure::Refused(_, e, events)) => {
            state.record(&mut conn, &events).await?;
            Err(e.into())
        }
    }
}

async fn batch(
    state: &AppState,
    caller: &Caller,
    bundle: InBundle,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<HttpResponse, RecordsError> {
    let mut answers = Vec::new();
    let mut conn = state.connection().await?;
    let refuse = |index: usize, e: FhirError| Answer {
        outcome: Some(e.outcome()),
        ..Answer::new(index, &format!("{} {}", e.status_code_u16(), e.reason()))
    };
    for (index, entry) in bundle.entry.iter().enumerate() {
        let p = match plan(state, index, entry) {
            Ok(p) => p,
            Err(e) => {
                answers.push(refuse(index, entry_error(index, e)));
                continue;
            }
        };
        let mut events = Vec::new();
        let result = {
            let events = &mut events;
            conn.transaction::<Vec<Answer>, Failure, _>(async move |conn| {
                process(conn, state, caller, vec![p], false, now, events).await
            })
            .await
        };
        if result.is_err() && !events.is_empty() {
            state.record(&mut conn, &events).await?;
        }
        match result.map(|mut a| a.pop()) {
            Ok(Some(answer)) => {
                state.relationships.committed(&answer.memberships);
                answers.push(answer)
            }
            Ok(None) => answers.push(refuse(
                index,
                FhirError::Internal("the entry was not run".into()),
            )),
            Err(Failure::Records(e)) => {
                answers.push(refuse(index, FhirError::Internal(e.to_string())))
            }
            Err(Failure::Failed(e, event)) => {
                state.record(&mut conn, &[*event]).await?;
                answers.push(refuse(index, FhirError::Internal(e.to_string())));
            }
            Err(Failure::Denied(index, event, error)) => {
                state.record(&mut conn, &[*event]).await?;
                answers.push(refuse(index, error));
            }
            Err(Failure::Refused(index, e, events)) => {
                state.record(&mut conn, &events).await?;
                answers.push(refuse(index, e));
            }
        }
    }
    state.relay.wake();
    Ok(http::fhir(StatusCode::OK).body(response_bundle("batch-response", answers)?))
}

trait StatusText {
    fn status_code_u16(&self) -> u16;
    fn reason(&self) -> &'static str;
}

impl StatusText for FhirError {
    fn status_code_u16(&self) -> u16 {
        actix_web::ResponseError::status_code(self).as_u16()
    }
    fn reason(&self) -> &'static str {
        actix_web::ResponseError::status_code(self)
            .canonical_reason()
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrites(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(from, to)| (serde_json::to_string(from).unwrap(), to.to_string()))
            .collect()
    }

    #[test]
    fn every_full_url_string_is_rewritten_in_one_pass() {
        let map = rewrites(&[
            ("urn:uuid:a", "Patient/1"),
            ("urn:uuid:b", "Encounter/2"),
            ("http://x/\"q\"", "Patient/3"),
        ]);
        let mut body = r#"{"subject":{"reference":"urn:uuid:a"},"encounter":{"reference":"urn:uuid:b"},"note":[{"text":"urn:uuid:a is not urn:uuid:ab"}],"focus":[{"reference":"urn:uuid:a"},{"reference":"urn:uuid:ab"},{"reference":"http://x/\"q\""}],"n":1.50}"#.to_string();
        rewrite_all(&mut body, &map);
        assert_eq!(
            body,
            r#"{"subject":{"reference":"Patient/1"},"encounter":{"reference":"Encounter/2"},"note":[{"text":"urn:uuid:a is not urn:uuid:ab"}],"focus":[{"reference":"Patient/1"},{"reference":"urn:uuid:ab"},{"reference":"Patient/3"}],"n":1.50}"#
        );
        // As the replacement one string at a time did.
        let mut one_by_one = r#"{"a":"urn:uuid:a","b":["urn:uuid:b","é\\"]}"#.to_string();
        let mut at_once = one_by_one.clone();
        rewrite(&mut one_by_one, "urn:uuid:a", "Patient/1").unwrap();
        rewrite(&mut one_by_one, "urn:uuid:b", "Encounter/2").unwrap();
        rewrite_all(&mut at_once, &map);
        assert_eq!(at_once, one_by_one);
        let mut untouched = r#"{"a":"b"}"#.to_string();
        rewrite_all(&mut untouched, &map);
        assert_eq!(untouched, r#"{"a":"b"}"#);
    }
}
