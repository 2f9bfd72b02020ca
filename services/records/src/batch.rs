//! The writes of one database transaction, held back and then made table by table: a
//! transaction Bundle of n entries writes each table with one statement instead of n, and a
//! single interaction goes through the same code as a Bundle of one entry.
//!
//! Entries are decided one after another, each on what the ones before it wrote, so nothing an
//! entry reads may miss a write the batch still holds:
//! - what the batch caches is kept exact: current rows ([`Batch::current`], locked as
//!   [`store::current`] locks them), custodians and data keys are updated as it writes them;
//! - a caller about to read anything else the held-back writes touch (a stored version, the
//!   references of other resources) calls [`Batch::flush`] first, and a second write of the
//!   same resource flushes the first, so one statement never meets a row twice.
//!
//! The batch writes inside the caller's transaction: nothing is written if it rolls back.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use custodian_access::{OrganizationRef, PatientRef};
use custodian_events::{outbox, AccessEvent};
use custodian_fhir_search::index::IndexWrite;
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Bool, Bytea, Nullable, SmallInt, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    access::InstanceFacts,
    crypto::{aad, RecordCipher, SealedBy},
    error::RecordsError,
    facts::{nanos, CODE, SECURITY},
    schema::{compartments, resources},
    state::AppState,
    store::{self, Current, NewVersion},
};

/// PostgreSQL takes at most 65535 bind parameters per statement; the outbox insert binds 3 per
/// row.
const OUTBOX_ROWS_PER_STATEMENT: usize = 5_000;

type Key = (String, String);

/// Rows of one table, a column per vector (bound as arrays and unnested: one statement for any
/// number of rows, and its text, hence its prepared plan, the same for all).
#[derive(Default)]
struct Versions {
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    version: Vec<i64>,
    body: Vec<Vec<u8>>,
    deleted: Vec<bool>,
    last_updated: Vec<DateTime<Utc>>,
    patient_ref: Vec<Option<String>>,
    sealed_by: Vec<i16>,
}

#[derive(Default)]
struct Currents {
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    version: Vec<i64>,
    patient_ref: Vec<Option<String>>,
    confidentiality: Vec<Option<String>>,
    deleted: Vec<bool>,
    last_updated: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct Facts {
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    version: Vec<i64>,
    data_from: Vec<Option<String>>,
    data_to: Vec<Option<String>>,
}

#[derive(Default)]
struct Codings {
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    kind: Vec<String>,
    system: Vec<Option<String>>,
    code: Vec<String>,
}

#[derive(Default)]
struct ReferenceSets {
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    version: Vec<i64>,
}

#[derive(Default)]
struct References {
    resource_type: Vec<String>,
    resource_id: Vec<String>,
    version: Vec<i64>,
    target: Vec<String>,
}

/// Writes held back, and what entries read that the batch answers itself.
pub struct Batch<'s> {
    state: &'s AppState,
    versions: Versions,
    currents: Currents,
    /// Search index rows replaced.
    index: IndexWrite,
    facts: Facts,
    codings: Codings,
    reference_sets: ReferenceSets,
    references: References,
    custodians: Vec<(String, Option<String>)>,
    /// Other streams' outbox rows (stream, event id, payload), in the order written.
    outbox: Vec<(String, Uuid, Value)>,
    events: Vec<AccessEvent>,
    /// Resources with a held-back write.
    held: HashSet<Key>,
    // What entries read, exact for this transaction.
    current: HashMap<Key, Option<Current>>,
    custodian: HashMap<String, Option<OrganizationRef>>,
    keys: HashMap<String, Option<RecordCipher>>,
}

impl<'s> Batch<'s> {
    pub fn new(state: &'s AppState) -> Self {
        Self {
            state,
            versions: Versions::default(),
            currents: Currents::default(),
            index: IndexWrite::default(),
            facts: Facts::default(),
            codings: Codings::default(),
            reference_sets: ReferenceSets::default(),
            references: References::default(),
            custodians: Vec::new(),
            outbox: Vec::new(),
            events: Vec::new(),
            held: HashSet::new(),
            current: HashMap::new(),
            custodian: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    pub fn state(&self) -> &'s AppState {
        self.state
    }

    /// Whether it holds writes back.
    pub fn holds_writes(&self) -> bool {
        !self.held.is_empty() || !self.outbox.is_empty() || !self.events.is_empty()
    }

    /// Forgets what it read: after something wrote on the connection without it.
    pub fn forget_reads(&mut self) {
        self.current.clear();
        self.custodian.clear();
    }

    /// Reads and locks the current rows of `targets` at once (as [`store::current`] with its
    /// lock does for one), in key order.
    pub async fn lock_currents(
        &mut self,
        conn: &mut AsyncPgConnection,
        targets: &[(String, String)],
    ) -> Result<(), RecordsError> {
        let mut wanted: Vec<&Key> = targets
            .iter()
            .filter(|k| !self.current.contains_key(*k))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let (types, ids): (Vec<&str>, Vec<&str>) =
            wanted.iter().map(|(t, i)| (t.as_str(), i.as_str())).unzip();
        let found: Vec<(String, String, Current)> = resources::table
            .filter(
                diesel::dsl::sql::<Bool>("(resource_type, resource_id) IN (SELECT * FROM unnest(")
                    .bind::<Array<Text>, _>(types)
                    .sql(", ")
                    .bind::<Array<Text>, _>(ids)
                    .sql("))"),
            )
            .order((resources::resource_type, resources::resource_id))
            .select((
                resources::resource_type,
                resources::resource_id,
                Current::as_select(),
            ))
            .for_update()
            .load(conn)
            .await?;
        for key in wanted {
            self.current.insert(key.clone(), None);
        }
        for (t, id, current) in found {
            self.current.insert((t, id), Some(current));
        }
        Ok(())
    }

    /// The current row of `resource_type/id`, locked (see [`store::current`]).
    pub async fn current(
        &mut self,
        conn: &mut AsyncPgConnection,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<Current>, RecordsError> {
        let key = (resource_type.to_string(), id.to_string());
        if let Some(found) = self.current.get(&key) {
            return Ok(found.clone());
        }
        let found = store::current(conn, resource_type, id, true).await?;
        self.current.insert(key, found.clone());
        Ok(found)
    }

    /// Reads the custodians of `patients` at once.
    pub async fn read_custodians(
        &mut self,
        conn: &mut AsyncPgConnection,
        patients: &[String],
    ) -> Result<(), RecordsError> {
        let mut wanted: Vec<&str> = patients
            .iter()
            .map(String::as_str)
            .filter(|p| !self.custodian.contains_key(*p))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, Option<String>)> = compartments::table
            .filter(compartments::patient_ref.eq_any(&wanted))
            .select((compartments::patient_ref, compartments::custodian))
            .load(conn)
            .await?;
        for p in wanted {
            self.custodian.insert(p.to_string(), None);
        }
        for (p, c) in rows {
            // As `access::custodian_of` reads it: one that does not parse is none.
            let custodian = c.and_then(|c| OrganizationRef::parse(&c).ok());
            self.custodian.insert(p, custodian);
        }
        Ok(())
    }

    /// The custodian of `patient` as recorded here (see [`crate::access::custodian_of`]),
    /// including what this batch records.
    pub async fn custodian_of(
        &mut self,
        conn: &mut AsyncPgConnection,
        patient: &PatientRef,
    ) -> Result<Option<OrganizationRef>, RecordsError> {
        if let Some(found) = self.custodian.get(patient.as_str()) {
            return Ok(found.clone());
        }
        let found = crate::access::custodian_of(conn, patient).await?;
        self.custodian
            .insert(patient.as_str().to_string(), found.clone());
        Ok(found)
    }

    /// Reads (creating the missing ones) the data keys of `patients` at once, holding them as
    /// a write into each compartment does (see [`store::data_keys`]).
    pub async fn read_keys(
        &mut self,
        conn: &mut AsyncPgConnection,
        patients: &[String],
    ) -> Result<(), RecordsError> {
        let mut wanted: Vec<String> = patients
            .iter()
            .filter(|p| !self.keys.contains_key(*p))
            .cloned()
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let found = store::data_keys(conn, &self.state.cipher, &wanted).await?;
        self.keys.extend(found);
        Ok(())
    }

    /// Seals a version's body: with her data key in a patient's compartment (refused with 410
    /// when her record was erased), with the master key in none.
    async fn seal(
        &mut self,
        conn: &mut AsyncPgConnection,
        resource_type: &str,
        id: &str,
        version: i64,
        patient_ref: Option<&str>,
        json: &str,
    ) -> Result<(Vec<u8>, SealedBy), RecordsError> {
        let aad = aad(resource_type, id, version);
        let Some(patient) = patient_ref else {
            return Ok((
                self.state.cipher.seal(&aad, json.as_bytes())?,
                SealedBy::Master,
            ));
        };
        if !self.keys.contains_key(patient) {
            self.read_keys(conn, &[patient.to_string()]).await?;
        }
        match self.keys.get(patient) {
            Some(Some(key)) => Ok((key.seal(&aad, json.as_bytes())?, SealedBy::PatientKey)),
            Some(None) => Err(store::erased_error(patient).into()),
            None => Err(RecordsError::Internal(
                "a patient's data key was not read".into(),
            )),
        }
    }

    /// Before writing `resource_type/id` again: the held-back write goes first.
    async fn hold(
        &mut self,
        conn: &mut AsyncPgConnection,
        resource_type: &str,
        id: &str,
    ) -> Result<(), RecordsError> {
        let key = (resource_type.to_string(), id.to_string());
        if self.held.contains(&key) {
            self.flush(conn).await?;
        }
        self.held.insert(key);
        Ok(())
    }

    /// Writes a version (sealed now), makes it current and replaces the resource's search index
    /// (emptied for a deletion).
    pub async fn write_version(
        &mut self,
        conn: &mut AsyncPgConnection,
        new: NewVersion<'_>,
    ) -> Result<(), RecordsError> {
        self.hold(conn, new.resource_type, new.id).await?;
        let deleted = new.json.is_none();
        let (body, sealed_by) = match new.json {
            Some(json) => {
                self.seal(
                    conn,
                    new.resource_type,
                    new.id,
                    new.version,
                    new.patient_ref,
                    json,
                )
                .await?
            }
            None => (Vec::new(), SealedBy::Master),
        };
        let (t, id) = (new.resource_type.to_string(), new.id.to_string());
        let v = &mut self.versions;
        v.resource_type.push(t.clone());
        v.resource_id.push(id.clone());
        v.version.push(new.version);
        v.body.push(body);
        v.deleted.push(deleted);
        v.last_updated.push(new.last_updated);
        v.patient_ref.push(new.patient_ref.map(str::to_string));
        v.sealed_by.push(sealed_by.code());
        let c = &mut self.currents;
        c.resource_type.push(t.clone());
        c.resource_id.push(id.clone());
        c.version.push(new.version);
        c.patient_ref.push(new.patient_ref.map(str::to_string));
        c.confidentiality
            .push(new.confidentiality.map(str::to_string));
        c.deleted.push(deleted);
        c.last_updated.push(new.last_updated);
        let rows = if deleted { &[][..] } else { new.index };
        self.index.replace(&t, &id, rows);
        self.current.insert(
            (t, id),
            Some(Current {
                version: new.version,
                patient_ref: new.patient_ref.map(str::to_string),
                confidentiality: new.confidentiality.map(str::to_string),
                deleted,
                last_updated: new.last_updated,
            }),
        );
        Ok(())
    }

    /// Records the access facts of a version written in this batch (see [`crate::facts::write`]).
    pub fn write_facts(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
        facts: &InstanceFacts,
    ) {
        let (from, to) = facts
            .data_time
            .map(|(from, to)| (Some(nanos(from)), Some(nanos(to))))
            .unwrap_or((None, None));
        let f = &mut self.facts;
        f.resource_type.push(resource_type.to_string());
        f.resource_id.push(id.to_string());
        f.version.push(version);
        f.data_from.push(from);
        f.data_to.push(to);
        let rows = facts
            .security_labels
            .iter()
            .map(|c| (SECURITY, c))
            .chain(facts.codes.iter().map(|c| (CODE, c)));
        for (kind, coding) in rows {
            let c = &mut self.codings;
            c.resource_type.push(resource_type.to_string());
            c.resource_id.push(id.to_string());
            c.kind.push(kind.to_string());
            c.system.push(coding.system.clone());
            c.code.push(coding.code.clone());
        }
    }

    /// Records the references of a version written in this batch (see
    /// [`crate::facts::write_references`]).
    pub fn write_references(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
        references: &[String],
    ) {
        let s = &mut self.reference_sets;
        s.resource_type.push(resource_type.to_string());
        s.resource_id.push(id.to_string());
        s.version.push(version);
        for target in references {
            let r = &mut self.references;
            r.resource_type.push(resource_type.to_string());
            r.resource_id.push(id.to_string());
            r.version.push(version);
            r.target.push(target.clone());
        }
    }

    /// Records (or changes) a patient's custodian (see [`crate::access::set_custodian`]).
    pub fn set_custodian(&mut self, patient: &PatientRef, custodian: Option<&OrganizationRef>) {
        self.custodians.push((
            patient.as_str().to_string(),
            custodian.map(|c| c.as_str().to_string()),
        ));
        self.custodian
            .insert(patient.as_str().to_string(), custodian.cloned());
    }

    /// Outbox rows of other streams (relationships), in order.
    pub fn enqueue(&mut self, rows: Vec<(String, Uuid, Value)>) {
        self.outbox.extend(rows);
    }

    /// Access events, in order.
    pub fn enqueue_events(&mut self, events: &[AccessEvent]) {
        self.events.extend_from_slice(events);
    }

    /// Makes every held-back write, a statement per table, in the order the foreign keys need.
    pub async fn flush(&mut self, conn: &mut AsyncPgConnection) -> Result<(), RecordsError> {
        let versions = std::mem::take(&mut self.versions);
        if !versions.resource_id.is_empty() {
            diesel::sql_query(
                "INSERT INTO resource_versions (resource_type, resource_id, version, body, deleted, \
                 last_updated, patient_ref, sealed_by) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::bytea[], $5::bool[], \
                 $6::timestamptz[], $7::text[], $8::int2[])",
            )
            .bind::<Array<Text>, _>(versions.resource_type)
            .bind::<Array<Text>, _>(versions.resource_id)
            .bind::<Array<BigInt>, _>(versions.version)
            .bind::<Array<Bytea>, _>(versions.body)
            .bind::<Array<Bool>, _>(versions.deleted)
            .bind::<Array<Timestamptz>, _>(versions.last_updated)
            .bind::<Array<Nullable<Text>>, _>(versions.patient_ref)
            .bind::<Array<SmallInt>, _>(versions.sealed_by)
            .execute(conn)
            .await?;
        }
        let currents = std::mem::take(&mut self.currents);
        if !currents.resource_id.is_empty() {
            diesel::sql_query(
                "INSERT INTO resources (resource_type, resource_id, version, patient_ref, \
                 confidentiality, deleted, last_updated) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], \
                 $6::bool[], $7::timestamptz[]) \
                 ON CONFLICT (resource_type, resource_id) DO UPDATE SET version = excluded.version, \
                 patient_ref = excluded.patient_ref, confidentiality = excluded.confidentiality, \
                 deleted = excluded.deleted, last_updated = excluded.last_updated",
            )
            .bind::<Array<Text>, _>(currents.resource_type)
            .bind::<Array<Text>, _>(currents.resource_id)
            .bind::<Array<BigInt>, _>(currents.version)
            .bind::<Array<Nullable<Text>>, _>(currents.patient_ref)
            .bind::<Array<Nullable<Text>>, _>(currents.confidentiality)
            .bind::<Array<Bool>, _>(currents.deleted)
            .bind::<Array<Timestamptz>, _>(currents.last_updated)
            .execute(conn)
            .await?;
        }
        std::mem::take(&mut self.index).write(conn).await?;
        let facts = std::mem::take(&mut self.facts);
        if !facts.resource_id.is_empty() {
            let keys: Vec<Key> = facts
                .resource_type
                .iter()
                .cloned()
                .zip(facts.resource_id.iter().cloned())
                .collect();
            diesel::sql_query(
                "INSERT INTO access_facts (resource_type, resource_id, version, data_from, data_to) \
                 SELECT t, i, v, f::numeric, u::numeric \
                 FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[]) \
                 AS x(t, i, v, f, u) \
                 ON CONFLICT (resource_type, resource_id) DO UPDATE SET version = excluded.version, \
                 data_from = excluded.data_from, data_to = excluded.data_to",
            )
            .bind::<Array<Text>, _>(facts.resource_type)
            .bind::<Array<Text>, _>(facts.resource_id)
            .bind::<Array<BigInt>, _>(facts.version)
            .bind::<Array<Nullable<Text>>, _>(facts.data_from)
            .bind::<Array<Nullable<Text>>, _>(facts.data_to)
            .execute(conn)
            .await?;
            delete_of(conn, "access_codings", &keys).await?;
        }
        let codings = std::mem::take(&mut self.codings);
        if !codings.resource_id.is_empty() {
            diesel::sql_query(
                "INSERT INTO access_codings (resource_type, resource_id, kind, system, code) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])",
            )
            .bind::<Array<Text>, _>(codings.resource_type)
            .bind::<Array<Text>, _>(codings.resource_id)
            .bind::<Array<Text>, _>(codings.kind)
            .bind::<Array<Nullable<Text>>, _>(codings.system)
            .bind::<Array<Text>, _>(codings.code)
            .execute(conn)
            .await?;
        }
        let sets = std::mem::take(&mut self.reference_sets);
        if !sets.resource_id.is_empty() {
            let keys: Vec<Key> = sets
                .resource_type
                .iter()
                .cloned()
                .zip(sets.resource_id.iter().cloned())
                .collect();
            diesel::sql_query(
                "INSERT INTO access_reference_sets (resource_type, resource_id, version) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) \
                 ON CONFLICT (resource_type, resource_id) DO UPDATE SET version = excluded.version",
            )
            .bind::<Array<Text>, _>(sets.resource_type)
            .bind::<Array<Text>, _>(sets.resource_id)
            .bind::<Array<BigInt>, _>(sets.version)
            .execute(conn)
            .await?;
            delete_of(conn, "access_references", &keys).await?;
        }
        let references = std::mem::take(&mut self.references);
        if !references.resource_id.is_empty() {
            diesel::sql_query(
                "INSERT INTO access_references (resource_type, resource_id, version, target) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[])",
            )
            .bind::<Array<Text>, _>(references.resource_type)
            .bind::<Array<Text>, _>(references.resource_id)
            .bind::<Array<BigInt>, _>(references.version)
            .bind::<Array<Text>, _>(references.target)
            .execute(conn)
            .await?;
        }
        let custodians = std::mem::take(&mut self.custodians);
        if !custodians.is_empty() {
            let (patients, custodians): (Vec<String>, Vec<Option<String>>) =
                custodians.into_iter().unzip();
            diesel::sql_query(
                "INSERT INTO compartments (patient_ref, custodian) \
                 SELECT * FROM unnest($1::text[], $2::text[]) \
                 ON CONFLICT (patient_ref) DO UPDATE SET custodian = excluded.custodian",
            )
            .bind::<Array<Text>, _>(patients)
            .bind::<Array<Nullable<Text>>, _>(custodians)
            .execute(conn)
            .await?;
        }
        let rows = std::mem::take(&mut self.outbox);
        for chunk in rows.chunks(OUTBOX_ROWS_PER_STATEMENT) {
            outbox::enqueue_many(conn, chunk).await?;
        }
        let events = std::mem::take(&mut self.events);
        for chunk in events.chunks(OUTBOX_ROWS_PER_STATEMENT) {
            self.state.enqueue_events(conn, chunk).await?;
        }
        self.held.clear();
        Ok(())
    }
}

/// Deletes the rows of `keys` (resource type, id) from `table`, one statement.
async fn delete_of(
    conn: &mut AsyncPgConnection,
    table: &str,
    keys: &[Key],
) -> Result<(), RecordsError> {
    let (types, ids): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(t, i)| (t.as_str(), i.as_str())).unzip();
    diesel::sql_query(format!(
        "DELETE FROM {table} d USING unnest($1::text[], $2::text[]) AS k(t, i) \
         WHERE d.resource_type = k.t AND d.resource_id = k.i"
    ))
    .bind::<Array<Text>, _>(types)
    .bind::<Array<Text>, _>(ids)
    .execute(conn)
    .await?;
    Ok(())
}
