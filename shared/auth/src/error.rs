use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;

/// Why a request was not authenticated or not authorised. Answers are FHIR
/// `OperationOutcome`s, since most callers are FHIR clients.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was presented")]
    MissingToken,
    #[error("the token is invalid: {0}")]
    InvalidToken(String),
    #[error("the token was revoked")]
    Revoked,
    #[error("the user is suspended")]
    Suspended,
    #[error("the signing keys could not be fetched: {0}")]
    KeysUnavailable(String),
    #[error("{0}")]
    Forbidden(String),
}

impl AuthError {
    fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) | AuthError::Revoked => "login",
            AuthError::Suspended | AuthError::Forbidden(_) => "forbidden",
            AuthError::KeysUnavailable(_) => "transient",
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) | AuthError::Revoked => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::Suspended | AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            builder.insert_header(("WWW-Authenticate", "Bearer realm=\"custodian\""));
        }
        builder.content_type("application/fhir+json").json(json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": self.code(), "diagnostics": self.to_string() }]
        }))
    }
}
