//! `POST /fhir/Consent/$validate`: whether a Consent would be accepted, without storing it:
//! the R4 schema and whether the engine can enforce it exactly (the same checks a create
//! makes). Answers 200 with an OperationOutcome either way, as records' `$validate` does; a
//! body that is not JSON, or not a Consent, is a 400. Nothing stored is read: no access event.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use custodian_access::Caller;
use custodian_fhir::{http, OperationOutcome};

use super::json_body;
use crate::{
    domain::{access::CONSENT, ConsentResource},
    error::ConsentError,
};

/// Validate a Consent.
#[utoipa::path(
    post,
    path = "/fhir/Consent/$validate",
    tag = "Consent",
    request_body(content = Object, content_type = "application/fhir+json", description = "A Consent, or Parameters with a resource parameter"),
    responses(
        (status = 200, description = "OperationOutcome listing every issue (none when it would be accepted)", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Not JSON, or not a Consent", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn validate(
    req: HttpRequest,
    _caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, ConsentError> {
    let value = json_body(&req, &body)?;
    let resource = custodian_fhir::validate::resource_to_validate(value, CONSENT)?;
    let outcome = match ConsentResource::parse(resource) {
        Ok(_) => OperationOutcome::single("information", "informational", "no issues found"),
        Err(ConsentError::Invalid(issues)) => OperationOutcome::issues("processing", &issues),
        Err(other) => return Err(other),
    };
    Ok(http::fhir(StatusCode::OK).body(outcome.to_string()))
}
