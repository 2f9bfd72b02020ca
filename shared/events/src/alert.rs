//! Alerts raised by anomaly (published on `<prefix>:alerts`; identity suspends the user).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    /// The user (token `sub`) whose behaviour raised it.
    pub user_id: String,
    /// The access event that crossed the threshold.
    pub event_id: Uuid,
    pub score: f64,
    pub reason: String,
    /// Whether anomaly asks identity to suspend the user.
    pub suspend: bool,
}
