//! Storage: encrypted versions, the current-version row access control reads, and the search
//! index. Every function takes a connection so callers decide the transaction.
//!
//! All encryption happens here (with [`crate::crypto`]): a version in a patient compartment is
//! sealed with her data key (`patient_keys`, created on the first write into her compartment),
//! one in no compartment with the master key; `sealed_by` says which, so rows written before
//! data keys existed (master key) still open. A version whose patient's key was erased reads
//! as a deletion (no body): nothing of it can be decrypted any more.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use custodian_fhir::FhirError;

use custodian_fhir_search::{index::IndexWrite, registry::IndexRow};

use crate::{
    crypto::{aad, CryptoError, RecordCipher, SealedBy},
    error::RecordsError,
    schema::{compartments, patient_keys, resource_versions, resources, search_index},
};

/// The current version of a resource.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = resources)]
pub struct Current {
    pub version: i64,
    pub patient_ref: Option<String>,
    pub confidentiality: Option<String>,
    pub deleted: bool,
    pub last_updated: DateTime<Utc>,
}

/// One stored version, decrypted.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version: i64,
    /// The compartment this version was written in.
    pub patient_ref: Option<String>,
    pub deleted: bool,
    pub last_updated: DateTime<Utc>,
    /// The resource JSON; None for a deletion.
    pub json: Option<String>,
}

pub async fn current(
    conn: &mut AsyncPgConnection,
    resource_type: &str,
    id: &str,
    lock: bool,
) -> Result<Option<Current>, RecordsError> {
    let query = resources::table
        .filter(resources::resource_type.eq(resource_type))
        .filter(resources::resource_id.eq(id))
        .select(Current::as_select());
    let found = if lock {
        query.for_update().first(conn).await.optional()?
    } else {
        query.first(conn).await.optional()?
    };
    Ok(found)
}

/// The keys rows can be opened with: the master key, and the data keys of the compartments
/// asked for (None: erased).
struct Keys<'a> {
    master: &'a RecordCipher,
    patients: HashMap<String, Option<RecordCipher>>,
}

impl<'a> Keys<'a> {
    /// The data keys of `refs` (the compartments of rows sealed with one).
    async fn load(
        conn: &mut AsyncPgConnection,
        master: &'a RecordCipher,
        refs: Vec<&str>,
    ) -> Result<Keys<'a>, RecordsError> {
        let mut patients = HashMap::new();
        if !refs.is_empty() {
            let rows: Vec<(String, Option<Vec<u8>>)> = patient_keys::table
                .filter(patient_keys::patient_ref.eq_any(&refs))
                .select((patient_keys::patient_ref, patient_keys::wrapped_key))
                .load(conn)
                .await?;
            for (patient, wrapped) in rows {
                let key = wrapped
                    .map(|w| master.unwrap_key(&patient, &w))
                    .transpose()?;
                patients.insert(patient, key);
            }
        }
        Ok(Keys { master, patients })
    }

    /// The compartments whose data keys rows need (those sealed with one).
    fn needed<'r>(rows: impl Iterator<Item = (i16, Option<&'r str>)>) -> Vec<&'r str> {
        let mut refs: Vec<&str> = rows
            .filter(|(sealed_by, _)| *sealed_by == SealedBy::PatientKey.code())
            .filter_map(|(_, p)| p)
            .collect();
        refs.sort_unstable();
        refs.dedup();
        refs
    }

    /// A stored row's JSON: (deleted, JSON). A row whose patient's key was erased reads as a
    /// deletion.
    fn open(&self, row: Sealed<'_>) -> Result<(bool, Option<String>), RecordsError> {
        if row.deleted {
            return Ok((true, None));
        }
        let key = match SealedBy::from_code(row.sealed_by)? {
            SealedBy::Master => self.master,
            SealedBy::PatientKey => match row.patient_ref.and_then(|p| self.patients.get(p)) {
                Some(Some(key)) => key,
                Some(None) => return Ok((true, None)),
                None => return Err(CryptoError::Decrypt.into()),
            },
        };
        let plain = key.open(&aad(row.resource_type, row.id, row.version), row.body)?;
        String::from_utf8(plain)
            .map(|json| (false, Some(json)))
            .map_err(|_| RecordsError::Crypto(CryptoError::Decrypt))
    }
}

/// One stored row to open.
struct Sealed<'r> {
    resource_type: &'r str,
    id: &'r str,
    version: i64,
    deleted: bool,
    sealed_by: i16,
    patient_ref: Option<&'r str>,
    body: &'r [u8],
}

/// What a write into `patient_ref`'s compartment seals with: her data key, created on the first
/// write (concurrent first writes agree on one: the first insert wins, every writer reads it
/// back). A compartment whose key was erased takes no more writes (410).
async fn data_key(
    conn: &mut AsyncPgConnection,
    master: &RecordCipher,
    patient_ref: &str,
) -> Result<RecordCipher, RecordsError> {
    async fn stored(
        conn: &mut AsyncPgConnection,
        patient_ref: &str,
    ) -> Result<Option<Option<Vec<u8>>>, RecordsError> {
        Ok(patient_keys::table
            .filter(patient_keys::patient_ref.eq(patient_ref))
            .select(patient_keys::wrapped_key)
            // Held until the write commits: an erasure waits for it (and so purges what it
            // wrote), or has already erased and this write is refused.
            .for_share()
            .first(conn)
            .await
            .optional()?)
    }
    let found = match stored(conn, patient_ref).await? {
        Some(found) => found,
        None => {
            let key = RecordCipher::generate()?;
            let wrapped = master.wrap_key(patient_ref, &key)?;
            diesel::insert_into(patient_keys::table)
                .values((
                    patient_keys::patient_ref.eq(patient_ref),
                    patient_keys::wrapped_key.eq(Some(&wrapped)),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            stored(conn, patient_ref).await?.ok_or_else(|| {
                RecordsError::Internal("a patient's data key vanished as it was created".into())
            })?
        }
    };
    match found {
        Some(wrapped) => Ok(master.unwrap_key(patient_ref, &wrapped)?),
        None => Err(erased_error(patient_ref).into()),
    }
}

/// The answer to a write into a compartment whose key was erased.
pub fn erased_error(patient_ref: &str) -> FhirError {
    FhirError::Gone(format!(
        "{patient_ref}'s record was erased: nothing more can be written into it"
    ))
}

/// The data keys of `patient_refs` (None: erased), held and created as [`data_key`] holds and
/// creates one, in three statements at most for all.
pub async fn data_keys(
    conn: &mut AsyncPgConnection,
    master: &RecordCipher,
    patient_refs: &[String],
) -> Result<HashMap<String, Option<RecordCipher>>, RecordsError> {
    async fn stored(
        conn: &mut AsyncPgConnection,
        patient_refs: &[&str],
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, RecordsError> {
        // Held until the write commits, as in `data_key` (in key order: two writers holding
        // several never wait on each other in a cycle).
        Ok(patient_keys::table
            .filter(patient_keys::patient_ref.eq_any(patient_refs))
            .order(patient_keys::patient_ref)
            .select((patient_keys::patient_ref, patient_keys::wrapped_key))
            .for_share()
            .load(conn)
            .await?)
    }
    let mut wanted: Vec<&str> = patient_refs.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = stored(conn, &wanted).await?;
    let have: std::collections::HashSet<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| !have.contains(p))
        .collect();
    if !missing.is_empty() {
        let mut rows = Vec::with_capacity(missing.len());
        for p in &missing {
            let wrapped = master.wrap_key(p, &RecordCipher::generate()?)?;
            rows.push((
                patient_keys::patient_ref.eq(*p),
                patient_keys::wrapped_key.eq(Some(wrapped)),
            ));
        }
        // 2 bind parameters a row, at most 65535 a statement.
        for chunk in rows.chunks(10_000) {
            diesel::insert_into(patient_keys::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        let created = stored(conn, &missing).await?;
        if created.len() != missing.len() {
            return Err(RecordsError::Internal(
                "a patient's data key vanished as it was created".into(),
            ));
        }
        found.extend(created);
    }
    found
        .into_iter()
        .map(|(p, wrapped)| {
            let key = wrapped.map(|w| master.unwrap_key(&p, &w)).transpose()?;
            Ok((p, key))
        })
        .collect()
}

type VersionRow = (i64, Vec<u8>, bool, DateTime<Utc>, Option<String>, i16);

const VERSION_COLUMNS: (
    resource_versions::version,
    resource_versions::body,
    resource_versions::deleted,
    resource_versions::last_updated,
    resource_versions::patient_ref,
    resource_versions::sealed_by,
) = (
    resource_versions::version,
    resource_versions::body,
    resource_versions::deleted,
    resource_versions::last_updated,
    resource_versions::patient_ref,
    resource_versions::sealed_by,
);

/// Opens version rows of `resource_type/id`.
async fn open_versions(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    resource_type: &str,
    id: &str,
    rows: Vec<VersionRow>,
) -> Result<Vec<StoredVersion>, RecordsError> {
    let keys = Keys::load(
        conn,
        cipher,
        Keys::needed(rows.iter().map(|r| (r.5, r.4.as_deref()))),
    )
    .await?;
    rows.into_iter()
        .map(|row| open_version(&keys, resource_type, id, row))
        .collect()
}

fn open_version(
    keys: &Keys<'_>,
    resource_type: &str,
    id: &str,
    (v, body, deleted, last_updated, patient_ref, sealed_by): VersionRow,
) -> Result<StoredVersion, RecordsError> {
    let (deleted, json) = keys.open(Sealed {
        resource_type,
        id,
        version: v,
        deleted,
        sealed_by,
        patient_ref: patient_ref.as_deref(),
        body: &body,
    })?;
    Ok(StoredVersion {
        version: v,
        patient_ref,
        deleted,
        last_updated,
        json,
    })
}

pub async fn version(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<StoredVersion>, RecordsError> {
    let row: Option<VersionRow> = resource_versions::table
        .filter(resource_versions::resource_type.eq(resource_type))
        .filter(resource_versions::resource_id.eq(id))
        .filter(resource_versions::version.eq(version))
        .select(VERSION_COLUMNS)
        .first(conn)
        .await
        .optional()?;
    Ok(
        open_versions(conn, cipher, resource_type, id, row.into_iter().collect())
            .await?
            .pop(),
    )
}

/// What a read of a resource's current version needs, from one statement: the current row,
/// that version opened (or why it does not open), and its compartment's row (patient and
/// custodian) when it has one.
pub struct CurrentRead {
    pub current: Current,
    /// None: the current version's row is missing.
    pub version: Result<Option<StoredVersion>, RecordsError>,
    /// `(patient_ref, custodian)` of the compartment named by the version's row.
    pub compartment: Option<(String, Option<String>)>,
}

type CurrentReadRow = (
    Current,
    Option<VersionRow>,
    Option<(String, Option<Vec<u8>>)>,
    Option<(String, Option<String>)>,
);

/// [`current`] and [`version`] of the current version, with the patient's data key and
/// custodian joined: one round trip where a read took four.
pub async fn read_current(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    resource_type: &str,
    id: &str,
) -> Result<Option<CurrentRead>, RecordsError> {
    let row: Option<CurrentReadRow> = resources::table
        .left_join(
            resource_versions::table.on(resource_versions::resource_type
                .eq(resources::resource_type)
                .and(resource_versions::resource_id.eq(resources::resource_id))
                .and(resource_versions::version.eq(resources::version))),
        )
        .left_join(
            patient_keys::table.on(patient_keys::patient_ref
                .nullable()
                .eq(resource_versions::patient_ref)),
        )
        .left_join(
            compartments::table.on(compartments::patient_ref
                .nullable()
                .eq(resource_versions::patient_ref)),
        )
        .filter(resources::resource_type.eq(resource_type))
        .filter(resources::resource_id.eq(id))
        .select((
            Current::as_select(),
            VERSION_COLUMNS.nullable(),
            (patient_keys::patient_ref, patient_keys::wrapped_key).nullable(),
            (compartments::patient_ref, compartments::custodian).nullable(),
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((current, version, key, compartment)) = row else {
        return Ok(None);
    };
    let version = version
        .map(|row| {
            let mut patients = HashMap::new();
            if let Some((patient, wrapped)) = key {
                let key = wrapped
                    .map(|w| cipher.unwrap_key(&patient, &w))
                    .transpose()?;
                patients.insert(patient, key);
            }
            let keys = Keys {
                master: cipher,
                patients,
            };
            open_version(&keys, resource_type, id, row)
        })
        .transpose();
    Ok(Some(CurrentRead {
        current,
        version,
        compartment,
    }))
}

/// Every version, newest first.
pub async fn history(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    resource_type: &str,
    id: &str,
) -> Result<Vec<StoredVersion>, RecordsError> {
    let rows: Vec<VersionRow> = resource_versions::table
        .filter(resource_versions::resource_type.eq(resource_type))
        .filter(resource_versions::resource_id.eq(id))
        .order(resource_versions::version.desc())
        .select(VERSION_COLUMNS)
        .load(conn)
        .await?;
    open_versions(conn, cipher, resource_type, id, rows).await
}

/// The current bodies of `ids` (id -> JSON), for search pages.
pub async fn current_bodies(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    resource_type: &str,
    wanted: &[(String, i64)],
) -> Result<HashMap<String, String>, RecordsError> {
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
    let versions: HashMap<&str, i64> = wanted.iter().map(|(id, v)| (id.as_str(), *v)).collect();
    type BodyRow = (String, i64, Vec<u8>, bool, i16, Option<String>);
    let rows: Vec<BodyRow> = resource_versions::table
        .inner_join(
            resources::table.on(resources::resource_type
                .eq(resource_versions::resource_type)
                .and(resources::resource_id.eq(resource_versions::resource_id))
                .and(resources::version.eq(resource_versions::version))),
        )
        .filter(resource_versions::resource_type.eq(resource_type))
        .filter(resource_versions::resource_id.eq_any(&ids))
        .select((
            resource_versions::resource_id,
            resource_versions::version,
            resource_versions::body,
            resource_versions::deleted,
            resource_versions::sealed_by,
            resource_versions::patient_ref,
        ))
        .load(conn)
        .await?;
    let keys = Keys::load(
        conn,
        cipher,
        Keys::needed(rows.iter().map(|r| (r.4, r.5.as_deref()))),
    )
    .await?;
    let mut out = HashMap::new();
    for (id, v, body, deleted, sealed_by, patient_ref) in &rows {
        if versions.get(id.as_str()) != Some(v) {
            continue;
        }
        let (_, json) = keys.open(Sealed {
            resource_type,
            id,
            version: *v,
            deleted: *deleted,
            sealed_by: *sealed_by,
            patient_ref: patient_ref.as_deref(),
            body,
        })?;
        if let Some(json) = json {
            out.insert(id.clone(), json);
        }
    }
    Ok(out)
}

/// A version to write.
pub struct NewVersion<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub version: i64,
    /// None for a deletion.
    pub json: Option<&'a str>,
    pub patient_ref: Option<&'a str>,
    pub confidentiality: Option<&'a str>,
    pub last_updated: DateTime<Utc>,
    pub index: &'a [IndexRow],
}

/// A version's body sealed as it must be: with her data key when it is in a patient's
/// compartment, with the master key when in none.
async fn seal_version(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    resource_type: &str,
    id: &str,
    version: i64,
    patient_ref: Option<&str>,
    json: &str,
) -> Result<(Vec<u8>, SealedBy), RecordsError> {
    let aad = aad(resource_type, id, version);
    Ok(match patient_ref {
        Some(patient) => {
            let key = data_key(conn, cipher, patient).await?;
            (key.seal(&aad, json.as_bytes())?, SealedBy::PatientKey)
        }
        None => (cipher.seal(&aad, json.as_bytes())?, SealedBy::Master),
    })
}

/// Rewrites a resource's search index (two prepared statements, however many rows).
async fn replace_index(
    conn: &mut AsyncPgConnection,
    resource_type: &str,
    id: &str,
    index: &[IndexRow],
) -> Result<(), RecordsError> {
    let mut write = IndexWrite::default();
    write.replace(resource_type, id, index);
    Ok(write.write(conn).await?)
}

/// The current, not deleted rows of `ids`.
pub async fn current_rows(
    conn: &mut AsyncPgConnection,
    resource_type: &str,
    ids: &[String],
) -> Result<Vec<(String, Current)>, RecordsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(resources::table
        .filter(resources::resource_type.eq(resource_type))
        .filter(resources::resource_id.eq_any(ids))
        .filter(resources::deleted.eq(false))
        .select((resources::resource_id, Current::as_select()))
        .load(conn)
        .await?)
}

/// The references (`Type/id`) parameter `param` of `ids` holds (for `_include`).
pub async fn references_of(
    conn: &mut AsyncPgConnection,
    resource_type: &str,
    param: &str,
    ids: &[String],
) -> Result<Vec<String>, RecordsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Option<String>> = search_index::table
        .filter(search_index::resource_type.eq(resource_type))
        .filter(search_index::param.eq(param))
        .filter(search_index::resource_id.eq_any(ids))
        .select(search_index::value)
        .distinct()
        .load(conn)
        .await?;
    Ok(values.into_iter().flatten().collect())
}

/// Ids of `source_type` resources whose `param` references one of `refs` (for `_revinclude`).
pub async fn referencing(
    conn: &mut AsyncPgConnection,
    source_type: &str,
    param: &str,
    refs: &[String],
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, RecordsError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = search_index::table
        .filter(search_index::resource_type.eq(source_type))
        .filter(search_index::param.eq(param))
        .filter(search_index::value.eq_any(refs))
        .select(search_index::resource_id)
        .distinct()
        .order(search_index::resource_id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(search_index::resource_id.gt(after.to_string()));
    }
    Ok(query.load(conn).await?)
}

/// Care dates `[start, end)`, either side open.
pub type CareDates = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Which resources of a patient's compartment a `$everything` page reads.
pub struct CompartmentPage<'a> {
    pub patient_ref: &'a str,
    /// Only these types (None: all).
    pub types: Option<&'a [String]>,
    /// Only those last updated at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only those after this (type, id), in (type, id) order: the keyset of the page.
    pub after: Option<(&'a str, &'a str)>,
    /// Care dates `[start, end)`: only resources whose `date` parameter (the data period
    /// consents name) overlaps them, and those without one.
    pub care: Option<CareDates>,
    pub limit: i64,
}

/// Current, not deleted resources of a patient's compartment in (type, id) order, from a
/// keyset position (no OFFSET: a page costs the same however deep it is).
pub async fn compartment_page(
    conn: &mut AsyncPgConnection,
    page: &CompartmentPage<'_>,
) -> Result<Vec<(String, String, Current)>, RecordsError> {
    let mut query = resources::table
        .filter(resources::patient_ref.eq(page.patient_ref))
        .filter(resources::deleted.eq(false))
        .order((resources::resource_type, resources::resource_id))
        .select((
            resources::resource_type,
            resources::resource_id,
            Current::as_select(),
        ))
        .limit(page.limit)
        .into_boxed();
    if let Some(types) = page.types {
        query = query.filter(resources::resource_type.eq_any(types));
    }
    if let Some(since) = page.since {
        query = query.filter(resources::last_updated.ge(since));
    }
    if let Some((start, end)) = page.care {
        let dated = || {
            search_index::table
                .filter(search_index::resource_type.eq(resources::resource_type))
                .filter(search_index::resource_id.eq(resources::resource_id))
                .filter(search_index::param.eq("date"))
        };
        // An open side is the widest instant both PostgreSQL and chrono hold.
        let start = start.or_else(|| DateTime::from_timestamp(-62_135_596_800, 0));
        let end = end.or_else(|| DateTime::from_timestamp(253_402_300_799, 0));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(RecordsError::Internal("no widest instant".into()));
        };
        let overlapping = dated()
            .filter(
                search_index::value_end
                    .is_null()
                    .or(search_index::value_end.gt(start)),
            )
            .filter(
                search_index::value_start
                    .is_null()
                    .or(search_index::value_start.lt(end)),
            );
        query = query.filter(
            diesel::dsl::not(diesel::dsl::exists(dated())).or(diesel::dsl::exists(overlapping)),
        );
    }
    if let Some((t, id)) = page.after {
        query = query.filter(
            resources::resource_type
                .gt(t.to_string())
                .or(resources::resource_type
                    .eq(t.to_string())
                    .and(resources::resource_id.gt(id.to_string()))),
        );
    }
    Ok(query.load(conn).await?)
}

#[derive(QueryableByName)]
struct PatientRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    patient_ref: String,
}

/// Which compartments a type-level `$everything` page may go through, in order.
pub struct VisiblePatients<'a> {
    /// Compartments held by this organisation, except `excluded`.
    pub custodian: Option<&'a str>,
    pub excluded: &'a [String],
    /// Compartments visible whoever holds them.
    pub named: &'a [String],
    /// From this compartment (`Patient/x`), itself included or not.
    pub from: Option<(&'a str, bool)>,
    pub limit: i64,
}

/// Compartments (`Patient/x`) among `visible`, in order, from its position.
pub async fn visible_patients(
    conn: &mut AsyncPgConnection,
    visible: &VisiblePatients<'_>,
) -> Result<Vec<String>, RecordsError> {
    use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
    let (from, inclusive) = match visible.from {
        Some((p, inclusive)) => (Some(p), inclusive),
        None => (None, false),
    };
    let rows: Vec<PatientRow> = diesel::sql_query(
        "SELECT patient_ref FROM compartments \
         WHERE (($1::text IS NOT NULL AND custodian = $1 AND NOT (patient_ref = ANY($2))) \
                OR patient_ref = ANY($3)) \
           AND ($4::text IS NULL OR patient_ref > $4 OR ($5 AND patient_ref = $4)) \
         ORDER BY patient_ref LIMIT $6",
    )
    .bind::<Nullable<Text>, _>(visible.custodian)
    .bind::<Array<Text>, _>(visible.excluded)
    .bind::<Array<Text>, _>(visible.named)
    .bind::<Nullable<Text>, _>(from)
    .bind::<Bool, _>(inclusive)
    .bind::<BigInt, _>(visible.limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.patient_ref).collect())
}

/// Replaces the body of the current version `version` in place (`$meta-add`, `$meta-delete`:
/// meta changes make no new version), with its confidentiality and search index.
#[allow(clippy::too_many_arguments)]
pub async fn rewrite_current(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    resource_type: &str,
    id: &str,
    version: i64,
    json: &str,
    confidentiality: Option<&str>,
    index: &[IndexRow],
) -> Result<(), RecordsError> {
    // Sealed as a new version would be (her key, within her compartment): the row's key
    // and `sealed_by` change together.
    let patient_ref: Option<String> = resources::table
        .filter(resources::resource_type.eq(resource_type))
        .filter(resources::resource_id.eq(id))
        .select(resources::patient_ref)
        .first(conn)
        .await?;
    let (body, sealed_by) = seal_version(
        conn,
        cipher,
        resource_type,
        id,
        version,
        patient_ref.as_deref(),
        json,
    )
    .await?;
    let changed = diesel::update(
        resource_versions::table
            .filter(resource_versions::resource_type.eq(resource_type))
            .filter(resource_versions::resource_id.eq(id))
            .filter(resource_versions::version.eq(version))
            .filter(resource_versions::deleted.eq(false)),
    )
    .set((
        resource_versions::body.eq(&body),
        resource_versions::sealed_by.eq(sealed_by.code()),
    ))
    .execute(conn)
    .await?;
    if changed != 1 {
        return Err(RecordsError::Internal(format!(
            "{resource_type}/{id} has no live version {version} to rewrite"
        )));
    }
    diesel::update(
        resources::table
            .filter(resources::resource_type.eq(resource_type))
            .filter(resources::resource_id.eq(id))
            .filter(resources::version.eq(version)),
    )
    .set(resources::confidentiality.eq(confidentiality))
    .execute(conn)
    .await?;
    replace_index(conn, resource_type, id, index).await
}

pub use custodian_fhir::history::HistoryCursor;

/// Which compartments a history may list (from the kernel's [`custodian_access::PatientScope`]):
/// a version's compartment is its own, or for rows from before versions kept one, its
/// resource's.
#[derive(Debug, Clone, Default)]
pub struct HistoryScope {
    pub unowned: bool,
    pub included: Vec<String>,
    pub custodian: Option<String>,
    pub excluded: Vec<String>,
}

/// What a history lists.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// `_since`: versions written at or after it.
    pub since: Option<DateTime<Utc>>,
    /// `_at`: versions current at some point in (after, before): written before `before`,
    /// and not replaced by a version written at or before `after`.
    pub current_after: Option<DateTime<Utc>>,
    pub written_before: Option<DateTime<Utc>>,
    /// Versions after (older than) this position.
    pub cursor: Option<HistoryCursor>,
    /// None: every compartment (each version is decided anyway).
    pub scope: Option<HistoryScope>,
}

/// One version in a history page, with its resource's current row.
pub struct HistoryVersion {
    pub resource_type: String,
    pub resource_id: String,
    pub version: StoredVersion,
    pub current: Current,
}

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    resource_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    resource_id: String,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    version: i64,
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    body: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    deleted: bool,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    last_updated: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    patient_ref: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Int2)]
    sealed_by: i16,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    current_version: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    current_patient_ref: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    current_confidentiality: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    current_deleted: bool,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    current_last_updated: DateTime<Utc>,
}

enum HistoryBind {
    Text(String),
    Texts(Vec<String>),
    Time(DateTime<Utc>),
    Int(i64),
}

/// Up to `limit` versions matching `filter`, newest first (by last_updated, then type, id and
/// version, descending: a stable order for cursors), decrypted.
pub async fn history_page(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    filter: &HistoryFilter,
    limit: usize,
) -> Result<Vec<HistoryVersion>, RecordsError> {
    let mut binds: Vec<HistoryBind> = Vec::new();
    let mut bind = |b: HistoryBind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    let mut sql = String::from(
        "SELECT v.resource_type, v.resource_id, v.version, v.body, v.deleted, v.last_updated, \
         v.patient_ref, v.sealed_by, r.version AS current_version, r.patient_ref AS current_patient_ref, \
         r.confidentiality AS current_confidentiality, r.deleted AS current_deleted, \
         r.last_updated AS current_last_updated \
         FROM resource_versions v JOIN resources r \
         ON r.resource_type = v.resource_type AND r.resource_id = v.resource_id WHERE true",
    );
    if let Some(t) = &filter.resource_type {
        sql.push_str(&format!(
            " AND v.resource_type = {}",
            bind(HistoryBind::Text(t.clone()))
        ));
    }
    if let Some(id) = &filter.resource_id {
        sql.push_str(&format!(
            " AND v.resource_id = {}",
            bind(HistoryBind::Text(id.clone()))
        ));
    }
    if let Some(since) = filter.since {
        sql.push_str(&format!(
            " AND v.last_updated >= {}",
            bind(HistoryBind::Time(since))
        ));
    }
    if let Some(before) = filter.written_before {
        sql.push_str(&format!(
            " AND v.last_updated < {}",
            bind(HistoryBind::Time(before))
        ));
    }
    if let Some(after) = filter.current_after {
        sql.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM resource_versions n WHERE n.resource_type = v.resource_type \
             AND n.resource_id = v.resource_id AND n.version = v.version + 1 AND n.last_updated <= {})",
            bind(HistoryBind::Time(after))
        ));
    }
    if let Some(c) = &filter.cursor {
        let (t, ty, id, v) = (
            bind(HistoryBind::Time(c.last_updated)),
            bind(HistoryBind::Text(c.resource_type.clone())),
            bind(HistoryBind::Text(c.resource_id.clone())),
            bind(HistoryBind::Int(c.version)),
        );
        sql.push_str(&format!(
            " AND (v.last_updated, v.resource_type, v.resource_id, v.version) < ({t}, {ty}, {id}, {v})"
        ));
    }
    if let Some(scope) = &filter.scope {
        let p = "COALESCE(v.patient_ref, r.patient_ref)";
        let mut visible = Vec::new();
        if scope.unowned {
            visible.push(format!("{p} IS NULL"));
        }
        if !scope.included.is_empty() {
            visible.push(format!(
                "{p} = ANY({})",
                bind(HistoryBind::Texts(scope.included.clone()))
            ));
        }
        if let Some(org) = &scope.custodian {
            let org = bind(HistoryBind::Text(org.clone()));
            let excluded = bind(HistoryBind::Texts(scope.excluded.clone()));
            visible.push(format!(
                "(EXISTS (SELECT 1 FROM compartments c WHERE c.patient_ref = {p} \
                 AND c.custodian = {org} OFFSET 0) AND NOT ({p} = ANY({excluded})))"
            ));
        }
        if visible.is_empty() {
            sql.push_str(" AND false");
        } else {
            sql.push_str(&format!(" AND ({})", visible.join(" OR ")));
        }
    }
    sql.push_str(&format!(
        " ORDER BY v.last_updated DESC, v.resource_type DESC, v.resource_id DESC, v.version DESC \
         LIMIT {limit}"
    ));
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
    for b in binds {
        query = match b {
            HistoryBind::Text(s) => query.bind::<diesel::sql_types::Text, _>(s),
            HistoryBind::Texts(v) => {
                query.bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(v)
            }
            HistoryBind::Time(t) => query.bind::<diesel::sql_types::Timestamptz, _>(t),
            HistoryBind::Int(i) => query.bind::<diesel::sql_types::Int8, _>(i),
        };
    }
    let rows: Vec<HistoryRow> = query.load(conn).await?;
    let keys = Keys::load(
        conn,
        cipher,
        Keys::needed(rows.iter().map(|r| (r.sealed_by, r.patient_ref.as_deref()))),
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let (deleted, json) = keys.open(Sealed {
                resource_type: &r.resource_type,
                id: &r.resource_id,
                version: r.version,
                deleted: r.deleted,
                sealed_by: r.sealed_by,
                patient_ref: r.patient_ref.as_deref(),
                body: &r.body,
            })?;
            Ok(HistoryVersion {
                version: StoredVersion {
                    version: r.version,
                    patient_ref: r.patient_ref,
                    deleted,
                    last_updated: r.last_updated,
                    json,
                },
                current: Current {
                    version: r.current_version,
                    patient_ref: r.current_patient_ref,
                    confidentiality: r.current_confidentiality,
                    deleted: r.current_deleted,
                    last_updated: r.current_last_updated,
                },
                resource_type: r.resource_type,
                resource_id: r.resource_id,
            })
        })
        .collect()
}

/// Live (not deleted) resources of `patient_ref`'s compartment, per type.
pub async fn compartment_counts(
    conn: &mut AsyncPgConnection,
    patient_ref: &str,
) -> Result<std::collections::BTreeMap<String, i64>, RecordsError> {
    let rows: Vec<(String, i64)> = resources::table
        .filter(resources::patient_ref.eq(patient_ref))
        .filter(resources::deleted.eq(false))
        .group_by(resources::resource_type)
        .select((resources::resource_type, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Whether `patient_ref`'s record was erased (her data key destroyed).
pub async fn erased(conn: &mut AsyncPgConnection, patient_ref: &str) -> Result<bool, RecordsError> {
    let found: Option<Option<DateTime<Utc>>> = patient_keys::table
        .filter(patient_keys::patient_ref.eq(patient_ref))
        .select(patient_keys::erased_at)
        .first(conn)
        .await
        .optional()?;
    Ok(matches!(found, Some(Some(_))))
}

/// What an erasure did.
#[derive(Debug, Default)]
pub struct Erased {
    /// The live resources it deleted, per type.
    pub counts: std::collections::BTreeMap<String, i64>,
    /// Each resource it deleted, with its deletion version (type, id, version).
    pub deleted: Vec<(String, String, i64)>,
}

#[derive(QueryableByName)]
struct DeletedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    resource_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    resource_id: String,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    version: i64,
}

/// Erases `patient_ref`'s record on `conn` (the caller's transaction), as of `now`:
/// - her data key is destroyed (the wrapped key deleted; the row stays, with `erased_at`, so
///   no later write into her compartment gets a new key: they are refused with 410);
/// - her versions sealed with the master key (written before data keys existed) have their
///   ciphertext removed, since no key destruction would erase them;
/// - each of her live resources gets a deletion version and its current row is marked deleted
///   (reads answer 410, searches find nothing, her history lists deletions only);
/// - the search index rows of her resources, and those of any resource that name her, and the
///   access facts and references kept for her resources, are deleted.
///
/// Kept: her versions' rows (ciphertext no key opens, with their `patient_ref`), her resources'
/// current rows (type, id, `patient_ref`, confidentiality code, dates), her `compartments` row
/// (the reference and her custodian's), and the ledger's events, which name the same reference.
pub async fn erase(
    conn: &mut AsyncPgConnection,
    patient_ref: &str,
    now: DateTime<Utc>,
) -> Result<Erased, RecordsError> {
    use diesel::sql_types::{Text, Timestamptz};
    // First: a write into her compartment holds her key row until it commits, so this waits
    // for it (and purges what it wrote), and any later write finds the key erased.
    diesel::insert_into(patient_keys::table)
        .values((
            patient_keys::patient_ref.eq(patient_ref),
            patient_keys::wrapped_key.eq(None::<Vec<u8>>),
            patient_keys::created_at.eq(now),
            patient_keys::erased_at.eq(Some(now)),
        ))
        .on_conflict(patient_keys::patient_ref)
        .do_update()
        .set((
            patient_keys::wrapped_key.eq(None::<Vec<u8>>),
            patient_keys::erased_at.eq(Some(now)),
        ))
        .execute(conn)
        .await?;
    let counts = compartment_counts(conn, patient_ref).await?;
    // Versions from before versions kept their compartment: name it, so they read as erased.
    diesel::sql_query(
        "UPDATE resource_versions v SET patient_ref = r.patient_ref FROM resources r \
         WHERE r.resource_type = v.resource_type AND r.resource_id = v.resource_id \
         AND r.patient_ref = $1 AND v.patient_ref IS NULL",
    )
    .bind::<Text, _>(patient_ref)
    .execute(conn)
    .await?;
    // Master-key ciphertext of hers is removed: the master key stays, so it would still open.
    diesel::sql_query(
        "UPDATE resource_versions SET body = '\\x'::bytea, sealed_by = $2 \
         WHERE patient_ref = $1 AND sealed_by = $3 AND NOT deleted",
    )
    .bind::<Text, _>(patient_ref)
    .bind::<diesel::sql_types::SmallInt, _>(SealedBy::PatientKey.code())
    .bind::<diesel::sql_types::SmallInt, _>(SealedBy::Master.code())
    .execute(conn)
    .await?;
    let deleted: Vec<DeletedRow> = diesel::sql_query(
        "INSERT INTO resource_versions \
         (resource_type, resource_id, version, body, deleted, last_updated, patient_ref, sealed_by) \
         SELECT resource_type, resource_id, version + 1, '\\x'::bytea, true, $2, patient_ref, $3 \
         FROM resources WHERE patient_ref = $1 AND NOT deleted \
         RETURNING resource_type, resource_id, version",
    )
    .bind::<Text, _>(patient_ref)
    .bind::<Timestamptz, _>(now)
    .bind::<diesel::sql_types::SmallInt, _>(SealedBy::Master.code())
    .load(conn)
    .await?;
    diesel::update(
        resources::table
            .filter(resources::patient_ref.eq(patient_ref))
            .filter(resources::deleted.eq(false)),
    )
    .set((
        resources::version.eq(resources::version + 1),
        resources::deleted.eq(true),
        resources::last_updated.eq(now),
    ))
    .execute(conn)
    .await?;
    for table in ["search_index", "access_facts", "access_reference_sets"] {
        diesel::sql_query(format!(
            "DELETE FROM {table} t USING resources r WHERE r.resource_type = t.resource_type \
             AND r.resource_id = t.resource_id AND r.patient_ref = $1"
        ))
        .bind::<Text, _>(patient_ref)
        .execute(conn)
        .await?;
    }
    // Index rows of other resources that name her (absolute references end with hers).
    diesel::sql_query("DELETE FROM search_index WHERE value = $1 OR value LIKE '%/' || $1")
        .bind::<Text, _>(patient_ref)
        .execute(conn)
        .await?;
    Ok(Erased {
        counts,
        deleted: deleted
            .into_iter()
            .map(|r| (r.resource_type, r.resource_id, r.version))
            .collect(),
    })
}
