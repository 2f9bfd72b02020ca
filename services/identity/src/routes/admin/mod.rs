//! The admin API (`/auth/admin/*`): organisations, users, clients, key rotation. Every handler
//! takes `Authenticated` (a token identity issued) and requires the admin role.

pub mod clients;
pub mod keys;
pub mod organizations;
pub mod users;

use custodian_auth::{Authenticated, Role};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The claims' subject, once checked to be an administrator.
pub(crate) fn require_admin(auth: &Authenticated) -> Result<&str, ApiError> {
    if auth.0.role == Role::Admin {
        Ok(&auth.0.sub)
    } else {
        Err(ApiError::Forbidden(
            "this endpoint is for administrators".into(),
        ))
    }
}

/// An error answer of the admin API.
#[derive(Serialize, ToSchema)]
pub struct ApiErrorBody {
    /// `bad_request`, `invalid`, `forbidden`, `not_found`, `conflict` or `server_error`.
    pub error: String,
    pub message: String,
}
