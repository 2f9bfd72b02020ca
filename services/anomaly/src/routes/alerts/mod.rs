//! `GET /anomaly/alerts` and `GET /anomaly/alerts/{id}` (roles auditor and admin).

pub mod list;
pub mod read;

use custodian_auth::{AuthError, Authenticated, Role};

/// Alerts name users and events, not patients, but they are still for the security team only.
pub(crate) fn require_reader(user: &Authenticated) -> Result<(), AuthError> {
    if user.0.has_role(&[Role::Auditor, Role::Admin]) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(
            "reading alerts requires the auditor or admin role".into(),
        ))
    }
}
