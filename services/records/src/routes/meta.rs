//! `$meta`, `$meta-add` and `$meta-delete` (resource-operation-meta*.html): a resource's tags,
//! security labels and profiles, as a `Parameters` whose `return` is the `meta`.
//!
//! - `GET [type]/[id]/$meta` (and `.../_history/[vid]/$meta`) is a read: decided and recorded
//!   as one, hidden is absent.
//! - `POST [type]/[id]/$meta-add|$meta-delete` with a `meta` (valueMeta) change the current
//!   version's `meta.tag`, `meta.security` and `meta.profile` in place: as the specification
//!   has it (and HAPI FHIR does), no new version is made, so `versionId`, `lastUpdated` and the
//!   ETag stay. They are updates for access: the caller must be permitted to update the
//!   resource as it is AND as it becomes (security labels change who may see it), and the
//!   change is recorded as an update. A restrictive label takes effect on the next access.
//! - `[type]/$meta` and `$meta` (what is in use across resources) are not served: a 405 that
//!   says so.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::{absent_event, Caller, Interaction};
use custodian_events::AccessEvent;
use custodian_fhir::FhirError;
use diesel_async::AsyncConnection;
use serde_json::{json, Map, Value};

use super::{
    apply, http, parameters,
    read::visible_version,
    write::{parse_body, prepare, stamp},
};
use crate::{
    access::{hidden, refused, Subject},
    domain::VersionId,
    error::RecordsError,
    state::AppState,
    store,
};

/// The elements of `meta` these operations change (they are sets).
const SETS: [&str; 3] = ["tag", "security", "profile"];

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Delete,
}

impl Change {
    fn name(self) -> &'static str {
        match self {
            Change::Add => "meta-add",
            Change::Delete => "meta-delete",
        }
    }
}

/// The `meta` of a `$meta-add`/`$meta-delete` request: tags, security labels (codings matched
/// on system + code) and profiles (matched on the URL).
#[derive(Debug, Clone, PartialEq)]
pub struct MetaChange {
    tag: Vec<Value>,
    security: Vec<Value>,
    profile: Vec<Value>,
}

impl MetaChange {
    /// From the body: a `Parameters` with one `meta` parameter holding a `valueMeta`.
    pub fn parse(body: &[u8]) -> Result<Self, FhirError> {
        let params = parameters::parse(body)?;
        let mut metas = params.iter().filter(|p| p.name == "meta");
        let meta = match (metas.next(), metas.next()) {
            (Some(p), None) if p.kind == "valueMeta" => &p.value,
            (Some(p), None) => {
                return Err(FhirError::BadRequest(format!(
                    "the meta parameter must be a valueMeta, not {}",
                    p.kind
                )))
            }
            _ => {
                return Err(FhirError::BadRequest(
                    "the body must be a Parameters with exactly one meta parameter (valueMeta)"
                        .into(),
                ))
            }
        };
        if let Some(other) = params.iter().find(|p| p.name != "meta") {
            return Err(FhirError::BadRequest(format!(
                "{} is not a parameter of this operation (only meta)",
                other.name
            )));
        }
        let Some(meta) = meta.as_object() else {
            return Err(FhirError::BadRequest("valueMeta must be an object".into()));
        };
        if let Some(key) = meta.keys().find(|k| {
            !SETS.contains(&k.as_str()) && !matches!(k.as_str(), "versionId" | "lastUpdated")
        }) {
            return Err(FhirError::BadRequest(format!(
                "valueMeta.{key} cannot be changed: only tag, security and profile"
            )));
        }
        let list = |name: &str| -> Result<Vec<Value>, FhirError> {
            match meta.get(name) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => Err(FhirError::BadRequest(format!(
                    "valueMeta.{name} must be an array"
                ))),
            }
        };
        let (tag, security, profile) = (list("tag")?, list("security")?, list("profile")?);
        for (name, codings) in [("tag", &tag), ("security", &security)] {
            for c in codings {
                let code = c.get("code").and_then(Value::as_str);
                let system_ok = c.get("system").is_none_or(Value::is_string);
                if !c.is_object() || code.is_none_or(str::is_empty) || !system_ok {
                    return Err(FhirError::BadRequest(format!(
                        "valueMeta.{name} must hold Codings with a code (and a system): {c}"
                    )));
                }
            }
        }
        if profile.iter().any(|p| {
            p.as_str()
                .is_none_or(|s| s.is_empty() || s.contains(char::is_whitespace))
        }) {
            return Err(FhirError::BadRequest(
                "valueMeta.profile must hold canonical URLs".into(),
            ));
        }
        if tag.is_empty() && security.is_empty() && profile.is_empty() {
            return Err(FhirError::BadRequest(
                "valueMeta names no tag, security label or profile".into(),
            ));
        }
        Ok(Self {
            tag,
            security,
            profile,
        })
    }

    /// `meta` with the change applied (sets: nothing is added twice).
    pub fn apply(&self, change: Change, meta: &mut Map<String, Value>) {
        for (name, items) in [
            ("tag", &self.tag),
            ("security", &self.security),
            ("profile", &self.profile),
        ] {
            let mut current: Vec<Value> = match meta.remove(name) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for item in items {
                let found = current.iter().position(|c| same(name, c, item));
                match (change, found) {
                    (Change::Add, None) => current.push(item.clone()),
                    (Change::Delete, Some(_)) => current.retain(|c| !same(name, c, item)),
                    _ => {}
                }
            }
            if !current.is_empty() {
                meta.insert(name.to_string(), Value::Array(current));
            }
        }
    }
}

/// Whether two members of `meta.<name>` are the same: codings by system and code (version
/// and display ignored), profiles by URL.
fn same(name: &str, a: &Value, b: &Value) -> bool {
    if name == "profile" {
        return a == b;
    }
    a.get("system") == b.get("system") && a.get("code") == b.get("code")
}

/// The `Parameters` answer: `return` holding `meta`.
fn answer(meta: &Value) -> HttpResponse {
    http::fhir(StatusCode::OK).body(parameters_of(meta).to_string())
}

/// The `Parameters` an operation answers: `return` holding `meta`.
pub(super) fn parameters_of(meta: &Value) -> Value {
    json!({
        "resourceType": "Parameters",
        "parameter": [{"name": "return", "valueMeta": meta}]
    })
}

/// The `meta` of a stored body (an empty one when it has none).
pub(super) fn meta_of(json: &str) -> Result<Value, RecordsError> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| RecordsError::Internal(e.to_string()))?;
    Ok(value.get("meta").cloned().unwrap_or_else(|| json!({})))
}

/// The tags, security labels and profiles of a resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}/$meta",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, description = "Parameters: return (valueMeta)"),
        (status = 404, description = "Unknown resource, or one the caller may not see"),
        (status = 410, description = "Deleted")
    ),
    security(("smart" = []))
)]
pub async fn meta(
    path: web::Path<(String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = read_meta(&raw_type, &raw_id, None, &caller, &state).await;
    super::observe(&state, "meta", &raw_type, &result);
    result
}

/// The tags, security labels and profiles of one version of a resource.
#[utoipa::path(
    get,
    path = "/fhir/{type}/{id}/_history/{vid}/$meta",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path), ("vid" = String, Path)),
    responses(
        (status = 200, description = "Parameters: return (valueMeta)"),
        (status = 404, description = "Unknown resource or version, or one the caller may not see")
    ),
    security(("smart" = []))
)]
pub async fn version_meta(
    path: web::Path<(String, String, String)>,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id, raw_version) = path.into_inner();
    let result = match VersionId::parse(&raw_version) {
        Ok(v) => read_meta(&raw_type, &raw_id, Some(v), &caller, &state).await,
        Err(e) => Err(FhirError::NotFound(e.to_string()).into()),
    };
    super::observe(&state, "meta", &raw_type, &result);
    result
}

async fn read_meta(
    raw_type: &str,
    raw_id: &str,
    version: Option<VersionId>,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    let mut conn = state.connection().await?;
    let (_, json) = visible_version(
        state,
        &mut conn,
        caller,
        resource_type.as_str(),
        id.as_str(),
        version,
    )
    .await?;
    Ok(answer(&meta_of(&json)?))
}

/// `[type]/$meta` and `$meta`: not served.
#[utoipa::path(
    get,
    path = "/fhir/{type}/$meta",
    tag = "fhir",
    params(("type" = String, Path)),
    responses((status = 405, description = "Only a resource's $meta is served ([type]/[id]/$meta)")),
    security(("smart" = []))
)]
pub async fn meta_in_use(req: HttpRequest) -> Result<HttpResponse, RecordsError> {
    Err(FhirError::MethodNotAllowed(format!(
        "{} is not served: the tags, security labels and profiles in use across resources are \
         not listed; ask one resource's with GET [type]/[id]/$meta",
        req.path()
    ))
    .into())
}

/// Add tags, security labels and profiles to a resource (no new version).
#[utoipa::path(
    post,
    path = "/fhir/{type}/{id}/$meta-add",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/fhir+json", description = "Parameters: meta (valueMeta)"),
    responses(
        (status = 200, description = "Parameters: return (valueMeta), the resulting meta"),
        (status = 400, description = "Not a Parameters with one meta"),
        (status = 403, description = "Not permitted to update it as it is or as it would become"),
        (status = 404, description = "Unknown resource, or one the caller may not see"),
        (status = 410, description = "Deleted")
    ),
    security(("smart" = []))
)]
pub async fn meta_add(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = change(
        &req,
        &raw_type,
        &raw_id,
        &body,
        Change::Add,
        &caller,
        &state,
    )
    .await;
    super::observe(&state, Change::Add.name(), &raw_type, &result);
    result
}

/// Remove tags, security labels and profiles from a resource (no new version).
#[utoipa::path(
    post,
    path = "/fhir/{type}/{id}/$meta-delete",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/fhir+json", description = "Parameters: meta (valueMeta)"),
    responses(
        (status = 200, description = "Parameters: return (valueMeta), the resulting meta"),
        (status = 400, description = "Not a Parameters with one meta"),
        (status = 403, description = "Not permitted to update it as it is or as it would become"),
        (status = 404, description = "Unknown resource, or one the caller may not see"),
        (status = 410, description = "Deleted")
    ),
    security(("smart" = []))
)]
pub async fn meta_delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = change(
        &req,
        &raw_type,
        &raw_id,
        &body,
        Change::Delete,
        &caller,
        &state,
    )
    .await;
    super::observe(&state, Change::Delete.name(), &raw_type, &result);
    result
}

/// What a change did.
pub(super) enum Changed {
    Done(Value),
    /// Refused or impossible: the event to record and the answer.
    Not(Box<AccessEvent>, RecordsError),
}

async fn change(
    req: &HttpRequest,
    raw_type: &str,
    raw_id: &str,
    body: &[u8],
    change: Change,
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let id = http::parse_id(raw_id)?;
    http::require_json(req)?;
    let wanted = MetaChange::parse(body)?;
    let mut conn = state.connection().await?;
    let changed = {
        let (rt, id, wanted) = (&resource_type, id.as_str(), &wanted);
        conn.transaction::<Changed, RecordsError, _>(async move |conn| {
            let changed = apply_change(conn, state, caller, rt, id, wanted, change).await?;
            if let Changed::Not(event, _) = &changed {
                state
                    .enqueue_events(conn, std::slice::from_ref(event.as_ref()))
                    .await?;
            }
            Ok(changed)
        })
        .await?
    };
    state.relay.wake();
    match changed {
        Changed::Done(meta) => Ok(answer(&meta)),
        Changed::Not(_, error) => Err(error),
    }
}

/// A denial as [`Changed::Not`], its event about `subject`: 403, or the 404 of an unknown id
/// for a caller who may not even read the resource as it is (`existing`; on its own rights:
/// break-glass opens reads, and must not tell a writer that a resource exists).
fn deny(
    state: &AppState,
    caller: &Caller,
    subject: &Subject,
    existing: &Subject,
    decision: custodian_access::Decision,
) -> Result<Changed, RecordsError> {
    let event = decision.event(caller, Interaction::Update, subject.touched(0));
    let may_read = state
        .kernel
        .decide(
            &caller.without_break_glass(),
            Interaction::Read,
            &existing.target(),
        )?
        .permitted();
    let error = if may_read {
        refused(state, &decision)
    } else {
        let id = existing.id.as_deref().unwrap_or_default();
        hidden(state, &decision, &existing.resource_type, id)
    };
    Ok(Changed::Not(Box::new(event), error.into()))
}

/// Changes the current version's meta in place, under its row lock, once the caller is
/// permitted to update the resource as it is and as it becomes. Its event is enqueued on
/// `conn` when it is done, returned when it is not.
pub(super) async fn apply_change(
    conn: &mut diesel_async::AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &crate::domain::ResourceType,
    id: &str,
    wanted: &MetaChange,
    change: Change,
) -> Result<Changed, RecordsError> {
    let rt = resource_type.as_str();
    let Some(current) = store::current(conn, rt, id, true).await? else {
        return Ok(Changed::Not(
            Box::new(absent_event(caller, Interaction::Update, rt)),
            crate::access::not_known(rt, id).into(),
        ));
    };
    let existing = apply::existing_subject(conn, state, rt, id, &current).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Update, &existing.target())?;
    if !decision.permitted() {
        return deny(state, caller, &existing, &existing, decision);
    }
    let stored = store::version(conn, &state.cipher, rt, id, current.version)
        .await?
        .and_then(|v| v.json);
    let Some(json) = stored.filter(|_| !current.deleted) else {
        let event = decision.failed_event(caller, Interaction::Update, existing.touched(0));
        return Ok(Changed::Not(
            Box::new(event),
            FhirError::Gone(format!("{rt}/{id} was deleted")).into(),
        ));
    };
    let incoming = parse_body(json.as_bytes(), resource_type)?;
    let mut meta = match incoming.value_of("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    wanted.apply(change, &mut meta);
    let incoming = incoming
        .with_field("meta", &Value::Object(meta))
        .map_err(|e| FhirError::BadRequest(e.to_string()))?;
    let prepared = prepare(state, &incoming, resource_type, id, current.last_updated)?;
    if let Some(decision) = apply::unmanaged(
        conn,
        state,
        caller,
        &existing,
        rt,
        id,
        Some(&current),
        Some(&incoming),
    )
    .await?
    {
        return deny(state, caller, &existing, &existing, decision);
    }
    // As it becomes: its new labels, in the same compartment (meta moves nothing).
    let mut facts = prepared.facts.clone();
    facts.referrers = existing.instance.as_ref().and_then(|f| f.referrers.clone());
    let subject = Subject {
        confidentiality: prepared.confidentiality.clone(),
        instance: Some(facts),
        ..existing.clone()
    };
    let decision = state
        .kernel
        .decide(caller, Interaction::Update, &subject.target())?;
    if !decision.permitted() {
        return deny(state, caller, &subject, &existing, decision);
    }
    let json = stamp(&incoming, id, current.version, current.last_updated)?;
    store::rewrite_current(
        conn,
        &state.cipher,
        rt,
        id,
        current.version,
        &json,
        prepared.confidentiality.as_deref(),
        &prepared.index,
    )
    .await?;
    if subject.patient.is_some() {
        crate::facts::write(conn, rt, id, current.version, &prepared.facts).await?;
    }
    let event = decision.event(caller, Interaction::Update, subject.touched(1));
    state.enqueue_events(conn, &[event]).await?;
    Ok(Changed::Done(meta_of(&json)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(meta: Value) -> Vec<u8> {
        json!({"resourceType": "Parameters", "parameter": [{"name": "meta", "valueMeta": meta}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn meta_changes_are_sets() {
        let change = MetaChange::parse(&body(json!({
            "tag": [{"system": "urn:t", "code": "a", "display": "A"}],
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
            "profile": ["http://example.org/p"]
        })))
        .unwrap();
        let mut meta = json!({"versionId": "2", "tag": [{"system": "urn:t", "code": "a"}]})
            .as_object()
            .cloned()
            .unwrap();
        change.apply(Change::Add, &mut meta);
        assert_eq!(meta["tag"].as_array().unwrap().len(), 1, "no duplicates");
        assert_eq!(meta["security"][0]["code"], "R");
        assert_eq!(meta["profile"][0], "http://example.org/p");
        change.apply(Change::Add, &mut meta);
        assert_eq!(meta["security"].as_array().unwrap().len(), 1);
        change.apply(Change::Delete, &mut meta);
        assert!(meta.get("tag").is_none() && meta.get("security").is_none());
        assert!(meta.get("profile").is_none());
        assert_eq!(meta["versionId"], "2");
    }

    #[test]
    fn malformed_meta_changes_are_refused() {
        for bad in [
            b"{}".to_vec(),
            br#"{"resourceType":"Parameters"}"#.to_vec(),
            br#"{"resourceType":"Parameters","parameter":[{"name":"meta","valueString":"x"}]}"#
                .to_vec(),
            body(json!({})),
            body(json!([])),
            body(json!({"tag": {"code": "a"}})),
            body(json!({"tag": [{"system": "urn:t"}]})),
            body(json!({"security": ["R"]})),
            body(json!({"profile": [3]})),
            body(json!({"source": "x", "tag": [{"code": "a"}]})),
        ] {
            assert!(
                MetaChange::parse(&bad).is_err(),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
    }
}
