//! Rows and the queries on them. Functions return diesel results; handlers decide what a
//! missing row means.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use custodian_fhir_search::{
    index::{IndexWrite, Reindex, ReindexPosition},
    Registry,
};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    domain::access::CONSENT,
    schema::{consent_history, consents},
};

/// The current version of one consent.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = consents, check_for_backend(diesel::pg::Pg))]
pub struct ConsentRow {
    pub id: Uuid,
    pub patient: String,
    pub status: String,
    pub version_id: i64,
    pub last_updated: DateTime<Utc>,
    pub deleted: bool,
    pub resource: Value,
    /// The actor references the consent's provisions name, at any depth (who may see it).
    pub actors: Vec<String>,
}

/// One version in the history.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consent_history, check_for_backend(diesel::pg::Pg))]
pub struct HistoryRow {
    pub id: Uuid,
    pub version_id: i64,
    pub last_updated: DateTime<Utc>,
    pub deleted: bool,
    pub resource: Value,
}

impl From<&ConsentRow> for HistoryRow {
    fn from(row: &ConsentRow) -> Self {
        Self {
            id: row.id,
            version_id: row.version_id,
            last_updated: row.last_updated,
            deleted: row.deleted,
            resource: row.resource.clone(),
        }
    }
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ConsentRow>> {
    consents::table
        .find(id)
        .select(ConsentRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The row, locked until the transaction ends (concurrent writers take turns).
pub async fn find_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<ConsentRow>> {
    consents::table
        .find(id)
        .select(ConsentRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Inserts a new consent, its first history entry and its index rows.
pub async fn insert(conn: &mut AsyncPgConnection, row: &ConsentRow) -> QueryResult<()> {
    diesel::insert_into(consents::table)
        .values(row)
        .execute(conn)
        .await?;
    diesel::insert_into(consent_history::table)
        .values(HistoryRow::from(row))
        .execute(conn)
        .await?;
    index(conn, &[row]).await
}

/// Replaces the current version, records it in the history and reindexes it.
pub async fn replace(conn: &mut AsyncPgConnection, row: &ConsentRow) -> QueryResult<()> {
    diesel::update(consents::table.find(row.id))
        .set(row)
        .execute(conn)
        .await?;
    diesel::insert_into(consent_history::table)
        .values(HistoryRow::from(row))
        .execute(conn)
        .await?;
    index(conn, &[row]).await
}

pub async fn history_version(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    version: i64,
) -> QueryResult<Option<HistoryRow>> {
    consent_history::table
        .find((id, version))
        .select(HistoryRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The current resources of the consents `ids` names (text uuids, as search rows give
/// them), by id; deleted ones and ids that are not ours are left out.
pub async fn current_resources(
    conn: &mut AsyncPgConnection,
    ids: &[String],
) -> QueryResult<HashMap<String, Value>> {
    let ids: Vec<Uuid> = ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).collect();
    let rows: Vec<(Uuid, Value)> = consents::table
        .filter(consents::id.eq_any(ids))
        .filter(consents::deleted.eq(false))
        .select((consents::id, consents::resource))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, r)| (id.to_string(), r))
        .collect())
}

/// Replaces the search index rows of `rows` (none for a deleted consent): every write of a
/// consent calls it in its transaction, so search sees exactly the current versions.
async fn index(conn: &mut AsyncPgConnection, rows: &[&ConsentRow]) -> QueryResult<()> {
    let registry = Registry::global();
    let mut write = IndexWrite::default();
    for row in rows {
        let id = row.id.to_string();
        if row.deleted {
            write.replace(CONSENT, &id, &[]);
        } else {
            write.replace(CONSENT, &id, &registry.extract(CONSENT, &row.resource));
        }
    }
    write.write(conn).await
}

/// Rewrites the index rows of every consent when the extraction code changed
/// (`custodian_fhir_search::index::INDEX_VERSION`; the first time, consents written before the index existed), a batch
/// per transaction under the consents' row locks; how many. Resumable, and replicas take
/// turns ([`Reindex`]).
pub async fn reindex(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    let mut rewritten = 0;
    loop {
        let done = conn
            .transaction::<bool, diesel::result::Error, _>(async |conn| {
                let after = match Reindex::lock(conn).await? {
                    ReindexPosition::Done => return Ok(true),
                    ReindexPosition::After(_, id) => id,
                };
                let batch: Vec<ConsentRow> = consents::table
                    .filter(
                        diesel::dsl::sql::<diesel::sql_types::Bool>("id::text > ")
                            .bind::<diesel::sql_types::Text, _>(after),
                    )
                    .order(diesel::dsl::sql::<diesel::sql_types::Text>("id::text"))
                    .limit(500)
                    .for_update()
                    .select(ConsentRow::as_select())
                    .load(conn)
                    .await?;
                let Some(last) = batch.last() else {
                    Reindex::complete(conn).await?;
                    return Ok(true);
                };
                Reindex::advance(conn, CONSENT, &last.id.to_string()).await?;
                index(conn, &batch.iter().collect::<Vec<_>>()).await?;
                rewritten += batch.len();
                Ok(false)
            })
            .await?;
        if done {
            return Ok(rewritten);
        }
    }
}

/// The ids and resources of a patient's active, live consents.
pub async fn active_for_patient(
    conn: &mut AsyncPgConnection,
    patient: &str,
) -> QueryResult<Vec<(Uuid, Value)>> {
    consents::table
        .filter(consents::patient.eq(patient))
        .filter(consents::status.eq("active"))
        .filter(consents::deleted.eq(false))
        .select((consents::id, consents::resource))
        .load(conn)
        .await
}

/// Every consent's current version, deleted ones included.
pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<ConsentRow>> {
    consents::table
        .select(ConsentRow::as_select())
        .order(consents::id)
        .load(conn)
        .await
}

/// Every version of one consent, newest first.
pub async fn history(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<HistoryRow>> {
    consent_history::table
        .filter(consent_history::id.eq(id))
        .select(HistoryRow::as_select())
        .order(consent_history::version_id.desc())
        .load(conn)
        .await
}

/// One version in a type history page, with its consent's patient.
#[derive(Debug, Clone, QueryableByName)]
pub struct HistoryEntry {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub version_id: i64,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub last_updated: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub deleted: bool,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub resource: Value,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub patient: String,
}

/// What a type history lists: versions in a window, after a position (newest first).
#[derive(Debug, Clone, Default)]
pub struct HistoryWindow {
    /// `_since`: written at or after.
    pub since: Option<DateTime<Utc>>,
    /// `_at`: current at some point in (`current_after`, `written_before`).
    pub current_after: Option<DateTime<Utc>>,
    pub written_before: Option<DateTime<Utc>>,
    /// Older than this (last updated, id, version).
    pub after: Option<(DateTime<Utc>, Uuid, i64)>,
}

/// Versions of every consent in `window` that may be the caller's to see (her consents, or
/// versions whose provisions name one of the caller's references: the same path as
/// `resource::named_in`, or wider; each is decided again), newest first, at most `limit`.
pub async fn history_page(
    conn: &mut AsyncPgConnection,
    visible: &custodian_access::consents::Visible,
    window: &HistoryWindow,
    limit: i64,
) -> QueryResult<Vec<HistoryEntry>> {
    use custodian_access::consents::Visible;
    use diesel::sql_types::{Array, Int8, Nullable, Text, Timestamptz};
    let (patient, actors) = match visible {
        Visible::Patient(p) => (Some(p.clone()), None),
        Visible::NamingAny(actors) => (None, Some(actors.clone())),
        Visible::Nothing => return Ok(Vec::new()),
    };
    let (at, id, version) = match &window.after {
        Some((at, id, version)) => (Some(*at), Some(*id), Some(*version)),
        None => (None, None, None),
    };
    diesel::sql_query(
        "SELECT h.id, h.version_id, h.last_updated, h.deleted, h.resource, c.patient \
         FROM consent_history h JOIN consents c ON c.id = h.id \
         WHERE ($1::text IS NULL OR c.patient = $1) \
         AND ($2::text[] IS NULL OR jsonb_path_query_array(h.resource, \
             'lax $.provision.**.actor.reference.reference') ?| $2) \
         AND ($3::timestamptz IS NULL OR h.last_updated >= $3) \
         AND ($4::timestamptz IS NULL OR h.last_updated < $4) \
         AND ($5::timestamptz IS NULL OR NOT EXISTS (SELECT 1 FROM consent_history n \
             WHERE n.id = h.id AND n.version_id > h.version_id AND n.last_updated <= $5)) \
         AND ($6::timestamptz IS NULL OR (h.last_updated, h.id, h.version_id) < ($6, $7, $8)) \
         ORDER BY h.last_updated DESC, h.id DESC, h.version_id DESC LIMIT $9",
    )
    .bind::<Nullable<Text>, _>(patient)
    .bind::<Nullable<Array<Text>>, _>(actors)
    .bind::<Nullable<Timestamptz>, _>(window.since)
    .bind::<Nullable<Timestamptz>, _>(window.written_before)
    .bind::<Nullable<Timestamptz>, _>(window.current_after)
    .bind::<Nullable<Timestamptz>, _>(at)
    .bind::<Nullable<diesel::sql_types::Uuid>, _>(id)
    .bind::<Nullable<Int8>, _>(version)
    .bind::<Int8, _>(limit)
    .load(conn)
    .await
}
