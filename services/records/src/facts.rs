//! The access facts of each current resource in a compartment (`access_facts`,
//! `access_codings`): exactly what [`InstanceFacts::of`] computes for a read, stored beside the
//! encrypted body so a search can evaluate a consent's instance conditions in SQL
//! ([`crate::search::SearchQuery::restrict`]) and agree with reads by id.
//!
//! Why not the search index: its `date` rows keep microseconds (reads compare nanoseconds),
//! and its `_security` rows come from the generic token extraction, which reads odd codings
//! differently from `InstanceFacts::of`. A private copy is exact by construction.

use chrono::{DateTime, Utc};
use diesel::{
    sql_types::{Array, BigInt, Nullable, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::{
    access::InstanceFacts, crypto::RecordCipher, domain::search_params::Registry,
    error::RecordsError,
};

/// `access_codings.kind` of `meta.security` codings.
pub const SECURITY: &str = "security";
/// `access_codings.kind` of the type's `code` parameter codings.
pub const CODE: &str = "code";

/// An instant as nanoseconds since 1970, in decimal (for a NUMERIC column: exact over chrono's
/// whole range, which i64 nanoseconds are not).
pub fn nanos(t: DateTime<Utc>) -> String {
    (i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())).to_string()
}

/// Records the facts of version `version` of a resource (replacing earlier ones). Call in the
/// transaction that writes the version.
pub async fn write(
    conn: &mut AsyncPgConnection,
    resource_type: &str,
    id: &str,
    version: i64,
    facts: &InstanceFacts,
) -> Result<(), RecordsError> {
    let (from, to) = facts
        .data_time
        .map(|(from, to)| (Some(nanos(from)), Some(nanos(to))))
        .unwrap_or((None, None));
    diesel::sql_query(
        "INSERT INTO access_facts (resource_type, resource_id, version, data_from, data_to) \
         VALUES ($1, $2, $3, $4::numeric, $5::numeric) \
         ON CONFLICT (resource_type, resource_id) DO UPDATE SET version = excluded.version, \
         data_from = excluded.data_from, data_to = excluded.data_to",
    )
    .bind::<Text, _>(resource_type)
    .bind::<Text, _>(id)
    .bind::<BigInt, _>(version)
    .bind::<Nullable<Text>, _>(from)
    .bind::<Nullable<Text>, _>(to)
    .execute(conn)
    .await?;
    diesel::sql_query("DELETE FROM access_codings WHERE resource_type = $1 AND resource_id = $2")
        .bind::<Text, _>(resource_type)
        .bind::<Text, _>(id)
        .execute(conn)
        .await?;
    let rows = facts
        .security_labels
        .iter()
        .map(|c| (SECURITY, c))
        .chain(facts.codes.iter().map(|c| (CODE, c)));
    let (mut kinds, mut systems, mut codes) = (Vec::new(), Vec::new(), Vec::new());
    for (kind, coding) in rows {
        kinds.push(kind.to_string());
        systems.push(coding.system.clone());
        codes.push(coding.code.clone());
    }
    if !codes.is_empty() {
        diesel::sql_query(
            "INSERT INTO access_codings (resource_type, resource_id, kind, system, code) \
             SELECT $1, $2, t.kind, t.system, t.code \
             FROM unnest($3::text[], $4::text[], $5::text[]) AS t(kind, system, code)",
        )
        .bind::<Text, _>(resource_type)
        .bind::<Text, _>(id)
        .bind::<Array<Text>, _>(kinds)
        .bind::<Array<Nullable<Text>>, _>(systems)
        .bind::<Array<Text>, _>(codes)
        .execute(conn)
        .await?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Missing {
    #[diesel(sql_type = Text)]
    resource_type: String,
    #[diesel(sql_type = Text)]
    resource_id: String,
}

/// How many resources one backfill query reads.
const BATCH: i64 = 500;

/// Records the facts of every current resource in a compartment that has none for its current
/// version (stored before facts were kept). Runs once at start; a no-op when all have them.
/// Each resource is done in its own transaction under its row lock, so a concurrent write is
/// never overwritten with older facts. Until a resource has facts, a search over a patient
/// whose consents depend on the data leaves it out (never shows it).
pub async fn backfill(
    pool: &custodian_database::Pool,
    cipher: &RecordCipher,
    registry: &'static Registry,
) -> Result<(), RecordsError> {
    let mut conn = pool.get().await.map_err(crate::error::pool_error)?;
    let mut after = (String::new(), String::new());
    loop {
        let batch: Vec<Missing> = diesel::sql_query(
            "SELECT r.resource_type, r.resource_id FROM resources r \
             WHERE r.patient_ref IS NOT NULL AND NOT r.deleted \
             AND (r.resource_type, r.resource_id) > ($1, $2) \
             AND NOT EXISTS (SELECT 1 FROM access_facts f WHERE f.resource_type = r.resource_type \
                             AND f.resource_id = r.resource_id AND f.version = r.version) \
             ORDER BY r.resource_type, r.resource_id LIMIT $3",
        )
        .bind::<Text, _>(&after.0)
        .bind::<Text, _>(&after.1)
        .bind::<BigInt, _>(BATCH)
        .load(&mut conn)
        .await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = (last.resource_type.clone(), last.resource_id.clone());
        for m in batch {
            conn.transaction::<(), RecordsError, _>(async move |conn| {
                let Some(current) =
                    crate::store::current(conn, &m.resource_type, &m.resource_id, true).await?
                else {
                    return Ok(());
                };
                if current.deleted || current.patient_ref.is_none() {
                    return Ok(());
                }
                let stored = crate::store::version(
                    conn,
                    cipher,
                    &m.resource_type,
                    &m.resource_id,
                    current.version,
                )
                .await?;
                let Some(value) = stored
                    .and_then(|v| v.json)
                    .and_then(|json| serde_json::from_str::<Value>(&json).ok())
                else {
                    // No readable body: no facts, so searches leave it out (fail closed).
                    tracing::error!("a stored version could not be read for its access facts");
                    return Ok(());
                };
                let facts = InstanceFacts::of(registry, &m.resource_type, &value);
                write(
                    conn,
                    &m.resource_type,
                    &m.resource_id,
                    current.version,
                    &facts,
                )
                .await
            })
            .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn nanoseconds_are_exact_and_ordered() {
        let t = Utc.timestamp_opt(1, 5).unwrap();
        assert_eq!(nanos(t), "1000000005");
        let before = Utc.timestamp_opt(-1, 999_999_999).unwrap();
        assert_eq!(nanos(before), "-1");
        assert!(nanos(DateTime::<Utc>::MIN_UTC).parse::<i128>().is_ok());
    }
}
