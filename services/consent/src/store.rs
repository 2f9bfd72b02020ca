//! Rows and the queries on them. Functions return diesel results; handlers decide what a
//! missing row means.

use chrono::{DateTime, Utc};
pub use custodian_access::consents::Visible;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::schema::{consent_history, consents};

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

/// Inserts a new consent and its first history entry.
pub async fn insert(conn: &mut AsyncPgConnection, row: &ConsentRow) -> QueryResult<()> {
    diesel::insert_into(consents::table)
        .values(row)
        .execute(conn)
        .await?;
    diesel::insert_into(consent_history::table)
        .values(HistoryRow::from(row))
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the current version and records it in the history.
pub async fn replace(conn: &mut AsyncPgConnection, row: &ConsentRow) -> QueryResult<()> {
    diesel::update(consents::table.find(row.id))
        .set(row)
        .execute(conn)
        .await?;
    diesel::insert_into(consent_history::table)
        .values(HistoryRow::from(row))
        .execute(conn)
        .await?;
    Ok(())
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

/// What a search asks for.
#[derive(Debug, Clone)]
pub struct SearchFilter {
    /// What the caller may see: applied in the query, so counts and pages cover only that.
    pub visible: Visible,
    pub patient: Option<String>,
    /// Any of these statuses (empty: any).
    pub statuses: Vec<String>,
    pub limit: i64,
    pub offset: i64,
}

/// One page of live (not deleted) consents the caller may see, newest first, and the number
/// of all such matches.
pub async fn search(
    conn: &mut AsyncPgConnection,
    filter: &SearchFilter,
) -> QueryResult<(Vec<ConsentRow>, i64)> {
    if filter.visible == Visible::Nothing {
        return Ok((Vec::new(), 0));
    }
    let query = || {
        let mut query = consents::table
            .filter(consents::deleted.eq(false))
            .into_boxed();
        match &filter.visible {
            Visible::Patient(patient) => {
                query = query.filter(consents::patient.eq(patient.clone()));
            }
            Visible::NamingAny(actors) => {
                query = query.filter(consents::actors.overlaps_with(actors.clone()));
            }
            // Answered above; an impossible predicate keeps the match exhaustive.
            Visible::Nothing => query = query.filter(consents::patient.eq("")),
        }
        if let Some(patient) = &filter.patient {
            query = query.filter(consents::patient.eq(patient.clone()));
        }
        if !filter.statuses.is_empty() {
            query = query.filter(consents::status.eq_any(filter.statuses.clone()));
        }
        query
    };
    let total: i64 = query().count().get_result(conn).await?;
    let rows = query()
        .select(ConsentRow::as_select())
        .order((consents::last_updated.desc(), consents::id))
        .limit(filter.limit)
        .offset(filter.offset)
        .load(conn)
        .await?;
    Ok((rows, total))
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
