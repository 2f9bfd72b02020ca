//! `OperationOutcome` and the one place FHIR errors become HTTP statuses.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::{json, Value};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Builds `OperationOutcome` resources.
pub struct OperationOutcome;

impl OperationOutcome {
    /// One issue. `code` is from the IssueType value set (invalid, not-found, forbidden ...).
    pub fn single(severity: &str, code: &str, diagnostics: &str) -> Value {
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }]
        })
    }

    /// Several issues with FHIRPath-ish locations (`expression`).
    pub fn issues(code: &str, issues: &[(String, String)]) -> Value {
        let issues: Vec<Value> = issues
            .iter()
            .map(|(location, message)| {
                let mut issue =
                    json!({ "severity": "error", "code": code, "diagnostics": message });
                if !location.is_empty() {
                    issue["expression"] = json!([location]);
                }
                issue
            })
            .collect();
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }

    /// An informational outcome (e.g. after a delete).
    pub fn information(diagnostics: &str) -> Value {
        Self::single("information", "informational", diagnostics)
    }
}

/// Every way a FHIR interaction fails. Causes go to the log; clients get the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FhirError {
    /// 400: malformed JSON, bad search parameter, wrong resourceType.
    #[error("{0}")]
    BadRequest(String),
    /// 422: well-formed JSON that breaks the R4 schema or a business rule.
    #[error("the resource is not valid FHIR R4")]
    Unprocessable(Vec<(String, String)>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 410: the resource was deleted.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: version conflict without If-Match, or a duplicate.
    #[error("{0}")]
    Conflict(String),
    /// 412: If-Match did not match the current version.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 406: the client asked for a format that is not served.
    #[error("{0}")]
    NotAcceptable(String),
    /// 503: a dependency (database, consent replica) is not available.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// 500: a bug. The detail goes to the log only.
    #[error("an internal error occurred")]
    Internal(String),
}

impl FhirError {
    fn issue_code(&self) -> &'static str {
        match self {
            FhirError::BadRequest(_) => "invalid",
            FhirError::Unprocessable(_) => "structure",
            FhirError::Unauthorized(_) => "login",
            FhirError::Forbidden(_) => "forbidden",
            FhirError::NotFound(_) | FhirError::Gone(_) => "not-found",
            FhirError::MethodNotAllowed(_)
            | FhirError::UnsupportedMediaType(_)
            | FhirError::NotAcceptable(_) => "not-supported",
            FhirError::Conflict(_) | FhirError::PreconditionFailed(_) => "conflict",
            FhirError::Unavailable(_) => "transient",
            FhirError::Internal(_) => "exception",
        }
    }

    pub fn outcome(&self) -> Value {
        match self {
            FhirError::Unprocessable(issues) => OperationOutcome::issues(self.issue_code(), issues),
            other => OperationOutcome::single("error", other.issue_code(), &other.to_string()),
        }
    }
}

impl ResponseError for FhirError {
    fn status_code(&self) -> StatusCode {
        match self {
            FhirError::BadRequest(_) => StatusCode::BAD_REQUEST,
            FhirError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            FhirError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            FhirError::Forbidden(_) => StatusCode::FORBIDDEN,
            FhirError::NotFound(_) => StatusCode::NOT_FOUND,
            FhirError::Gone(_) => StatusCode::GONE,
            FhirError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            FhirError::Conflict(_) => StatusCode::CONFLICT,
            FhirError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            FhirError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            FhirError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            FhirError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            FhirError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let FhirError::Internal(detail) | FhirError::Unavailable(detail) = self {
            tracing::error!(error = %detail, "request failed");
        }
        HttpResponse::build(self.status_code())
            .content_type(FHIR_JSON)
            .body(self.outcome().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_out_of_the_response() {
        let err = FhirError::Internal("connection refused to 10.0.0.3".into());
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.outcome().to_string().contains("10.0.0.3"));
    }

    #[test]
    fn unprocessable_lists_every_issue() {
        let err = FhirError::Unprocessable(vec![
            ("Patient.gender".into(), "bad".into()),
            ("".into(), "x".into()),
        ]);
        let outcome = err.outcome();
        assert_eq!(outcome["issue"].as_array().unwrap().len(), 2);
        assert_eq!(outcome["issue"][0]["expression"][0], "Patient.gender");
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
