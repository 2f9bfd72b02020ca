//! Writing a store's `search_index`: the rows [`Registry::extract`](crate::Registry::extract)
//! gives for each resource's current version, replacing the rows of its earlier one.

use chrono::{DateTime, Utc};
use custodian_database::prepared;
use diesel::{
    result::QueryResult,
    sql_types::{Array, Double, Integer, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::registry::IndexRow;

/// The index rows of many resources, as columns, written in two statements however many
/// resources (one delete of their old rows, one insert of the new).
#[derive(Debug, Default)]
pub struct IndexWrite {
    /// (type, id) of every resource whose rows are replaced.
    replaced: (Vec<String>, Vec<String>),
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    param: Vec<String>,
    system: Vec<Option<String>>,
    value: Vec<Option<String>>,
    start: Vec<Option<DateTime<Utc>>>,
    end: Vec<Option<DateTime<Utc>>>,
    number: Vec<Option<f64>>,
    element: Vec<Option<i32>>,
}

impl IndexWrite {
    /// The resource's rows become `rows` (none, for a deleted resource).
    pub fn replace(&mut self, resource_type: &str, id: &str, rows: &[IndexRow]) {
        self.replaced.0.push(resource_type.to_string());
        self.replaced.1.push(id.to_string());
        for row in rows {
            self.resource_type.push(resource_type.to_string());
            self.resource_id.push(id.to_string());
            self.param.push(row.param.clone());
            self.system.push(row.system.clone());
            self.value.push(row.value.clone());
            self.start.push(row.start);
            self.end.push(row.end);
            self.number.push(row.number);
            self.element.push(row.element);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.replaced.0.is_empty()
    }

    /// Writes the replacements (in the caller's transaction).
    pub async fn write(self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        if self.is_empty() {
            return Ok(());
        }
        prepared(
            "DELETE FROM search_index d USING unnest($1::text[], $2::text[]) AS k(t, i) \
             WHERE d.resource_type = k.t AND d.resource_id = k.i",
        )
        .bind::<Array<Text>, _>(self.replaced.0)
        .bind::<Array<Text>, _>(self.replaced.1)
        .execute(conn)
        .await?;
        if self.resource_id.is_empty() {
            return Ok(());
        }
        prepared(
            "INSERT INTO search_index (resource_type, resource_id, param, system, value, \
             value_start, value_end, number, element) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::timestamptz[], $7::timestamptz[], $8::float8[], $9::int4[])",
        )
        .bind::<Array<Text>, _>(self.resource_type)
        .bind::<Array<Text>, _>(self.resource_id)
        .bind::<Array<Text>, _>(self.param)
        .bind::<Array<Nullable<Text>>, _>(self.system)
        .bind::<Array<Nullable<Text>>, _>(self.value)
        .bind::<Array<Nullable<Timestamptz>>, _>(self.start)
        .bind::<Array<Nullable<Timestamptz>>, _>(self.end)
        .bind::<Array<Nullable<Double>>, _>(self.number)
        .bind::<Array<Nullable<Integer>>, _>(self.element)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// The version of what [`Registry::extract`](crate::Registry::extract) writes. Raise it when
/// extraction changes (a parameter indexed differently, a new kind of row): every store then
/// rewrites the index rows of the resources it holds ([`Reindex`]), since rows written by the
/// older code would make searches miss or match wrongly.
/// 1: the first versioned index; 2: element composites (rows tagged with their element).
pub const INDEX_VERSION: i32 = 2;

/// The progress of rewriting a store's index for [`INDEX_VERSION`], kept in the store's
/// `search_index_versions` table (`version`, `after_type`, `after_id`, `completed_at`): a
/// resumable walk in (type, id) order, one batch per transaction, so a crash or a restart goes
/// on where it stopped and two replicas take turns rather than both doing it.
pub struct Reindex;

/// Where a reindex stands, read under the lock of its row (held until the transaction ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReindexPosition {
    /// Resources after this (type, id) remain ("", "" at the start).
    After(String, String),
    Done,
}

#[derive(diesel::QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Nullable<Text>)]
    after_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    after_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    done: bool,
}

impl Reindex {
    /// The position, locked for this transaction (created at the start when missing). A store
    /// whose `resources` is empty when the row is created has nothing to rewrite.
    pub async fn lock(conn: &mut AsyncPgConnection) -> QueryResult<ReindexPosition> {
        diesel::sql_query(
            "INSERT INTO search_index_versions (version, completed_at) \
             SELECT $1, CASE WHEN EXISTS (SELECT 1 FROM resources) THEN NULL ELSE now() END \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind::<diesel::sql_types::Integer, _>(INDEX_VERSION)
        .execute(conn)
        .await?;
        let row: StateRow = diesel::sql_query(
            "SELECT after_type, after_id, completed_at IS NOT NULL AS done \
             FROM search_index_versions WHERE version = $1 FOR UPDATE",
        )
        .bind::<diesel::sql_types::Integer, _>(INDEX_VERSION)
        .get_result(conn)
        .await?;
        Ok(if row.done {
            ReindexPosition::Done
        } else {
            ReindexPosition::After(
                row.after_type.unwrap_or_default(),
                row.after_id.unwrap_or_default(),
            )
        })
    }

    /// Records that every resource up to (type, id) is rewritten.
    pub async fn advance(
        conn: &mut AsyncPgConnection,
        resource_type: &str,
        resource_id: &str,
    ) -> QueryResult<()> {
        diesel::sql_query(
            "UPDATE search_index_versions SET after_type = $2, after_id = $3 WHERE version = $1",
        )
        .bind::<diesel::sql_types::Integer, _>(INDEX_VERSION)
        .bind::<Text, _>(resource_type)
        .bind::<Text, _>(resource_id)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records that the walk is over.
    pub async fn complete(conn: &mut AsyncPgConnection) -> QueryResult<()> {
        diesel::sql_query(
            "UPDATE search_index_versions SET completed_at = now() WHERE version = $1",
        )
        .bind::<diesel::sql_types::Integer, _>(INDEX_VERSION)
        .execute(conn)
        .await?;
        Ok(())
    }
}
