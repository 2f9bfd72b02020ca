//! `scored_events`: one row per access event scored (idempotency and restart rebuild).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use custodian_events::{AccessAction, AccessOutcome};

use crate::{
    model::{Observation, Touch},
    schema::scored_events,
};

/// How far back of the newest scored event a restart rebuilds from: the 5-minute windows, and
/// the actor-patient relationships of the last day (the detector's other state is relearned).
pub const REBUILD_SPAN: Duration = Duration::hours(24);
/// A cap on the rows a restart reads (a heavy load writes millions a day; the newest are the
/// ones that matter most).
pub const REBUILD_MAX_ROWS: i64 = 500_000;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = scored_events)]
pub struct NewScoredEvent<'a> {
    pub event_id: Uuid,
    pub actor_id: &'a str,
    pub patient_ref: Option<&'a str>,
    pub time: DateTime<Utc>,
    /// The access action as spelled in the event (`read`, `create`, `break-glass` ...).
    pub action: &'a str,
    pub outcome: &'a str,
    pub score: f64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = scored_events)]
pub struct ScoredEventRow {
    pub event_id: Uuid,
    pub actor_id: String,
    pub patient_ref: Option<String>,
    pub time: DateTime<Utc>,
    pub action: String,
    pub outcome: String,
}

impl ScoredEventRow {
    pub fn observation(self) -> Observation {
        Observation {
            id: self.event_id,
            actor: self.actor_id,
            time: self.time,
            // An action this version does not know counts as a read (the cautious side).
            touch: Touch::of(
                parse(self.action).unwrap_or(AccessAction::Read),
                parse(self.outcome).unwrap_or(AccessOutcome::Permit),
                self.patient_ref.is_some(),
            ),
            patient: self.patient_ref,
        }
    }
}

/// Which of `ids` were scored already.
/// An enum stored as its JSON spelling (`read`, `break-glass`, `deny` ...).
fn parse<T: serde::de::DeserializeOwned>(spelled: String) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(spelled)).ok()
}

pub async fn existing(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<HashSet<Uuid>> {
    let found: Vec<Uuid> = scored_events::table
        .filter(scored_events::event_id.eq_any(ids))
        .select(scored_events::event_id)
        .load(conn)
        .await?;
    Ok(found.into_iter().collect())
}

/// Inserts the rows (at most a few hundred: one stream read); returns the ids actually
/// inserted (not those another consumer stored first).
pub async fn insert_many(
    conn: &mut AsyncPgConnection,
    rows: &[NewScoredEvent<'_>],
) -> QueryResult<Vec<Uuid>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    diesel::insert_into(scored_events::table)
        .values(rows)
        .on_conflict(scored_events::event_id)
        .do_nothing()
        .returning(scored_events::event_id)
        .get_results(conn)
        .await
}

/// Raises a stored score to `score` (an alert that waited for its grace period and came of
/// age: the stored score says it alerted, as the alert does).
pub async fn raise_score(conn: &mut AsyncPgConnection, id: Uuid, score: f64) -> QueryResult<()> {
    diesel::update(scored_events::table.find(id))
        .filter(scored_events::score.lt(score))
        .set(scored_events::score.eq(score))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The events of the last [`REBUILD_SPAN`] before the newest one (at most the newest
/// [`REBUILD_MAX_ROWS`] of them), oldest first.
pub async fn recent(conn: &mut AsyncPgConnection) -> QueryResult<Vec<ScoredEventRow>> {
    let newest: Option<DateTime<Utc>> = scored_events::table
        .select(diesel::dsl::max(scored_events::time))
        .get_result(conn)
        .await?;
    let Some(newest) = newest else {
        return Ok(Vec::new());
    };
    newest_oldest_first(
        conn,
        scored_events::table
            .filter(scored_events::time.gt(newest - REBUILD_SPAN))
            .into_boxed(),
    )
    .await
}

/// The events stored after `taken_at` (a snapshot's time: those it does not hold), oldest
/// first, at most [`REBUILD_MAX_ROWS`] (the newest).
pub async fn stored_after(
    conn: &mut AsyncPgConnection,
    taken_at: DateTime<Utc>,
) -> QueryResult<Vec<ScoredEventRow>> {
    newest_oldest_first(
        conn,
        scored_events::table
            .filter(scored_events::scored_at.gt(taken_at))
            .into_boxed(),
    )
    .await
}

/// The newest [`REBUILD_MAX_ROWS`] rows `query` selects, in the order they happened.
async fn newest_oldest_first(
    conn: &mut AsyncPgConnection,
    query: scored_events::BoxedQuery<'_, diesel::pg::Pg>,
) -> QueryResult<Vec<ScoredEventRow>> {
    let mut rows: Vec<ScoredEventRow> = query
        .order((scored_events::time.desc(), scored_events::scored_at.desc()))
        .limit(REBUILD_MAX_ROWS)
        .select(ScoredEventRow::as_select())
        .load(conn)
        .await?;
    rows.reverse();
    Ok(rows)
}
