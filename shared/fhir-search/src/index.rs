//! Writing a store's `search_index`: the rows [`Registry::extract`](crate::Registry::extract)
//! gives for each resource's current version, replacing the rows of its earlier one.

use chrono::{DateTime, Utc};
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
        diesel::sql_query(
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
        diesel::sql_query(
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
