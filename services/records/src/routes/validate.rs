//! `POST /fhir/{type}/$validate`: checks a resource against the R4 schema without storing it.
//! Answers 200 with an OperationOutcome either way (as the specification says); a body that is
//! not JSON, or of another type, is a 400. Nothing stored is read, so no access event is written.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::Caller;
use custodian_fhir::{FhirError, OperationOutcome};
use serde_json::Value;

use super::http;
use crate::{error::RecordsError, state::AppState};

/// Validate a resource.
#[utoipa::path(
    post,
    path = "/fhir/{type}/$validate",
    tag = "fhir",
    params(("type" = String, Path)),
    request_body(content = serde_json::Value, content_type = "application/fhir+json"),
    responses((status = 200, description = "OperationOutcome listing every issue (none when valid)")),
    security(("smart" = []))
)]
pub async fn validate(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    _caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RecordsError> {
    let result = handle(&req, &path, &body);
    super::observe(&state, "validate", &path, &result);
    result
}

fn handle(req: &HttpRequest, raw_type: &str, body: &[u8]) -> Result<HttpResponse, RecordsError> {
    let resource_type = http::parse_type(raw_type)?;
    http::require_json(req)?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| FhirError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    let resource = custodian_fhir::validate::resource_to_validate(value, resource_type.as_str())?;
    let outcome = match crate::domain::validation::validate(&resource) {
        Ok(()) => OperationOutcome::single("information", "informational", "no issues found"),
        Err(issues) => OperationOutcome::issues("structure", &issues),
    };
    Ok(http::fhir(StatusCode::OK).body(outcome.to_string()))
}
