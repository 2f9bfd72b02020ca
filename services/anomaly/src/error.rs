//! How handlers fail. Policy: a client error says what was wrong; an unexpected error (database
//! down, a bug) logs its cause chain and answers a generic 500 or 503, never the cause. Answers
//! are FHIR `OperationOutcome`s like the other services'. Authentication and role failures are
//! [`custodian_auth::AuthError`] (401/403), answered by the extractor.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The access kernel denied it (the explanation names no patient).
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the resource's state (feedback on a dismissed alert).
    #[error("{0}")]
    Conflict(String),
    /// The database could not be reached: worth retrying.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    #[error("an unexpected error occurred")]
    Unexpected(String),
}

impl ApiError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn invalid(what: impl Into<String>) -> Self {
        Self::Invalid(what.into())
    }

    pub fn forbidden(what: impl Into<String>) -> Self {
        Self::Forbidden(what.into())
    }

    pub fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict(what.into())
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not-found",
            ApiError::Invalid(_) => "invalid",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable(_) => "transient",
            ApiError::Unexpected(_) => "exception",
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::Unexpected(e.to_string())
    }
}

impl From<custodian_events::EventError> for ApiError {
    fn from(e: custodian_events::EventError) -> Self {
        ApiError::Unexpected(format!("access events: {e}"))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Unexpected(cause) | ApiError::Unavailable(cause) = self {
            tracing::error!(error = %cause, "request failed");
        }
        HttpResponse::build(self.status_code()).content_type("application/fhir+json").json(json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": self.code(), "diagnostics": self.to_string() }]
        }))
    }
}
