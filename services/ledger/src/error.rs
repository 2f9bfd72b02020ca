//! The one place errors become HTTP answers.
//!
//! Policy: a client's mistake (bad parameters) is 400, a size or index the log does not have
//! (yet) is 404, an entry the caller may not see is 403, everything else is 500 with a generic
//! message. Answers are JSON `{"error": <kind>, "message": <text>}`; the cause chain of a 500
//! goes to the log, never to the client.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl LedgerError {
    pub fn unexpected(e: impl std::fmt::Display) -> Self {
        LedgerError::Unexpected(e.to_string())
    }

    fn kind(&self) -> &'static str {
        match self {
            LedgerError::Validation(_) => "invalid",
            LedgerError::NotFound(_) => "not-found",
            LedgerError::Forbidden(_) => "forbidden",
            LedgerError::Unexpected(_) => "internal",
        }
    }
}

impl From<diesel::result::Error> for LedgerError {
    fn from(e: diesel::result::Error) -> Self {
        LedgerError::unexpected(format!("database: {e}"))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for LedgerError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        LedgerError::unexpected(format!("database pool: {e}"))
    }
}

impl From<crate::signing::SigningError> for LedgerError {
    fn from(e: crate::signing::SigningError) -> Self {
        LedgerError::unexpected(format!("signing: {e}"))
    }
}

impl ResponseError for LedgerError {
    fn status_code(&self) -> StatusCode {
        match self {
            LedgerError::Validation(_) => StatusCode::BAD_REQUEST,
            LedgerError::NotFound(_) => StatusCode::NOT_FOUND,
            LedgerError::Forbidden(_) => StatusCode::FORBIDDEN,
            LedgerError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            LedgerError::Unexpected(cause) => {
                tracing::error!(error = %cause, "request failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        HttpResponse::build(self.status_code())
            .json(json!({ "error": self.kind(), "message": message }))
    }
}
