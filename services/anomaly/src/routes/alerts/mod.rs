//! `GET /anomaly/alerts` and `GET /anomaly/alerts/{id}` (security staff): the alerts as stored,
//! the same data as `/anomaly/DetectedIssue`.

pub mod list;
pub mod read;

use custodian_access::Caller;

use crate::{
    domain::access::{decide, AlertInteraction},
    error::ApiError,
};

/// Alerts name users and events, not clinical data, but they are for the security team only.
pub(crate) fn require_reader(caller: &Caller) -> Result<(), ApiError> {
    let decision = decide(caller, AlertInteraction::Read);
    if decision.permitted() {
        Ok(())
    } else {
        Err(ApiError::forbidden(decision.explanation))
    }
}
