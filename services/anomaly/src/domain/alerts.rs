//! `alerts`: what anomaly raised, for auditors, what it asked identity to do, and the security
//! team's verdict (`status`). Served as they are by `GET /anomaly/alerts` and as FHIR
//! `DetectedIssue`s ([`super::detected_issue`]).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::alerts;

/// At most one alert per actor within this much event time (no alert storms).
pub const ALERT_COOLDOWN: Duration = Duration::minutes(10);

/// An actor's alerts this close (event time) to the previous one belong to its incident (the
/// model's own grouping gap).
pub const INCIDENT_GAP: Duration = Duration::seconds(crate::model::incidents::INCIDENT_GAP);

/// Where an alert stands with the security team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Not reviewed yet.
    Open,
    /// Reviewed and confirmed as worth following up.
    Acknowledged,
    /// Reviewed and found legitimate: the detector learns the relationship.
    Dismissed,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Dismissed => "dismissed",
        }
    }

    /// The stored spelling (a check constraint keeps it to these three).
    pub fn parse(stored: &str) -> Self {
        match stored {
            "acknowledged" => AlertStatus::Acknowledged,
            "dismissed" => AlertStatus::Dismissed,
            _ => AlertStatus::Open,
        }
    }
}

/// One alert as stored and as served by `GET /anomaly/alerts`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, ToSchema)]
#[diesel(table_name = alerts)]
pub struct AlertRecord {
    pub id: Uuid,
    /// The access event that crossed the threshold.
    pub event_id: Uuid,
    /// The actor (token `sub`) whose behaviour raised it.
    pub user_id: String,
    pub score: f64,
    /// Why, strongest contribution first.
    #[schema(value_type = Vec<String>)]
    pub reasons: serde_json::Value,
    /// The access event's time.
    pub event_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Whether identity was asked to suspend the user (`ANOMALY_SUSPEND`, and a score at or
    /// above `ANOMALY_SUSPEND_CONFIDENCE`).
    pub suspended: bool,
    /// The alert's kind ([`super::kind::AlertKind`] code).
    pub kind: String,
    /// The incident (actor, time window) it belongs to: the id of the incident's first alert.
    pub incident_id: Uuid,
    /// The reasons in one plain sentence.
    pub explanation: String,
    /// The features that drove the score, strongest first: `{feature, value, contribution}`.
    #[schema(value_type = Vec<Object>)]
    pub contributions: serde_json::Value,
    /// The patient of the access event, as the ledger shows it to auditors.
    pub patient_ref: Option<String>,
    /// `open`, `acknowledged` or `dismissed`.
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

impl AlertRecord {
    pub fn status(&self) -> AlertStatus {
        AlertStatus::parse(&self.status)
    }
}

/// Serialises alert decisions per actor until the transaction ends (several consumers).
pub async fn lock_actor(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind::<diesel::sql_types::Text, _>(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The actor's newest alert within [`ALERT_COOLDOWN`] of `time` (either side, since events may
/// arrive slightly out of order): while there is one, a new alert is suppressed (unless it
/// escalates) and its events join that one.
pub async fn latest_for(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    time: DateTime<Utc>,
) -> QueryResult<Option<Uuid>> {
    alerts::table
        .filter(alerts::user_id.eq(user_id))
        .filter(alerts::event_time.gt(time - ALERT_COOLDOWN))
        .filter(alerts::event_time.lt(time + ALERT_COOLDOWN))
        .order((alerts::event_time.desc(), alerts::id.desc()))
        .select(alerts::id)
        .first(conn)
        .await
        .optional()
}

/// Whether the actor already has an alert within [`ALERT_COOLDOWN`] of `time` that asked for a
/// suspension (a more confident alert within the cooldown escalates only when none did).
pub async fn recent_suspension_for(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    time: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        alerts::table
            .filter(alerts::user_id.eq(user_id))
            .filter(alerts::suspended.eq(true))
            .filter(alerts::event_time.gt(time - ALERT_COOLDOWN))
            .filter(alerts::event_time.lt(time + ALERT_COOLDOWN)),
    ))
    .get_result(conn)
    .await
}

/// Whether the event has an alert already (a waiting alert restored from a snapshot that had
/// been raised after it was taken).
pub async fn exists_for_event(conn: &mut AsyncPgConnection, event_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        alerts::table.filter(alerts::event_id.eq(event_id)),
    ))
    .get_result(conn)
    .await
}

pub async fn insert(conn: &mut AsyncPgConnection, alert: &AlertRecord) -> QueryResult<()> {
    diesel::insert_into(alerts::table)
        .values(alert)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The incident the actor's alert at `time` belongs to: that of the actor's latest alert
/// within [`INCIDENT_GAP`] before it (or after it: events arrive slightly out of order).
pub async fn incident_for(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    time: DateTime<Utc>,
) -> QueryResult<Option<Uuid>> {
    alerts::table
        .filter(alerts::user_id.eq(user_id))
        .filter(alerts::event_time.ge(time - INCIDENT_GAP))
        .filter(alerts::event_time.le(time + INCIDENT_GAP))
        .order(alerts::event_time.desc())
        .select(alerts::incident_id)
        .first(conn)
        .await
        .optional()
}

/// What to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub user: Option<&'a str>,
    pub status: Option<AlertStatus>,
    pub incident: Option<Uuid>,
    pub kind: Option<&'a str>,
}

/// Newest first, optionally for one user.
pub async fn list(
    conn: &mut AsyncPgConnection,
    user: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AlertRecord>> {
    search(
        conn,
        Filter {
            user,
            ..Filter::default()
        },
        limit,
    )
    .await
}

/// Newest first, filtered.
pub async fn search(
    conn: &mut AsyncPgConnection,
    filter: Filter<'_>,
    limit: i64,
) -> QueryResult<Vec<AlertRecord>> {
    let mut query = alerts::table.select(AlertRecord::as_select()).into_boxed();
    if let Some(user) = filter.user {
        query = query.filter(alerts::user_id.eq(user.to_string()));
    }
    if let Some(status) = filter.status {
        query = query.filter(alerts::status.eq(status.as_str()));
    }
    if let Some(incident) = filter.incident {
        query = query.filter(alerts::incident_id.eq(incident));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(alerts::kind.eq(kind.to_string()));
    }
    query
        .order((alerts::created_at.desc(), alerts::id.desc()))
        .limit(limit)
        .load(conn)
        .await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<AlertRecord>> {
    alerts::table
        .find(id)
        .select(AlertRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// The alert, locked until the transaction ends (feedback on it is serialised).
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<AlertRecord>> {
    alerts::table
        .find(id)
        .select(AlertRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Sets the status; returns the updated alert.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: AlertStatus,
) -> QueryResult<AlertRecord> {
    diesel::update(alerts::table.find(id))
        .set((
            alerts::status.eq(status.as_str()),
            alerts::updated_at.eq(Utc::now()),
        ))
        .returning(AlertRecord::as_returning())
        .get_result(conn)
        .await
}
