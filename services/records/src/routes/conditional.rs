//! Conditional interactions (R4 http.html 3.1.0.8, 3.1.0.10.2, 3.1.0.12.1): create with
//! `If-None-Exist`, `PUT /fhir/{type}?params`, `DELETE /fhir/{type}?params`, and the same in
//! transaction Bundles (plus conditional references).
//!
//! A condition is a search, with the caller's access inside the query exactly as
//! `routes/search.rs` runs it: [`matches`] sees only what the caller may see, so a resource the
//! caller may not see behaves as absent (a conditional create creates, a conditional delete
//! deletes nothing). The matching is recorded as a search (one event per type and patient, as
//! a search records); the write that follows records its own event.
//!
//! Statuses: one match (create) → 200 with it; several → 412; an invalid condition → 400; a
//! conditional update or delete without a condition → 400. Conditional delete is single-delete
//! (HAPI FHIR's default): several matches → 412; none → 200/204 with nothing deleted.
//!
//! Two conditional writes with the same condition are serialised by a transaction-scoped
//! advisory lock on (type, condition), so two concurrent conditional creates cannot both
//! create.

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use custodian_access::{Caller, Decision, Interaction, PatientRef, Touched};
use custodian_events::AccessEvent;
use custodian_fhir::{FhirError, OperationOutcome};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::{
    apply::{self, Applied, WriteRequest},
    http::{self, prefer_return, Return},
    search::{decide_each, refuses_the_request, scope_query, Scoped, Tally},
    write::{parse_body, prepare},
};
use custodian_fhir_search::registry::Registry;

use crate::{
    access::{hidden, refused},
    domain::{
        resource::{now_millis, IncomingResource},
        ResourceId, ResourceType,
    },
    error::RecordsError,
    search::SearchQuery,
    state::AppState,
    store,
};

/// Result parameters that say nothing about which resources match: left out of a condition.
const RESULT_PARAMS: &[&str] = &[
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_total",
    "_format",
    "_pretty",
    "_elements",
];

/// A parsed condition: the search parameters of one type.
#[derive(Debug, Clone)]
pub struct Condition {
    pairs: Vec<(String, String)>,
}

impl Condition {
    /// From a query string (`identifier=x|y&active=true`). A leading `Type?` or `?` is
    /// accepted (`If-None-Exist: Patient?identifier=...`, as HAPI FHIR does) when it names
    /// `resource_type`. No parameter at all is an error: a condition must select.
    pub fn parse(resource_type: &str, raw: &str) -> Result<Self, FhirError> {
        let raw = raw.trim();
        let query = match raw.split_once('?') {
            Some((prefix, rest)) => {
                let prefix = prefix.trim_start_matches('/');
                if !prefix.is_empty() && prefix != resource_type {
                    return Err(FhirError::BadRequest(format!(
                        "the condition {raw:?} is about {prefix}, not {resource_type}"
                    )));
                }
                rest
            }
            None => raw,
        };
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .filter(|(k, _)| !RESULT_PARAMS.contains(&k.as_str()))
            .collect();
        if pairs.iter().all(|(k, v)| k.is_empty() || v.is_empty()) {
            return Err(FhirError::BadRequest(
                "a conditional interaction needs search parameters that select (e.g. \
                 identifier=system|value)"
                    .into(),
            ));
        }
        Ok(Self { pairs })
    }

    /// Every parameter must be one searches support on `resource_type`: a condition that
    /// ignored a parameter would select more than the client meant (a conditional delete
    /// would delete it), so this holds whatever leniency searches have.
    pub fn check(&self, registry: &Registry, resource_type: &str) -> Result<(), FhirError> {
        for (name, _) in &self.pairs {
            let code = name.split(':').next().unwrap_or_default();
            if !code.contains('.')
                && !["_id", "_lastUpdated"].contains(&code)
                && registry.get(resource_type, code).is_none()
            {
                return Err(FhirError::BadRequest(format!(
                    "the condition's parameter {code:?} is not a search parameter of {resource_type} here"
                )));
            }
        }
        Ok(())
    }

    /// The condition of a request's query string.
    pub fn of_request(resource_type: &str, req: &HttpRequest) -> Result<Self, FhirError> {
        Self::parse(resource_type, req.query_string())
    }

    /// A stable text for the condition (its lock; equal conditions in a Bundle).
    pub fn key(&self, resource_type: &str) -> String {
        let mut pairs = self.pairs.clone();
        pairs.sort();
        let mut s = form_urlencoded::Serializer::new(format!("{resource_type}?"));
        for (k, v) in &pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// One visible match.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: String,
    pub version: i64,
    pub last_updated: chrono::DateTime<chrono::Utc>,
    /// The current JSON.
    pub json: String,
}

/// What a condition matched, as far as the caller may see.
pub struct Matches {
    /// At most two visible matches (two already means "several").
    pub found: Vec<Found>,
    /// The search events of the matching; record them whatever follows.
    pub events: Vec<AccessEvent>,
    /// The request itself is refused (scopes, break-glass without a patient): 403.
    pub refused: Option<Decision>,
}

/// How many matches a condition has.
pub enum Resolved<'a> {
    None,
    One(&'a Found),
    Several,
}

impl Matches {
    pub fn resolved(&self) -> Resolved<'_> {
        match self.found.as_slice() {
            [] => Resolved::None,
            [one] => Resolved::One(one),
            _ => Resolved::Several,
        }
    }
}

/// Serialises conditional writes with the same condition until the transaction ends.
async fn lock(
    conn: &mut AsyncPgConnection,
    resource_type: &str,
    condition: &Condition,
) -> Result<(), RecordsError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 8)) IS NULL")
        .bind::<Text, _>(condition.key(resource_type))
        .execute(conn)
        .await?;
    Ok(())
}

/// The resources of `resource_type` matching `condition` that the caller may see (at most
/// two), searched on `conn` with the caller's access inside the query, each match then
/// decided on its own facts as a search decides it. Takes the condition's lock first.
pub async fn matches(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    condition: &Condition,
) -> Result<Matches, RecordsError> {
    condition.check(state.registry, resource_type)?;
    lock(conn, resource_type, condition).await?;
    // Strict: an ignored parameter would widen the match (and a conditional delete with it).
    let mut query = SearchQuery::parse(
        &state.search_store(),
        resource_type,
        &condition.pairs,
        crate::search::Handling::Strict,
    )?;
    let empty = |events: Vec<AccessEvent>, refused: Option<Decision>| Matches {
        found: Vec::new(),
        events,
        refused,
    };
    let search_decision = match scope_query(conn, state, caller, resource_type, &mut query).await? {
        Scoped::Visible { decision, .. } => decision,
        Scoped::Denied {
            decision, event, ..
        } => {
            let refused = refuses_the_request(&decision).then_some(decision);
            return Ok(empty(vec![*event], refused));
        }
    };
    let named = query
        .named_patient
        .as_deref()
        .and_then(|p| PatientRef::parse(p).ok());

    // Pages of candidates, each decided on its own facts, until two are visible.
    const PAGE: usize = 20;
    let mut tally = Tally::default();
    let mut entries = Vec::new();
    let mut versions = std::collections::HashMap::new();
    let mut budget = 2usize;
    let mut offset = 0;
    loop {
        let page = query.page(conn, offset, PAGE).await?;
        let ids: Vec<String> = page.iter().map(|m| m.resource_id.clone()).collect();
        let rows = store::current_rows(conn, resource_type, &ids).await?;
        for (id, current) in &rows {
            versions.insert(id.clone(), (current.version, current.last_updated));
        }
        decide_each(
            state,
            conn,
            caller,
            resource_type,
            rows,
            "match",
            &mut budget,
            &mut tally,
            &mut entries,
        )
        .await?;
        if budget == 0 || page.len() < PAGE {
            break;
        }
        offset += PAGE;
    }
    let prefix = state.full_url(resource_type, "");
    let found = entries
        .into_iter()
        .filter_map(|e| {
            let id = e.full_url.strip_prefix(&prefix)?.to_string();
            let (version, last_updated) = *versions.get(&id)?;
            Some(Found {
                id,
                version,
                last_updated,
                json: e.resource?.get().to_string(),
            })
        })
        .collect::<Vec<_>>();
    let mut events = tally.events(caller);
    if found.is_empty() {
        events.push(search_decision.event(
            caller,
            Interaction::Search,
            Touched::new(resource_type, named.as_ref()),
        ));
    }
    Ok(Matches {
        found,
        events,
        refused: None,
    })
}

/// The 412 of a condition that matched several resources.
pub fn several(resource_type: &str, single: &str) -> FhirError {
    FhirError::PreconditionFailed(format!(
        "the condition matched more than one {resource_type}; {single}"
    ))
}

/// What a conditional write did (one per request, short-lived: not worth boxing).
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The matching was refused (403), or matched several (412): nothing written.
    Refused(FhirError),
    /// A conditional create found its match.
    Existing(Found),
    /// Nothing matched a conditional delete.
    Nothing,
    /// The write went ahead on `id`.
    Applied { id: String, applied: Applied },
}

impl Outcome {
    fn memberships(&self) -> &[custodian_events::MembershipChange] {
        match self {
            Outcome::Applied { applied, .. } => applied.memberships(),
            _ => &[],
        }
    }
}

/// Inside a conditional write's transaction: the matching, with its events enqueued on
/// `conn`; `Err` with the outcome when the request itself is refused.
pub(super) async fn matched(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    condition: &Condition,
) -> Result<Result<Matches, Outcome>, RecordsError> {
    let matches = matches(conn, state, caller, resource_type, condition).await?;
    state.enqueue_events(conn, &matches.events).await?;
    Ok(match &matches.refused {
        Some(decision) => Err(Outcome::Refused(refused(state, decision))),
        None => Ok(matches),
    })
}

/// Inside the transaction, after the write: a denial's or absence's event is recorded too
/// (the transaction commits; nothing was written).
pub(super) async fn enqueue_refusal(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    outcome: &Outcome,
) -> Result<(), RecordsError> {
    if let Outcome::Applied {
        applied: Applied::Denied { event, .. } | Applied::Missing { event },
        ..
    } = outcome
    {
        state
            .enqueue_events(conn, std::slice::from_ref(event))
            .await?;
    }
    Ok(())
}

/// After the commit: the relay and this instance's replica follow.
pub(super) fn committed(state: &AppState, outcome: &Outcome) {
    state.relay.wake();
    state.relationships.committed(outcome.memberships());
}

/// The error of a write that did not happen.
pub(super) fn failed(
    state: &AppState,
    resource_type: &str,
    id: &str,
    applied: Applied,
) -> RecordsError {
    match applied {
        Applied::Denied {
            decision,
            hidden: true,
            ..
        } => hidden(state, &decision, resource_type, id).into(),
        Applied::Denied { decision, .. } => refused(state, &decision).into(),
        Applied::Conflict(message) => FhirError::Conflict(message).into(),
        Applied::Precondition(message) => FhirError::PreconditionFailed(message).into(),
        Applied::Missing { .. } => {
            FhirError::NotFound(format!("{resource_type}/{id} is not known")).into()
        }
        Applied::Written { .. } | Applied::AlreadyDeleted { .. } => {
            RecordsError::Internal("a written outcome is not a failure".into())
        }
    }
}

/// The answer to a write that wrote version `version` of `id`.
pub(super) fn written(
    req: &HttpRequest,
    state: &AppState,
    resource_type: &str,
    id: &str,
    applied: Applied,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<HttpResponse, RecordsError> {
    match applied {
        Applied::Written {
            version,
            created,
            json: Some(json),
            ..
        } => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut builder = http::versioned(status, version, now);
            builder.insert_header((
                header::LOCATION,
                format!("{}/_history/{version}", state.full_url(resource_type, id)),
            ));
            Ok(http::write_body(
                builder,
                prefer_return(req),
                json,
                if created { "created" } else { "updated" },
            ))
        }
        other => Err(failed(state, resource_type, id, other)),
    }
}

/// `POST /fhir/{type}` with `If-None-Exist` (called by `create`).
pub async fn create(
    req: &HttpRequest,
    resource_type: &ResourceType,
    condition: &Condition,
    incoming: &IncomingResource,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let rt = resource_type.as_str();
    let id = ResourceId::generate();
    let now = now_millis();
    let prepared = prepare(state, incoming, resource_type, id.as_str(), now)?;
    let mut conn = state.connection().await?;
    let outcome = {
        let (id, prepared) = (id.as_str(), &prepared);
        conn.transaction::<Outcome, RecordsError, _>(async move |conn| {
            let matches = match matched(conn, state, caller, rt, condition).await? {
                Ok(m) => m,
                Err(refusal) => return Ok(refusal),
            };
            let outcome = match matches.resolved() {
                Resolved::Several => Outcome::Refused(several(
                    rt,
                    "make the If-None-Exist condition more selective",
                )),
                Resolved::One(found) => Outcome::Existing(found.clone()),
                Resolved::None => Outcome::Applied {
                    id: id.to_string(),
                    applied: apply::create(
                        conn,
                        state,
                        WriteRequest {
                            caller,
                            resource_type: rt,
                            id,
                            incoming,
                            prepared,
                            expected: None,
                            now,
                        },
                    )
                    .await?,
                },
            };
            enqueue_refusal(conn, state, &outcome).await?;
            Ok(outcome)
        })
        .await?
    };
    committed(state, &outcome);
    match outcome {
        Outcome::Refused(e) => Err(e.into()),
        Outcome::Existing(found) => {
            let mut builder = http::versioned(StatusCode::OK, found.version, found.last_updated);
            builder.insert_header((
                header::LOCATION,
                format!(
                    "{}/_history/{}",
                    state.full_url(rt, &found.id),
                    found.version
                ),
            ));
            Ok(http::write_body(
                builder,
                prefer_return(req),
                found.json,
                "a resource matching If-None-Exist exists; nothing was created",
            ))
        }
        Outcome::Applied { id, applied } => written(req, state, rt, &id, applied, now),
        Outcome::Nothing => Err(RecordsError::Internal("create deleted nothing".into())),
    }
}

/// Conditional update.
#[utoipa::path(
    put,
    path = "/fhir/{type}", operation_id = "conditional_update",
    tag = "fhir",
    params(("type" = String, Path, description = "R4 resource type; the query string is the condition")),
    request_body(content = serde_json::Value, content_type = "application/fhir+json"),
    responses(
        (status = 200, description = "The one match was updated"),
        (status = 201, description = "Nothing matched: created (with the body's id if it is unused)"),
        (status = 400, description = "No condition, an invalid one, or a body id that is not the match's"),
        (status = 403, description = "Not permitted"),
        (status = 412, description = "Several matches, or If-Match does not match"),
        (status = 422, description = "Not valid FHIR R4")
    ),
    security(("smart" = []))
)]
pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle_update(&req, &path, &body, &caller, &state).await;
    super::observe(&state, "conditional-update", &path, &result);
    result
}

async fn handle_update(
    req: &HttpRequest,
    raw_type: &str,
    body: &[u8],
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let rt = resource_type.as_str();
    let condition = Condition::of_request(rt, req)?;
    http::require_json(req)?;
    let expected = http::if_match(req)?;
    let incoming = parse_body(body, &resource_type)?;
    let body_id = match incoming.id() {
        Some(id) => Some(http::parse_id(&id)?),
        None => None,
    };
    // Validated before anything is searched (with a placeholder id when none is known yet).
    let probe_id = body_id
        .as_ref()
        .map(|i| i.as_str().to_string())
        .unwrap_or_else(|| ResourceId::generate().as_str().to_string());
    prepare(state, &incoming, &resource_type, &probe_id, now_millis())?;
    let now = now_millis();
    let mut conn = state.connection().await?;
    let outcome = {
        let (incoming, resource_type, body_id, condition) =
            (&incoming, &resource_type, &body_id, &condition);
        conn.transaction::<Outcome, RecordsError, _>(async move |conn| {
            let matches = match matched(conn, state, caller, rt, condition).await? {
                Ok(m) => m,
                Err(refusal) => return Ok(refusal),
            };
            let id = match matches.resolved() {
                Resolved::Several => {
                    return Ok(Outcome::Refused(several(
                        rt,
                        "a conditional update changes one resource",
                    )))
                }
                Resolved::One(found) => match body_id {
                    Some(b) if b.as_str() != found.id => {
                        return Ok(Outcome::Refused(FhirError::BadRequest(format!(
                            "the body's id {:?} is not the id of the resource the condition matched",
                            b.as_str()
                        ))))
                    }
                    _ => found.id.clone(),
                },
                // Nothing matched: the body's id when no resource has it, else a new one.
                Resolved::None => match body_id {
                    Some(b) if store::current(conn, rt, b.as_str(), false).await?.is_none() => {
                        b.as_str().to_string()
                    }
                    _ => ResourceId::generate().as_str().to_string(),
                },
            };
            let prepared = prepare(state, incoming, resource_type, &id, now)?;
            let applied = apply::update(
                conn,
                state,
                WriteRequest {
                    caller,
                    resource_type: rt,
                    id: &id,
                    incoming,
                    prepared: &prepared,
                    expected,
                    now,
                },
            )
            .await?;
            let outcome = Outcome::Applied {
                id,
                applied,
            };
            enqueue_refusal(conn, state, &outcome).await?;
            Ok(outcome)
        })
        .await?
    };
    committed(state, &outcome);
    match outcome {
        Outcome::Refused(e) => Err(e.into()),
        Outcome::Applied { id, applied } => written(req, state, rt, &id, applied, now),
        _ => Err(RecordsError::Internal(
            "conditional update wrote nothing".into(),
        )),
    }
}

/// Conditional delete (single: several matches are a 412).
#[utoipa::path(
    delete,
    path = "/fhir/{type}", operation_id = "conditional_delete",
    tag = "fhir",
    params(("type" = String, Path, description = "R4 resource type; the query string is the condition")),
    responses(
        (status = 200, description = "The one match was deleted, or nothing matched (OperationOutcome); 204 with Prefer: return=minimal"),
        (status = 400, description = "No condition, or an invalid one"),
        (status = 403, description = "Not permitted"),
        (status = 412, description = "Several matches, or If-Match does not match")
    ),
    security(("smart" = []))
)]
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle_delete(&req, &path, &caller, &state).await;
    super::observe(&state, "conditional-delete", &path, &result);
    result
}

async fn handle_delete(
    req: &HttpRequest,
    raw_type: &str,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let rt = resource_type.as_str();
    let condition = Condition::of_request(rt, req)?;
    let expected = http::if_match(req)?;
    let now = now_millis();
    let mut conn = state.connection().await?;
    let condition = &condition;
    let outcome = conn
        .transaction::<Outcome, RecordsError, _>(async move |conn| {
            let matches = match matched(conn, state, caller, rt, condition).await? {
                Ok(m) => m,
                Err(refusal) => return Ok(refusal),
            };
            let outcome = match matches.resolved() {
                Resolved::Several => {
                    Outcome::Refused(several(rt, "a conditional delete removes one resource"))
                }
                Resolved::None => Outcome::Nothing,
                Resolved::One(found) => Outcome::Applied {
                    id: found.id.clone(),
                    applied: apply::delete(conn, state, caller, rt, &found.id, expected, now)
                        .await?,
                },
            };
            enqueue_refusal(conn, state, &outcome).await?;
            Ok(outcome)
        })
        .await?;
    committed(state, &outcome);
    let done = |version: Option<i64>, message: &str| {
        let minimal = prefer_return(req) == Return::Minimal;
        let mut builder = http::fhir(if minimal {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::OK
        });
        if let Some(v) = version {
            builder.insert_header((header::ETAG, http::etag(v)));
        }
        if minimal {
            builder.finish()
        } else {
            builder.body(OperationOutcome::information(message).to_string())
        }
    };
    match outcome {
        Outcome::Refused(e) => Err(e.into()),
        Outcome::Nothing => Ok(done(
            None,
            "no resource matched the condition; nothing was deleted",
        )),
        Outcome::Applied {
            id,
            applied: Applied::Written { version, .. },
        } => Ok(done(Some(version), &format!("deleted {rt}/{id}"))),
        Outcome::Applied {
            id,
            applied: Applied::AlreadyDeleted { version },
        } => Ok(done(
            Some(version),
            &format!("{rt}/{id} was already deleted"),
        )),
        Outcome::Applied { id, applied } => Err(failed(state, rt, &id, applied)),
        Outcome::Existing(_) => Err(RecordsError::Internal("delete found a create".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse() {
        let c = Condition::parse("Patient", "identifier=http://x%7C1").unwrap();
        assert_eq!(c.pairs, vec![("identifier".into(), "http://x|1".into())]);
        let c = Condition::parse("Patient", "Patient?identifier=a&_count=3").unwrap();
        assert_eq!(c.pairs, vec![("identifier".into(), "a".into())]);
        assert!(Condition::parse("Patient", "?name=x").is_ok());
        assert!(Condition::parse("Patient", "Observation?code=x").is_err());
        assert!(Condition::parse("Patient", "").is_err());
        assert!(Condition::parse("Patient", "_count=1").is_err());
        assert!(Condition::parse("Patient", "identifier=").is_err());
    }

    #[test]
    fn conditions_name_known_parameters_only() {
        let registry = Registry::global();
        let ok = Condition::parse("Patient", "identifier=a&_id=x&name:exact=y").unwrap();
        assert!(ok.check(registry, "Patient").is_ok());
        let unknown = Condition::parse("Patient", "identifier=a&nonsense=1").unwrap();
        assert!(unknown.check(registry, "Patient").is_err());
        let has = Condition::parse("Patient", "_has:Observation:subject:code=1").unwrap();
        assert!(has.check(registry, "Patient").is_err());
    }

    #[test]
    fn lock_keys_ignore_order() {
        let a = Condition::parse("Patient", "a=1&b=2").unwrap();
        let b = Condition::parse("Patient", "b=2&a=1").unwrap();
        assert_eq!(a.key("Patient"), b.key("Patient"));
        assert_ne!(a.key("Patient"), a.key("Observation"));
    }
}
