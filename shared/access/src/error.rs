use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;

/// What the kernel itself can fail with (a denial is a [`crate::Decision`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// 400: a header the kernel reads is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 503: the kernel cannot decide yet (consents not loaded). Never a permit.
    #[error("{0}")]
    Unavailable(String),
}

impl ResponseError for AccessError {
    fn status_code(&self) -> StatusCode {
        match self {
            AccessError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AccessError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            AccessError::BadRequest(_) => "invalid",
            AccessError::Unavailable(_) => "transient",
        };
        HttpResponse::build(self.status_code())
            .content_type("application/fhir+json")
            .json(json!({
                "resourceType": "OperationOutcome",
                "issue": [{ "severity": "error", "code": code, "diagnostics": self.to_string() }]
            }))
    }
}
