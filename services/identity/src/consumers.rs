//! Stream consumers. [`SuspendOnAlert`] reads anomaly's alerts (group `identity`) and suspends
//! the user when the alert asks for it.

use custodian_events::{
    consumer::{Handler, HandlerError},
    Alert,
};
use uuid::Uuid;

use crate::suspension::{Cause, SuspensionError, Suspensions};

pub struct SuspendOnAlert(pub Suspensions);

impl Handler for SuspendOnAlert {
    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        let alert: Alert = serde_json::from_str(payload)
            .map_err(|e| HandlerError::Reject(format!("not an alert: {e}")))?;
        if !alert.suspend {
            return Ok(());
        }
        let user_id = Uuid::parse_str(&alert.user_id)
            .map_err(|_| HandlerError::Reject(format!("alert {} names no user id", alert.id)))?;
        let reason = format!(
            "anomaly alert {} (score {:.2}): {}",
            alert.id, alert.score, alert.reason
        );
        match self.0.suspend(user_id, &reason, Cause::Alert).await {
            Ok(change) => {
                if !change.changed {
                    tracing::debug!(alert_id = %alert.id, "user already suspended");
                }
                Ok(())
            }
            Err(SuspensionError::NotFound) => Err(HandlerError::Reject(format!(
                "alert {} names an unknown user",
                alert.id
            ))),
            Err(SuspensionError::Unexpected(e)) => Err(HandlerError::Retry(e.0)),
        }
    }
}
