//! `PATCH /fhir/{type}/{id}` and conditional `PATCH /fhir/{type}?params` (R4 http.html
//! 3.1.0.5): a JSON Patch (`application/json-patch+json`, RFC 6902) or a FHIRPath Patch
//! (`application/fhir+json`, a Parameters resource; see [`super::fhirpath_patch`]).
//!
//! The caller's right to update the resource is decided before anything about it is
//! revealed (a hidden resource is a 404, as for a read). The patched resource then goes
//! through exactly what a `PUT` goes through (`write::prepare`, `apply::update`): validation,
//! compartment binding, custody, access on the new content, the version and its event.
//!
//! Statuses: a malformed patch document is a 400; a patch that cannot be applied to the
//! resource (a failed `test`, a path that does not exist) or whose result is not valid R4, or
//! changes `id` or `resourceType`, is a 422 (R4: "422 Unprocessable Entity if the patch
//! results in an invalid resource"; HAPI FHIR answers a failed `test` likewise); `If-Match`
//! not matching is a 412; a deleted resource is a 410.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use custodian_access::{absent_event, Caller, Interaction};
use custodian_fhir::{exact_numbers, FhirError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;

use super::{
    apply::{self, existing_subject, Applied, WriteRequest},
    conditional::{self, committed, enqueue_refusal, matched, Condition, Outcome, Resolved},
    fhirpath_patch, http,
    write::{parse_body, prepare},
};
use crate::{
    domain::{resource::now_millis, ResourceType},
    error::RecordsError,
    state::AppState,
    store,
};

pub const JSON_PATCH: &str = "application/json-patch+json";
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// A parsed patch document.
pub enum Patch {
    Json(json_patch::Patch),
    Fhir(fhirpath_patch::FhirPatch),
    /// JSON Merge Patch (RFC 7386): an object whose members replace (or, when null, remove)
    /// the resource's. Not in R4, but what some clients send (fhirpy's `patch`).
    Merge(Value),
}

impl Patch {
    /// From the body, by its content type.
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, FhirError> {
        let mime = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        // Its numbers kept as written (see `exact_numbers`): a value it sets keeps its form.
        let exact = |what: &str| {
            exact_numbers::parse(body)
                .map_err(|e| FhirError::BadRequest(format!("the body is not {what}: {e}")))
        };
        match mime.as_str() {
            JSON_PATCH => Self::json_patch(exact("a JSON Patch (RFC 6902)")?),
            MERGE_PATCH => match exact("a JSON Merge Patch (RFC 7386)") {
                Ok(value @ Value::Object(_)) => Ok(Patch::Merge(value)),
                _ => Err(FhirError::BadRequest(
                    "a JSON Merge Patch (RFC 7386) is a JSON object".into(),
                )),
            },
            // One media type, three documents, told apart by their shape: an array is a JSON
            // Patch, a Parameters resource a FHIRPath Patch, any other object a merge patch.
            "application/fhir+json" | "application/json" | "" => {
                let value = exact("JSON")?;
                match &value {
                    Value::Array(_) => Self::json_patch(value),
                    Value::Object(o)
                        if o.get("resourceType").and_then(Value::as_str) == Some("Parameters") =>
                    {
                        fhirpath_patch::FhirPatch::parse(&value).map(Patch::Fhir)
                    }
                    Value::Object(_) => Ok(Patch::Merge(value)),
                    _ => Err(FhirError::BadRequest(
                        "a patch is a JSON Patch array, a FHIRPath Patch Parameters resource or a \
                         JSON Merge Patch object"
                            .into(),
                    )),
                }
            }
            other => Err(FhirError::UnsupportedMediaType(format!(
                "content type {other:?} is not a patch; send {JSON_PATCH}, a FHIRPath Patch \
                 Parameters resource as application/fhir+json, or {MERGE_PATCH}"
            ))),
        }
    }

    /// A JSON Patch from its document, its numbers marked (see `exact_numbers`).
    pub fn json_patch(value: Value) -> Result<Self, FhirError> {
        serde_json::from_value(value).map(Patch::Json).map_err(|e| {
            FhirError::BadRequest(format!("the body is not a JSON Patch (RFC 6902): {e}"))
        })
    }

    /// Applies the patch to `doc` (a resource of `resource_type`, its numbers marked).
    pub fn apply(&self, resource_type: &str, doc: &mut Value) -> Result<(), FhirError> {
        match self {
            Patch::Json(patch) => {
                let failed = |index: usize, path: &str, what: &str| {
                    FhirError::Unprocessable(vec![(
                        format!("patch operation {index} ({path})"),
                        format!("the patch cannot be applied: {what}"),
                    )])
                };
                // One operation at a time, `test` compared here: json_patch compares numbers
                // as serde_json values, and marked numbers are strings (`1.50` must pass a test
                // of `1.5`). A failure leaves `doc` half-patched; the caller drops it.
                for (index, op) in patch.0.iter().enumerate() {
                    if let json_patch::PatchOperation::Test(test) = op {
                        let path = test.path.as_str();
                        match doc.pointer(path) {
                            Some(found) if exact_numbers::same(found, &test.value) => continue,
                            Some(_) => return Err(failed(index, path, "its test failed")),
                            None => {
                                return Err(failed(
                                    index,
                                    path,
                                    "its path does not exist in the resource",
                                ))
                            }
                        }
                    }
                    json_patch::patch_unsafe(doc, std::slice::from_ref(op)).map_err(|e| {
                        let what = match e.kind {
                            json_patch::PatchErrorKind::TestFailed => "its test failed",
                            _ => "its path does not exist in the resource",
                        };
                        failed(index, e.path.as_str(), what)
                    })?;
                }
                Ok(())
            }
            Patch::Fhir(patch) => patch.apply(resource_type, doc),
            Patch::Merge(patch) => {
                json_patch::merge(doc, patch);
                Ok(())
            }
        }
    }
}

/// Patches `id` on `conn`: the caller's right to update it is decided first; then the patch,
/// and the result goes through `apply::update` as a `PUT` would.
#[allow(clippy::too_many_arguments)]
pub(super) async fn patch_on(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &ResourceType,
    id: &str,
    patch: &Patch,
    expected: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome, RecordsError> {
    let rt = resource_type.as_str();
    let applied = |applied| Outcome::Applied {
        id: id.to_string(),
        applied,
    };
    let Some(current) = store::current(conn, rt, id, true).await? else {
        return Ok(applied(Applied::Missing {
            event: absent_event(caller, Interaction::Update, rt),
        }));
    };
    let existing = existing_subject(conn, state, rt, id, &current).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Update, &existing.target())?;
    if !decision.permitted() {
        return Ok(applied(apply::denied(
            state,
            caller,
            Interaction::Update,
            &existing,
            decision,
            true,
        )?));
    }
    if current.deleted {
        return Ok(Outcome::Refused(FhirError::Gone(format!(
            "{rt}/{id} was deleted"
        ))));
    }
    if let Some(expected) = expected {
        if current.version != expected {
            return Ok(Outcome::Refused(FhirError::PreconditionFailed(format!(
                "If-Match W/\"{expected}\" does not match the current version"
            ))));
        }
    }
    let stored = store::version(conn, &state.cipher, rt, id, current.version)
        .await?
        .and_then(|v| v.json)
        .ok_or_else(|| RecordsError::Internal(format!("{rt}/{id} has no current body")))?;
    // Its numbers as stored (as the client wrote them), not as f64s.
    let mut doc = match exact_numbers::parse(stored.as_bytes()) {
        Ok(doc) => doc,
        Err(exact_numbers::ExactError::Marked) => {
            return Ok(Outcome::Refused(FhirError::Unprocessable(vec![(
                rt.to_string(),
                "the resource holds U+FDD0, a Unicode noncharacter: it cannot be patched".into(),
            )])))
        }
        Err(e) => return Err(RecordsError::Internal(e.to_string())),
    };
    if let Err(e) = patch.apply(rt, &mut doc) {
        return Ok(Outcome::Refused(e));
    }
    if doc.get("resourceType").and_then(Value::as_str) != Some(rt)
        || doc.get("id").and_then(Value::as_str) != Some(id)
    {
        return Ok(Outcome::Refused(FhirError::Unprocessable(vec![(
            format!("{rt}.id"),
            "a patch may not change the resource's id or resourceType".into(),
        )])));
    }
    let body = exact_numbers::to_string(&doc).map_err(|e| RecordsError::Internal(e.to_string()))?;
    let incoming = parse_body(body.as_bytes(), resource_type)?;
    let prepared = match prepare(state, &incoming, resource_type, id, now) {
        Ok(p) => p,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    Ok(applied(
        apply::update(
            conn,
            state,
            WriteRequest {
                caller,
                resource_type: rt,
                id,
                incoming: &incoming,
                prepared: &prepared,
                expected,
                now,
            },
        )
        .await?,
    ))
}

/// Patch a resource.
#[utoipa::path(
    patch,
    path = "/fhir/{type}/{id}",
    tag = "fhir",
    params(("type" = String, Path), ("id" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/json-patch+json",
        description = "A JSON Patch, or a FHIRPath Patch Parameters resource as application/fhir+json"),
    responses(
        (status = 200, description = "Patched: the new version"),
        (status = 400, description = "A malformed patch document"),
        (status = 403, description = "Not permitted"),
        (status = 404, description = "Unknown resource, or one the caller may not see"),
        (status = 410, description = "Deleted"),
        (status = 412, description = "If-Match does not match the current version"),
        (status = 415, description = "Not a patch media type"),
        (status = 422, description = "The patch does not apply, or its result is not valid R4 or changes the id")
    ),
    security(("smart" = []))
)]
pub async fn patch(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let (raw_type, raw_id) = path.into_inner();
    let result = handle(&req, &raw_type, Target::Id(&raw_id), &body, &caller, &state).await;
    super::observe(&state, "patch", &raw_type, &result);
    result
}

/// Conditional patch: the one resource matching the query string.
#[utoipa::path(
    patch,
    path = "/fhir/{type}",
    tag = "fhir",
    params(("type" = String, Path, description = "R4 resource type; the query string is the condition")),
    request_body(content = serde_json::Value, content_type = "application/json-patch+json"),
    responses(
        (status = 200, description = "The one match was patched"),
        (status = 400, description = "No condition, an invalid one, or a malformed patch"),
        (status = 404, description = "Nothing (visible) matched"),
        (status = 412, description = "Several matches, or If-Match does not match"),
        (status = 422, description = "The patch does not apply, or its result is not valid R4")
    ),
    security(("smart" = []))
)]
pub async fn conditional_patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle(&req, &path, Target::Condition, &body, &caller, &state).await;
    super::observe(&state, "patch", &path, &result);
    result
}

enum Target<'a> {
    Id(&'a str),
    Condition,
}

async fn handle(
    req: &HttpRequest,
    raw_type: &str,
    target: Target<'_>,
    body: &[u8],
    caller: &Caller,
    state: &AppState,
) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    let rt = resource_type.as_str();
    let (id, condition) = match target {
        Target::Id(raw) => (Some(http::parse_id(raw)?), None),
        Target::Condition => (None, Some(Condition::of_request(rt, req)?)),
    };
    let patch = Patch::parse(req, body)?;
    let expected = http::if_match(req)?;
    let now = now_millis();
    let mut conn = state.connection().await?;
    let outcome = {
        let (resource_type, id, condition, patch) = (&resource_type, &id, &condition, &patch);
        conn.transaction::<Outcome, RecordsError, _>(async move |conn| {
            let target = match (id, condition) {
                (Some(id), _) => id.as_str().to_string(),
                (None, Some(condition)) => {
                    let matches = match matched(conn, state, caller, rt, condition).await? {
                        Ok(m) => m,
                        Err(refusal) => return Ok(refusal),
                    };
                    match matches.resolved() {
                        Resolved::One(found) => found.id.clone(),
                        Resolved::None => {
                            return Ok(Outcome::Refused(FhirError::NotFound(format!(
                                "no {rt} matches the condition"
                            ))))
                        }
                        Resolved::Several => {
                            return Ok(Outcome::Refused(conditional::several(
                                rt,
                                "a conditional patch changes one resource",
                            )))
                        }
                    }
                }
                (None, None) => {
                    return Err(RecordsError::Internal("a patch without a target".into()))
                }
            };
            let outcome = patch_on(
                conn,
                state,
                caller,
                resource_type,
                &target,
                patch,
                expected,
                now,
            )
            .await?;
            enqueue_refusal(conn, state, &outcome).await?;
            Ok(outcome)
        })
        .await?
    };
    committed(state, &outcome);
    match outcome {
        Outcome::Refused(e) => Err(e.into()),
        Outcome::Applied { id, applied } => conditional::written(req, state, rt, &id, applied, now),
        _ => Err(RecordsError::Internal("a patch wrote nothing".into())),
    }
}
