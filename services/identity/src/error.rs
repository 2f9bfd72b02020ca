//! Every error a handler returns, and the one place they become HTTP responses.
//!
//! Policy: validation errors tell the caller what to fix; unexpected errors (database down, a
//! task that panicked) answer a bare 500 and log their cause, never sending it to the client.
//! The token and revocation endpoints speak RFC 6749 (`{"error", "error_description"}`); the
//! admin API answers `{"error", "message"}`. Authentication failures of the admin API come from
//! `custodian_auth::AuthError` (FHIR `OperationOutcome`, like every other service).

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use serde_json::json;
use std::time::Duration;

use crate::{domain::Invalid, hashing::HashError, keys::KeyError, suspension::SuspensionError};

/// A failure nobody can fix by changing the request; the cause is logged, not shown.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unexpected(pub String);

impl From<diesel::result::Error> for Unexpected {
    fn from(e: diesel::result::Error) -> Self {
        Unexpected(format!("database: {e}"))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Unexpected {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Unexpected(format!("database pool: {e}"))
    }
}

impl From<HashError> for Unexpected {
    fn from(e: HashError) -> Self {
        Unexpected(e.to_string())
    }
}

impl From<KeyError> for Unexpected {
    fn from(e: KeyError) -> Self {
        Unexpected(format!("signing keys: {e}"))
    }
}

impl From<jsonwebtoken::errors::Error> for Unexpected {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        Unexpected(format!("token signing: {e}"))
    }
}

fn log_unexpected(cause: &Unexpected) {
    tracing::error!(error = %cause.0, "request failed unexpectedly");
}

/// RFC 6749 §5.2 errors of `POST /auth/token` (and RFC 7009's `POST /auth/revoke`).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed. `basic` says whether the client used HTTP Basic, which
    /// obliges a `WWW-Authenticate` challenge in the answer.
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("grant_type must be password or client_credentials")]
    UnsupportedGrantType,
    #[error("{0}")]
    UnauthorizedClient(String),
    /// Too many failed logins from the caller's address: 429 with `Retry-After`.
    #[error("too many failed logins from this address; retry after {} s", retry_after_secs(*.retry_after))]
    Throttled { retry_after: Duration },
    /// Every hash slot and queue place is taken: 503 with `Retry-After`.
    #[error("too many logins at once; retry after {} s", retry_after_secs(*.retry_after))]
    Busy { retry_after: Duration },
    /// A client locked out after repeated failed authentications (401 `invalid_client`).
    #[error("client authentication failed: too many failed attempts, this client is locked; try again later or ask an administrator")]
    ClientLocked { basic: bool },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Whole seconds for `Retry-After`, at least 1.
fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl OAuthError {
    fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient { .. } | OAuthError::ClientLocked { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::Throttled { .. } | OAuthError::Busy { .. } => "temporarily_unavailable",
            OAuthError::Unexpected(_) => "server_error",
        }
    }

    /// The `reason` label of `token_failures_total`.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            OAuthError::Throttled { .. } => "throttled",
            OAuthError::Busy { .. } => "busy",
            OAuthError::ClientLocked { .. } => "locked_out",
            other => other.code(),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient { .. } | OAuthError::ClientLocked { .. } => {
                StatusCode::UNAUTHORIZED
            }
            OAuthError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        builder
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        match self {
            OAuthError::InvalidClient { basic: true }
            | OAuthError::ClientLocked { basic: true } => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"custodian\""));
            }
            OAuthError::Throttled { retry_after } | OAuthError::Busy { retry_after } => {
                builder.insert_header((header::RETRY_AFTER, retry_after_secs(*retry_after)));
            }
            _ => {}
        }
        let description = match self {
            OAuthError::Unexpected(cause) => {
                log_unexpected(cause);
                "the server could not process the request".to_string()
            }
            other => other.to_string(),
        };
        builder.json(json!({ "error": self.code(), "error_description": description }))
    }
}

/// Errors of the admin and internal API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body could not be read as the expected JSON.
    #[error("{0}")]
    BadRequest(String),
    /// The body was read but a value is not acceptable.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Every hash slot is taken (503 with `Retry-After`).
    #[error("the server is busy; retry shortly")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation(_) => "invalid",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Busy => "busy",
            ApiError::Unexpected(_) => "server_error",
        }
    }

    pub fn unexpected(e: impl Into<Unexpected>) -> Self {
        ApiError::Unexpected(e.into())
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Validation(e.0)
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::Unexpected(e.into())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        ApiError::Unexpected(e.into())
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::Busy,
            other => ApiError::Unexpected(other.into()),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        ApiError::Unexpected(e.into())
    }
}

impl From<SuspensionError> for ApiError {
    fn from(e: SuspensionError) -> Self {
        match e {
            SuspensionError::NotFound => ApiError::NotFound("no such user".into()),
            SuspensionError::Unexpected(cause) => ApiError::Unexpected(cause),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Unexpected(cause) => {
                log_unexpected(cause);
                "the server could not process the request".to_string()
            }
            other => other.to_string(),
        };
        let mut builder = HttpResponse::build(self.status_code());
        if let ApiError::Busy = self {
            builder.insert_header((header::RETRY_AFTER, 1));
        }
        builder.json(json!({ "error": self.code(), "message": message }))
    }
}

/// The JSON body of an admin request could not be read.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!(
        "the request body is not valid JSON for this endpoint: {err}"
    ))
    .into()
}

/// The form body of a token or revocation request could not be read.
pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    OAuthError::InvalidRequest(format!(
        "the request body must be application/x-www-form-urlencoded: {err}"
    ))
    .into()
}

/// A path parameter could not be read (an id that is not a UUID).
pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound(format!("no such resource: {err}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn unexpected_errors_hide_their_cause() {
        let e = OAuthError::Unexpected(Unexpected("connection refused to 10.0.0.1".into()));
        let res = e.error_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = to_bytes(res.into_body()).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("10.0.0.1"));
    }

    #[actix_web::test]
    async fn invalid_client_with_basic_challenges() {
        let res = OAuthError::InvalidClient { basic: true }.error_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(res.into_body()).await.unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_client");
    }

    #[actix_web::test]
    async fn throttled_and_busy_answers_say_when_to_retry() {
        let res = OAuthError::Throttled {
            retry_after: Duration::from_millis(1500),
        }
        .error_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "2");
        let res = OAuthError::Busy {
            retry_after: Duration::ZERO,
        }
        .error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "1");
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(res.into_body()).await.unwrap()).unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        let res = OAuthError::ClientLocked { basic: false }.error_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn validation_is_422_and_conflict_409() {
        assert_eq!(
            ApiError::Validation("x".into()).status_code(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            ApiError::Conflict("x".into()).status_code(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::BadRequest("x".into()).status_code(),
            StatusCode::BAD_REQUEST
        );
    }
}
