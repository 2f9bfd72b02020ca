//! `POST /fhir` with a Bundle of type `transaction` (all or nothing, one database transaction)
//! or `batch` (each entry on its own). Entries may create (`POST Type`), update or create with
//! an id (`PUT Type/id`, `ifMatch`) and delete (`DELETE Type/id`); read and search entries and
//! conditional operations are not supported (400). In a transaction, references to an entry's
//! `fullUrl` (e.g. `urn:uuid:...`) are rewritten to the `Type/id` the server assigned, and
//! entries run in the specification's order: deletes, creates, updates. Access control and
//! events are per entry, exactly as for the single interactions; a denied entry fails the whole
//! transaction (403) and its deny event is still recorded.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::Caller;
use custodian_events::AccessEvent;
use custodian_fhir::FhirError;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};

use super::{
    apply::{self, Applied},
    http,
    write::{parse_body, prepare, Prepared},
};
use crate::{
    domain::{
        resource::{format_instant, now_millis, IncomingResource},
        ResourceId, ResourceType,
    },
    error::RecordsError,
    state::AppState,
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
}

enum Op {
    Create { body: String },
    Update { body: String, expected: Option<i64> },
    Delete { expected: Option<i64> },
}

struct Planned {
    index: usize,
    resource_type: ResourceType,
    id: ResourceId,
    full_url: Option<String>,
    op: Op,
}

impl Planned {
    fn order(&self) -> u8 {
        match self.op {
            Op::Delete { .. } => 0,
            Op::Create { .. } => 1,
            Op::Update { .. } => 2,
        }
    }
}

/// A parsed and validated entry, ready to write.
struct Ready {
    planned: Planned,
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
    if url.contains('?') {
        return Err(FhirError::BadRequest(
            "conditional operations are not supported".into(),
        ));
    }
    let parts: Vec<&str> = url.split('/').collect();
    let body = || {
        entry
            .resource
            .as_ref()
            .map(|r| r.get().to_string())
            .ok_or_else(|| FhirError::BadRequest("entry has no resource".into()))
    };
    let expected = request.if_match.as_deref().map(parse_etag).transpose()?;
    let (resource_type, id, op) = match (
        request.method.to_ascii_uppercase().as_str(),
        parts.as_slice(),
    ) {
        ("POST", [t]) => (
            http::parse_type(t)?,
            ResourceId::generate(),
            Op::Create { body: body()? },
        ),
        ("PUT", [t, id]) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            Op::Update {
                body: body()?,
                expected,
            },
        ),
        ("DELETE", [t, id]) => (
            http::parse_type(t)?,
            http::parse_id(id)?,
            Op::Delete { expected },
        ),
        (method, _) => {
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
        full_url: entry.full_url.clone(),
        op,
    })
}

fn ready(
    state: &AppState,
    planned: Planned,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Ready, FhirError> {
    let body = match &planned.op {
        Op::Create { body } | Op::Update { body, .. } => body,
        Op::Delete { .. } => {
            return Ok(Ready {
                planned,
                incoming: None,
                prepared: None,
            })
        }
    };
    let incoming = parse_body(body.as_bytes(), &planned.resource_type)?;
    if let Op::Update { .. } = planned.op {
        if incoming.id().as_deref() != Some(planned.id.as_str()) {
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
    outcome: Option<Value>,
    /// Membership changes of the entry, for the replica once committed.
    memberships: Vec<custodian_events::MembershipChange>,
}

enum Failure {
    Records(RecordsError),
    Denied(usize, AccessEvent, FhirError),
    /// Refused, with the event to record once the transaction is over (a missing resource).
    Refused(usize, FhirError, Option<AccessEvent>),
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

/// Runs one entry on `conn`.
async fn run_entry(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    entry: &Ready,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Answer, Failure> {
    let p = &entry.planned;
    let (t, id) = (p.resource_type.as_str(), p.id.as_str());
    let applied = match (&p.op, &entry.incoming, &entry.prepared) {
        (Op::Create { .. }, Some(incoming), Some(prepared)) => {
            apply::create(conn, state, caller, t, id, incoming, prepared, None, now).await?
        }
        (Op::Update { expected, .. }, Some(incoming), Some(prepared)) => {
            apply::update(
                conn, state, caller, t, id, incoming, prepared, *expected, now,
            )
            .await?
        }
        (Op::Delete { expected }, _, _) => {
            apply::delete(conn, state, caller, t, id, *expected, now).await?
        }
        _ => {
            return Err(Failure::Records(RecordsError::Internal(
                "entry not prepared".into(),
            )))
        }
    };
    let memberships = applied.memberships().to_vec();
    let answer = |status: &str, version: Option<i64>| Answer {
        index: p.index,
        status: status.to_string(),
        location: version.map(|v| format!("{t}/{id}/_history/{v}")),
        etag: version.map(http::etag),
        outcome: None,
        memberships: memberships.clone(),
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
            Some(event),
        )),
        Applied::Denied {
            decision,
            event,
            hidden,
        } => Err(Failure::Denied(
            p.index,
            event,
            if hidden {
                crate::access::hidden(state, &decision, t, id)
            } else {
                crate::access::refused(state, &decision)
            },
        )),
        Applied::Conflict(m) => Err(Failure::Refused(
            p.index,
            FhirError::Conflict(format!("entry {}: {m}", p.index)),
            None,
        )),
        Applied::Precondition(m) => Err(Failure::Refused(
            p.index,
            FhirError::PreconditionFailed(format!("entry {}: {m}", p.index)),
            None,
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
        (status = 422, description = "An entry is not valid FHIR R4")
    ),
    security(("bearer" = []))
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

fn response_bundle(kind: &str, mut answers: Vec<Answer>) -> Value {
    answers.sort_by_key(|a| a.index);
    let entries: Vec<Value> = answers
        .into_iter()
        .map(|a| {
            let mut response =
                json!({ "status": a.status, "lastModified": format_instant(chrono::Utc::now()) });
            if let Some(l) = a.location {
                response["location"] = json!(l);
            }
            if let Some(e) = a.etag {
                response["etag"] = json!(e);
            }
            if let Some(o) = a.outcome {
                response["outcome"] = o;
            }
            json!({ "response": response })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": kind,
        "entry": entries,
    })
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
    // fullUrl -> the Type/id it becomes, rewritten wherever the Bundle refers to it.
    let rewrites: Vec<(String, String)> = planned
        .iter()
        .filter_map(|p| {
            p.full_url
                .clone()
                .map(|u| (u, format!("{}/{}", p.resource_type, p.id)))
        })
        .filter(|(from, _)| !from.is_empty())
        .collect();
    let mut readies = Vec::new();
    for mut p in planned {
        if let Op::Create { body } | Op::Update { body, .. } = &mut p.op {
            for (from, to) in &rewrites {
                let quoted = serde_json::to_string(from)
                    .map_err(|e| RecordsError::Internal(e.to_string()))?;
                if body.contains(&quoted) {
                    *body = body.replace(&quoted, &format!("\"{to}\""));
                }
            }
        }
        let index = p.index;
        readies.push(ready(state, p, now).map_err(|e| entry_error(index, e))?);
    }
    readies.sort_by_key(|r| r.planned.order());
    let mut conn = state.connection().await?;
    let result = {
        let readies = &readies;
        conn.transaction::<Vec<Answer>, Failure, _>(async move |conn| {
            let mut answers = Vec::new();
            for r in readies {
                answers.push(run_entry(conn, state, caller, r, now).await?);
            }
            Ok(answers)
        })
        .await
    };
    match result {
        Ok(answers) => {
            state.relay.wake();
            for answer in &answers {
                state.relationships.committed(&answer.memberships);
            }
            Ok(http::fhir(StatusCode::OK)
                .body(response_bundle("transaction-response", answers).to_string()))
        }
        Err(Failure::Records(e)) => Err(e),
        Err(Failure::Denied(_, event, error)) => {
            // The transaction rolled back; the denial is still an access to record.
            state.record(&mut conn, &[event]).await?;
            Err(error.into())
        }
        Err(Failure::Refused(_, e, event)) => {
            if let Some(event) = event {
                state.record(&mut conn, &[event]).await?;
            }
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
        index,
        status: format!("{} {}", e.status_code_u16(), e.reason()),
        location: None,
        etag: None,
        outcome: Some(e.outcome()),
        memberships: Vec::new(),
    };
    for (index, entry) in bundle.entry.iter().enumerate() {
        let r = match plan(state, index, entry).and_then(|p| ready(state, p, now)) {
            Ok(r) => r,
            Err(e) => {
                answers.push(refuse(index, entry_error(index, e)));
                continue;
            }
        };
        let result = {
            let r = &r;
            conn.transaction::<Answer, Failure, _>(async move |conn| {
                run_entry(conn, state, caller, r, now).await
            })
            .await
        };
        match result {
            Ok(answer) => {
                state.relationships.committed(&answer.memberships);
                answers.push(answer)
            }
            Err(Failure::Records(e)) => {
                answers.push(refuse(index, FhirError::Internal(e.to_string())))
            }
            Err(Failure::Denied(index, event, error)) => {
                state.record(&mut conn, &[event]).await?;
                answers.push(refuse(index, error));
            }
            Err(Failure::Refused(index, e, event)) => {
                if let Some(event) = event {
                    state.record(&mut conn, &[event]).await?;
                }
                answers.push(refuse(index, e));
            }
        }
    }
    state.relay.wake();
    Ok(http::fhir(StatusCode::OK).body(response_bundle("batch-response", answers).to_string()))
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
