//! The error policy: every failure becomes a FHIR `OperationOutcome` with the right status
//! (`custodian_fhir::FhirError` is the one mapping). Database, crypto and event failures are
//! 500s whose cause goes to the log, never to the client.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use custodian_fhir::FhirError;

use crate::crypto::CryptoError;

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("internal: {0}")]
    Internal(String),
}

impl RecordsError {
    fn unexpected(&self) -> Option<FhirError> {
        match self {
            RecordsError::Fhir(_) => None,
            RecordsError::Database(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Some(FhirError::Conflict(
                "the resource was changed concurrently; retry".into(),
            )),
            RecordsError::Pool(e) => Some(FhirError::Unavailable(e.clone())),
            other => Some(FhirError::Internal(other.to_string())),
        }
    }

    /// The status code the client gets.
    pub fn status(&self) -> StatusCode {
        self.status_code()
    }
}

impl ResponseError for RecordsError {
    fn status_code(&self) -> StatusCode {
        match self {
            RecordsError::Fhir(e) => e.status_code(),
            other => other
                .unexpected()
                .map(|e| e.status_code())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            RecordsError::Fhir(e) => e.error_response(),
            other => match other.unexpected() {
                Some(e) => e.error_response(),
                None => HttpResponse::InternalServerError().finish(),
            },
        }
    }
}

pub fn pool_error(e: impl std::fmt::Display) -> RecordsError {
    RecordsError::Pool(e.to_string())
}

impl From<custodian_access::AccessError> for RecordsError {
    fn from(e: custodian_access::AccessError) -> Self {
        match e {
            custodian_access::AccessError::BadRequest(m) => FhirError::BadRequest(m).into(),
            custodian_access::AccessError::Unavailable(m) => FhirError::Unavailable(m).into(),
        }
    }
}

impl From<custodian_events::EventError> for RecordsError {
    fn from(e: custodian_events::EventError) -> Self {
        RecordsError::Internal(format!("access events: {e}"))
    }
}
