//! The OAuth2 endpoints: `POST /auth/token` (RFC 6749 password and client_credentials grants)
//! and `POST /auth/revoke` (RFC 7009).

mod client_auth;
pub mod issue;
pub mod revoke;

use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 6749 §5.2 error answer.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `invalid_scope`,
    /// `unsupported_grant_type`, `unauthorized_client` or `server_error`.
    pub error: String,
    pub error_description: String,
}
