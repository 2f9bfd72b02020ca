//! `detector_snapshots`: the detector's state, saved with a batch's scores and loaded at start
//! (see [`crate::model::snapshot`]).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::detector_snapshots;

/// The access scorer's row.
pub const ACCESS_SCORER: &str = "access";

#[derive(Debug, Insertable)]
#[diesel(table_name = detector_snapshots)]
pub struct NewSnapshot<'a> {
    pub name: &'a str,
    pub format: i32,
    pub state: &'a [u8],
    /// Events the detector had taken in.
    pub events: i64,
    /// The newest event time it had seen.
    pub newest: Option<DateTime<Utc>>,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = detector_snapshots)]
pub struct Snapshot {
    pub format: i32,
    pub state: Vec<u8>,
    pub events: i64,
    pub newest: Option<DateTime<Utc>>,
    /// The start of the transaction that wrote it: the scores it holds were stored at or
    /// before it, those it lacks after it.
    pub taken_at: DateTime<Utc>,
}

/// Replaces the named snapshot; `taken_at` is the transaction's time.
pub async fn save(conn: &mut AsyncPgConnection, snapshot: &NewSnapshot<'_>) -> QueryResult<()> {
    diesel::insert_into(detector_snapshots::table)
        .values(snapshot)
        .on_conflict(detector_snapshots::name)
        .do_update()
        .set((
            detector_snapshots::format.eq(excluded(detector_snapshots::format)),
            detector_snapshots::state.eq(excluded(detector_snapshots::state)),
            detector_snapshots::events.eq(excluded(detector_snapshots::events)),
            detector_snapshots::newest.eq(excluded(detector_snapshots::newest)),
            detector_snapshots::taken_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn load(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<Snapshot>> {
    detector_snapshots::table
        .find(name)
        .select(Snapshot::as_select())
        .first(conn)
        .await
        .optional()
}
