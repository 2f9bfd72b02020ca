//! The other access events of an alert's incident (`alert_events`): the events the alert took
//! in late ([`crate::model::Scored::joined`]) and those that alerted within the actor's
//! cooldown without an alert of their own. An alert's `DetectedIssue` implicates them.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::alert_events;

/// Events implicated per `DetectedIssue` at most (besides the alert's own); the table keeps
/// them all.
pub const MAX_IMPLICATED: i64 = 1_000;

#[derive(Insertable)]
#[diesel(table_name = alert_events)]
struct NewAlertEvent {
    alert_id: Uuid,
    event_id: Uuid,
}

/// Adds `events` to the alert (those already there are kept once).
pub async fn add(conn: &mut AsyncPgConnection, alert: Uuid, events: &[Uuid]) -> QueryResult<()> {
    // Bind parameters are limited per statement: a few thousand rows at a time.
    for chunk in events.chunks(5_000) {
        let rows: Vec<NewAlertEvent> = chunk
            .iter()
            .map(|&event_id| NewAlertEvent {
                alert_id: alert,
                event_id,
            })
            .collect();
        diesel::insert_into(alert_events::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The other events of each of `alerts`, in the order they were added (at most
/// [`MAX_IMPLICATED`] each).
pub async fn for_alerts(
    conn: &mut AsyncPgConnection,
    alerts: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<Uuid>>> {
    let rows: Vec<(Uuid, Uuid)> = alert_events::table
        .filter(alert_events::alert_id.eq_any(alerts))
        .order((
            alert_events::alert_id,
            alert_events::added_at.asc(),
            alert_events::event_id,
        ))
        .select((alert_events::alert_id, alert_events::event_id))
        .load(conn)
        .await?;
    let mut by_alert: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (alert, event) in rows {
        let events = by_alert.entry(alert).or_default();
        if (events.len() as i64) < MAX_IMPLICATED {
            events.push(event);
        }
    }
    Ok(by_alert)
}
