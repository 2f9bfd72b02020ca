//! Errors. Policy: handlers return [`ConsentError`]; client mistakes are [`FhirError`]s (400,
//! 403, 404, 410, 412, 415) answered as `OperationOutcome`s; a Consent that is not valid R4 or
//! that the policy engine cannot enforce exactly is a 422 whose issues name each element (in
//! `expression` and `location`); anything unexpected (database, pool, serialisation, events)
//! becomes a 500 whose cause goes to the log, never to the client. A consent the caller may not
//! see is the same 404 as one that does not exist.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use custodian_fhir::{FhirError, FHIR_JSON};
use serde_json::json;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The client's fault, or an authorisation refusal: answered as is.
    #[error(transparent)]
    Fhir(#[from] FhirError),
    /// 422: not a valid R4 Consent, or one the engine cannot enforce exactly: (element path,
    /// message) pairs.
    #[error("the Consent is not valid or cannot be enforced exactly")]
    Invalid(Vec<(String, String)>),
    /// A database error: a 500.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// No pooled connection: a 503.
    #[error("database pool: {0}")]
    Pool(String),
    /// Anything else unexpected: a 500.
    #[error("{0}")]
    Unexpected(String),
}

impl ConsentError {
    fn as_fhir(&self) -> FhirError {
        match self {
            ConsentError::Fhir(e) => e.clone(),
            ConsentError::Invalid(issues) => FhirError::Unprocessable(issues.clone()),
            ConsentError::Database(e) => FhirError::Internal(e.to_string()),
            ConsentError::Pool(e) => FhirError::Unavailable(e.clone()),
            ConsentError::Unexpected(e) => FhirError::Internal(e.clone()),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        FhirError::BadRequest(message.into()).into()
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        FhirError::Forbidden(message.into()).into()
    }

    pub fn not_found(id: &str) -> Self {
        FhirError::NotFound(format!("Consent/{id} is not known")).into()
    }

    pub fn gone(id: &str) -> Self {
        FhirError::Gone(format!("Consent/{id} was deleted")).into()
    }

    pub fn unprocessable(issues: Vec<(String, String)>) -> Self {
        ConsentError::Invalid(issues)
    }
}

impl ResponseError for ConsentError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsentError::Fhir(e) => e.status_code(),
            ConsentError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ConsentError::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConsentError::Database(_) | ConsentError::Unexpected(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsentError::Invalid(issues) = self {
            let issues: Vec<_> = issues
                .iter()
                .map(|(path, message)| {
                    json!({
                        "severity": "error",
                        "code": "invalid",
                        "diagnostics": format!("{path}: {message}"),
                        "expression": [path],
                        "location": [path],
                    })
                })
                .collect();
            return HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY)
                .content_type(FHIR_JSON)
                .body(json!({"resourceType": "OperationOutcome", "issue": issues}).to_string());
        }
        self.as_fhir().error_response()
    }
}

impl From<custodian_events::EventError> for ConsentError {
    fn from(e: custodian_events::EventError) -> Self {
        ConsentError::Unexpected(format!("access event: {e}"))
    }
}

impl From<custodian_access::AccessError> for ConsentError {
    fn from(e: custodian_access::AccessError) -> Self {
        match e {
            custodian_access::AccessError::BadRequest(m) => FhirError::BadRequest(m).into(),
            custodian_access::AccessError::Unavailable(m) => FhirError::Unavailable(m).into(),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ConsentError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ConsentError::Pool(e.to_string())
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] custodian_telemetry::ConfigError),
    #[error(transparent)]
    Database(#[from] custodian_database::DatabaseError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stream signing: {0}")]
    Signing(#[from] custodian_events::signing::SigningError),
    #[error("events: {0}")]
    Events(#[from] custodian_events::EventError),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("search index: {0}")]
    SearchIndex(String),
    #[error("could not listen: {0}")]
    Io(#[from] std::io::Error),
}
