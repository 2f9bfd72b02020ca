//! `alert_feedback`: the security team's acknowledgements and dismissals, one row each (the
//! access event of each is on the ledger too).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::alerts::AlertStatus;
use crate::schema::alert_feedback;

/// What a reviewer said about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackAction {
    /// `$acknowledge`: the alert is worth following up.
    Acknowledge,
    /// `$dismiss`: the access was legitimate; the detector learns the relationship.
    Dismiss,
}

impl FeedbackAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackAction::Acknowledge => "acknowledge",
            FeedbackAction::Dismiss => "dismiss",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "acknowledge" => Some(FeedbackAction::Acknowledge),
            "dismiss" => Some(FeedbackAction::Dismiss),
            _ => None,
        }
    }

    /// The alert's status once this is said.
    pub fn status(self) -> AlertStatus {
        match self {
            FeedbackAction::Acknowledge => AlertStatus::Acknowledged,
            FeedbackAction::Dismiss => AlertStatus::Dismissed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = alert_feedback)]
pub struct FeedbackRow {
    pub id: Uuid,
    pub alert_id: Uuid,
    /// `acknowledge` or `dismiss`.
    pub action: String,
    /// The reviewer (token `sub`).
    pub author_id: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &FeedbackRow) -> QueryResult<()> {
    diesel::insert_into(alert_feedback::table)
        .values(row)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The feedback on each of `alerts`, oldest first.
pub async fn for_alerts(
    conn: &mut AsyncPgConnection,
    alerts: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<FeedbackRow>>> {
    let rows: Vec<FeedbackRow> = alert_feedback::table
        .filter(alert_feedback::alert_id.eq_any(alerts))
        .order((alert_feedback::created_at.asc(), alert_feedback::id.asc()))
        .select(FeedbackRow::as_select())
        .load(conn)
        .await?;
    let mut by_alert: HashMap<Uuid, Vec<FeedbackRow>> = HashMap::new();
    for row in rows {
        by_alert.entry(row.alert_id).or_default().push(row);
    }
    Ok(by_alert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for action in [FeedbackAction::Acknowledge, FeedbackAction::Dismiss] {
            assert_eq!(FeedbackAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(FeedbackAction::parse("approve"), None);
        assert_eq!(FeedbackAction::Dismiss.status(), AlertStatus::Dismissed);
    }
}
