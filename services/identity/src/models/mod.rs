//! One module per table: a read struct, an insert form, and the queries on it. Functions return
//! diesel results; callers decide what an error means for their caller.

pub mod client;
pub mod login_lockout;
pub mod organization;
pub mod revoked_token;
pub mod user;

pub use client::{Client, NewClient};
pub use organization::Organization;
pub use user::{NewUser, User};

/// Whether a diesel error is a unique-constraint violation (a duplicate).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
