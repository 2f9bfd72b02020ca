//! The access facts of each current resource in a compartment (`access_facts`,
//! `access_codings`): exactly what [`InstanceFacts::of`] computes for a read, stored beside the
//! encrypted body so a search can evaluate a consent's instance conditions in SQL
//! ([`crate::search::SearchQuery::restrict`]) and agree with reads by id.
//!
//! References (`access_reference_sets`, `access_references`, [`references_of`]) are kept for
//! every resource, in a compartment or not: `data.meaning = dependents` asks what a resource
//! refers to, `related` what the named resource's current version refers to.
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

use custodian_database::prepared;
use custodian_fhir_search::registry::Registry;

use crate::{access::InstanceFacts, crypto::RecordCipher, error::RecordsError};

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
    prepared(
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
    prepared("DELETE FROM access_codings WHERE resource_type = $1 AND resource_id = $2")
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
        prepared(
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

/// The resources `resource` refers to, each once, sorted: every string `reference` element
/// anywhere in its JSON (contained resources included: they are part of it) that is a literal
/// reference to a resource on this server, normalised to `Type/id`:
/// - `Type/id`, and `Type/id/_history/v` (a version of that resource), where `Type` is an R4
///   resource type and `id` a FHIR id;
/// - the same under this server's base, `{base}/fhir/Type/id[/_history/v]`.
///
/// Ignored, as they name nothing stored here: contained references (`#x`), absolute URLs of
/// other servers, `urn:uuid:`/`urn:oid:` placeholders, conditional references
/// (`Type?params`), anything else that does not parse; and logical references
/// (`Reference.identifier` without `reference`).
pub fn references_of(base: &str, resource: &Value) -> Vec<String> {
    let own = format!("{base}/fhir/");
    let mut out = Vec::new();
    collect_references(resource, &own, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_references(value: &Value, own: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("reference", Value::String(raw)) => out.extend(normalise_reference(raw, own)),
                    _ => collect_references(v, own, out),
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_references(v, own, out);
            }
        }
        _ => {}
    }
}

/// `Type/id` of a literal reference to a resource on this server (`own`: its base + `/fhir/`).
fn normalise_reference(raw: &str, own: &str) -> Option<String> {
    let relative = raw.strip_prefix(own).unwrap_or(raw);
    let mut parts = relative.split('/');
    let (kind, id) = (parts.next()?, parts.next()?);
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => {}
        (Some("_history"), Some(v), None) if !v.is_empty() => {}
        _ => return None,
    }
    (custodian_policy::resource_types::is_resource_type(kind)
        && custodian_policy::check::is_fhir_id(id))
    .then(|| format!("{kind}/{id}"))
}

/// Records the references of version `version` of a resource (replacing earlier ones), for
/// every resource, in a compartment or not (a consent's `related` may name either). Call in the
/// transaction that writes the version.
pub async fn write_references(
    conn: &mut AsyncPgConnection,
    resource_type: &str,
    id: &str,
    version: i64,
    references: &[String],
) -> Result<(), RecordsError> {
    prepared(
        "INSERT INTO access_reference_sets (resource_type, resource_id, version) \
         VALUES ($1, $2, $3) \
         ON CONFLICT (resource_type, resource_id) DO UPDATE SET version = excluded.version",
    )
    .bind::<Text, _>(resource_type)
    .bind::<Text, _>(id)
    .bind::<BigInt, _>(version)
    .execute(conn)
    .await?;
    prepared("DELETE FROM access_references WHERE resource_type = $1 AND resource_id = $2")
        .bind::<Text, _>(resource_type)
        .bind::<Text, _>(id)
        .execute(conn)
        .await?;
    if !references.is_empty() {
        prepared(
            "INSERT INTO access_references (resource_type, resource_id, version, target) \
             SELECT $1, $2, $3, t.target FROM unnest($4::text[]) AS t(target)",
        )
        .bind::<Text, _>(resource_type)
        .bind::<Text, _>(id)
        .bind::<BigInt, _>(version)
        .bind::<Array<Text>, _>(references)
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
    base: &str,
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
                let facts = InstanceFacts::of(registry, base, &m.resource_type, &value);
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

/// Records the references of every current resource that has none for its current version
/// (stored before references were kept), exactly as [`backfill`] does for the other facts: once
/// at start, each resource in its own transaction under its row lock. Until a resource has
/// them, a search leaves out what its references decide (never shows it).
pub async fn backfill_references(
    pool: &custodian_database::Pool,
    cipher: &RecordCipher,
    base: &str,
) -> Result<(), RecordsError> {
    let mut conn = pool.get().await.map_err(crate::error::pool_error)?;
    let mut after = (String::new(), String::new());
    loop {
        let batch: Vec<Missing> = diesel::sql_query(
            "SELECT r.resource_type, r.resource_id FROM resources r \
             WHERE NOT r.deleted \
             AND (r.resource_type, r.resource_id) > ($1, $2) \
             AND NOT EXISTS (SELECT 1 FROM access_reference_sets s \
                             WHERE s.resource_type = r.resource_type \
                             AND s.resource_id = r.resource_id AND s.version = r.version) \
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
                if current.deleted {
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
                    // No readable body: no references, so what they decide stays unknown.
                    tracing::error!("a stored version could not be read for its references");
                    return Ok(());
                };
                write_references(
                    conn,
                    &m.resource_type,
                    &m.resource_id,
                    current.version,
                    &references_of(base, &value),
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

    #[test]
    fn references_are_literal_local_and_normalised() {
        let resource = serde_json::json!({
            "resourceType": "Observation",
            "subject": {"reference": "Patient/alice"},
            "encounter": {"reference": "https://records.example/fhir/Encounter/e1/_history/2"},
            "basedOn": [
                {"reference": "ServiceRequest/s1"},
                {"reference": "#contained"},
                {"reference": "https://elsewhere.example/fhir/Encounter/e9"},
                {"reference": "urn:uuid:0d6b5a8e-3b8e-4f1e-9d52-3a4a4d3c2b1a"},
                {"reference": "Encounter?identifier=x"},
                {"reference": "Widget/w1"},
                {"reference": "Encounter/e1/extra"},
                {"identifier": {"value": "logical"}}
            ],
            "contained": [{"resourceType": "Specimen", "id": "contained",
                           "subject": {"reference": "Patient/alice"},
                           "parent": [{"reference": "Specimen/sp1/_history/1"}]}],
            "hasMember": [{"reference": "ServiceRequest/s1"}]
        });
        assert_eq!(
            references_of("https://records.example", &resource),
            [
                "Encounter/e1",
                "Patient/alice",
                "ServiceRequest/s1",
                "Specimen/sp1"
            ]
        );
    }
}
