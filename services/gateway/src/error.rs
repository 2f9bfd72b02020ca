//! How the gateway fails. Every error becomes a FHIR `OperationOutcome` (most callers are FHIR
//! clients) with the status set here, the one place kinds map to codes. Causes (connection
//! errors, upstream addresses) go to the log, never to the client.

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use custodian_auth::AuthError;
use serde_json::json;

use crate::routing::Upstream;

/// The media type of every error body.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// 404: no service serves the path, or it is internal.
    #[error("no resource is served at this path")]
    NotFound,
    /// 405: the path is documented, the method is not (`allow`: the methods that are).
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: String },
    /// 400: the request cannot be forwarded as it is.
    #[error("{0}")]
    BadRequest(String),
    /// 401/403/503: from token verification (answered by [`AuthError`] itself).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 413: the body is larger than `GATEWAY_MAX_BODY_BYTES`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 502: the service could not be reached or broke the connection.
    #[error("the {} service is unavailable", .0.name())]
    BadGateway(Upstream),
    /// 504: the service did not answer within `UPSTREAM_TIMEOUT_MS`.
    #[error("the {} service did not answer in time", .0.name())]
    GatewayTimeout(Upstream),
}

impl GatewayError {
    /// The IssueType code of the outcome.
    fn code(&self) -> &'static str {
        match self {
            GatewayError::NotFound => "not-found",
            GatewayError::MethodNotAllowed { .. } => "not-supported",
            GatewayError::BadRequest(_) => "invalid",
            GatewayError::Auth(_) => "security",
            GatewayError::PayloadTooLarge { .. } => "too-costly",
            GatewayError::BadGateway(_) => "transient",
            GatewayError::GatewayTimeout(_) => "timeout",
        }
    }
}

/// A one-issue `OperationOutcome` response.
pub fn outcome(status: StatusCode, code: &str, diagnostics: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(FHIR_JSON)
        .json(json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": code, "diagnostics": diagnostics }]
        }))
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        match self {
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::Auth(e) => e.status_code(),
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            GatewayError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            GatewayError::Auth(e) => e.error_response(),
            GatewayError::MethodNotAllowed { allow, .. } => {
                let mut response = outcome(self.status_code(), self.code(), &self.to_string());
                if let Ok(value) = header::HeaderValue::from_str(allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                response
            }
            other => outcome(other.status_code(), other.code(), &other.to_string()),
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("the merged OpenAPI document: {0}")]
    Document(#[from] crate::methods::MethodTableError),
    #[error("could not listen: {0}")]
    Io(#[from] std::io::Error),
}
