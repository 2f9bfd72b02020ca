//! `PATCH /fhir/Consent/{id}`: a JSON Patch (`application/json-patch+json`, RFC 6902) or a
//! JSON Merge Patch (`application/merge-patch+json`, RFC 7396) applied to the current version,
//! as records patches its resources; the result is stored exactly as an update would be
//! (validated, enforceable, the patient unchanged).
//!
//! Access is decided before the patch is even read, so a failing `test` operation tells
//! nothing to whoever may not write the consent. Numbers keep their form as written
//! (`custodian_fhir::exact_numbers`).

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use custodian_access::{Caller, Interaction};
use custodian_fhir::{exact_numbers, http, FhirError};
use serde_json::Value;

use super::{
    if_match, known, row_version,
    update::{authorised, store_version, Stored},
};
use crate::{domain::ConsentResource, error::ConsentError, routes::AppState};

/// The patch a request carries, by its media type.
enum Patch {
    Json(json_patch::Patch),
    Merge(Value),
}

fn parse(req: &HttpRequest, body: &[u8]) -> Result<Patch, ConsentError> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        media.as_str(),
        "application/json-patch+json"
            | "application/merge-patch+json"
            | "application/json"
            | "application/fhir+json"
            | ""
    ) {
        return Err(FhirError::UnsupportedMediaType(format!(
            "PATCH takes application/json-patch+json or application/merge-patch+json, not {media}"
        ))
        .into());
    }
    let document = exact_numbers::parse(body)
        .map_err(|e| ConsentError::bad_request(format!("the patch is not valid JSON: {e}")))?;
    match media.as_str() {
        "application/json-patch+json" => serde_json::from_value(document)
            .map(Patch::Json)
            .map_err(|e| ConsentError::bad_request(format!("not a JSON Patch: {e}"))),
        "application/merge-patch+json" => Ok(Patch::Merge(document)),
        // fhirpy and others send application/json: an array is a JSON Patch, an object a merge.
        _ => match document {
            Value::Array(_) => serde_json::from_value(document)
                .map(Patch::Json)
                .map_err(|e| ConsentError::bad_request(format!("not a JSON Patch: {e}"))),
            Value::Object(_) => Ok(Patch::Merge(document)),
            _ => Err(ConsentError::bad_request(
                "a patch is a JSON Patch array or a merge patch object",
            )),
        },
    }
}

/// Applies a JSON Patch or a JSON Merge Patch to a consent.
#[utoipa::path(
    patch,
    path = "/fhir/Consent/{id}",
    tag = "Consent",
    params(
        ("id" = String, Path, description = "The consent's id"),
        ("If-Match" = Option<String>, Header, description = "W/\"<versionId>\": patch only that version"),
    ),
    request_body(content = Object, content_type = "application/json-patch+json", description = "RFC 6902 operations (or an RFC 7396 merge patch as application/merge-patch+json)"),
    responses(
        (status = 200, description = "Patched", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Not a patch", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "An actor the consent names, who may see but not change it", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "Not known, or not the caller's to see", body = Object, content_type = "application/fhir+json"),
        (status = 409, description = "Changed by someone else while being patched", body = Object, content_type = "application/fhir+json"),
        (status = 412, description = "If-Match names another version", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "Not a patch media type", body = Object, content_type = "application/fhir+json"),
        (status = 422, description = "A test operation failed, or the result is not a valid, enforceable Consent of the same patient", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn patch(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let caller = known(&state, caller);
    let precondition = if_match(&req)?;
    let (id, current, patient, decision) =
        authorised(&state, &caller, &path, Interaction::Update).await?;
    let patch = parse(&req, &body)?;
    let text = current.resource.to_string();
    let mut document = exact_numbers::parse(text.as_bytes())
        .map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    match patch {
        Patch::Json(patch) => json_patch::patch(&mut document, &patch).map_err(|e| {
            ConsentError::unprocessable(vec![(
                "Consent".into(),
                format!("the patch does not apply: {e}"),
            )])
        })?,
        Patch::Merge(merge) => json_patch::merge(&mut document, &merge),
    }
    // Back to JSON with its numbers as written, then read as any update's body is.
    let patched =
        exact_numbers::to_string(&document).map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    let value: Value =
        serde_json::from_str(&patched).map_err(|e| ConsentError::Unexpected(e.to_string()))?;
    if value.get("id").and_then(Value::as_str) != Some(id.to_string().as_str()) {
        return Err(ConsentError::unprocessable(vec![(
            "Consent.id".into(),
            "a patch cannot change or remove the consent's id".into(),
        )]));
    }
    let resource = ConsentResource::parse(value)?;
    store_version(
        &state,
        &caller,
        Stored {
            id,
            patient,
            decision,
            resource,
            precondition,
            based_on: Some(row_version(current.version_id)?),
            prefer: http::Prefer::of(&req).return_,
        },
    )
    .await
}
