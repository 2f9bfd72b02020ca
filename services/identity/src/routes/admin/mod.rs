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

/// The administrator as the actor of an access event.
pub(crate) fn admin_actor(auth: &Authenticated) -> custodian_events::Actor {
    custodian_events::Actor {
        id: auth.0.sub.clone(),
        role: auth.0.role.as_str().to_string(),
        organization: auth.0.organization.clone(),
        department: auth.0.department.clone(),
        practitioner: auth.0.practitioner.clone(),
    }
}

/// A lockout lifted by an administrator.
#[derive(Serialize, ToSchema)]
pub struct Unlocked {
    /// Whether a lockout was in force (failure counts are forgiven either way).
    pub was_locked: bool,
}

/// An error answer of the admin API.
#[derive(Serialize, ToSchema)]
pub struct ApiErrorBody {
    /// `bad_request`, `invalid`, `forbidden`, `not_found`, `conflict` or `server_error`.
    pub error: String,
    pub message: String,
}
