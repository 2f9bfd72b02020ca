//! `alerts`: what anomaly raised, for auditors, and what it asked identity to do.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::schema::alerts;

/// At most one alert per actor within this much event time (no alert storms).
pub const ALERT_COOLDOWN: Duration = Duration::minutes(10);

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
    /// Whether identity was asked to suspend the user (`ANOMALY_SUSPEND`).
    pub suspended: bool,
}

/// Serialises alert decisions per actor until the transaction ends (several consumers).
pub async fn lock_actor(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind::<diesel::sql_types::Text, _>(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Whether the actor already has an alert within [`ALERT_COOLDOWN`] of `time` (either side,
/// since events may arrive slightly out of order).
pub async fn recent_for(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    time: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        alerts::table
            .filter(alerts::user_id.eq(user_id))
            .filter(alerts::event_time.gt(time - ALERT_COOLDOWN))
            .filter(alerts::event_time.lt(time + ALERT_COOLDOWN)),
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

/// Newest first, optionally for one user.
pub async fn list(
    conn: &mut AsyncPgConnection,
    user: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AlertRecord>> {
    let mut query = alerts::table.select(AlertRecord::as_select()).into_boxed();
    if let Some(user) = user {
        query = query.filter(alerts::user_id.eq(user.to_string()));
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
