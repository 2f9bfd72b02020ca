//! Log storage in PostgreSQL: leaves, signed checkpoints and the signing key. It knows neither
//! tree math nor signing; it assigns durable indices and keeps what others computed.
//!
//! Appends take a transaction-scoped advisory lock, so exactly one writer at a time (across
//! every replica) picks the next index: indices are dense, 0, 1, 2, ... with no gaps. An event
//! already in the log (same `event_id`) is not appended twice. The same transaction writes the
//! tree's tiles ([`crate::tile_storage`]) for the new leaves.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use custodian_database::prepared;
use custodian_events::{AccessAction, AccessOutcome};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    domain::Viewer,
    schema::{checkpoints, cosignatures, leaves, signing_key},
    tile_storage,
    tiles::Edge,
    tree::Hash,
};

/// The advisory lock key of the single-writer append ("ledger" in ASCII).
pub(crate) const APPEND_LOCK: i64 = 0x6c65_6467_6572;

/// A leaf as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = leaves)]
pub struct LeafRow {
    pub idx: i64,
    pub event_id: Uuid,
    pub leaf_hash: Vec<u8>,
    pub payload: String,
    pub patient_ref: Option<String>,
    pub actor_id: String,
    pub time: DateTime<Utc>,
}

/// A leaf to append; its index is assigned by [`append`].
#[derive(Debug, Clone)]
pub struct NewLeaf {
    pub event_id: Uuid,
    pub leaf_hash: Vec<u8>,
    pub payload: String,
    pub patient_ref: Option<String>,
    pub actor_id: String,
    pub time: DateTime<Utc>,
    /// The event's action, outcome and `actor.practitioner`, for searches (`/fhir/AuditEvent`).
    pub action: AccessAction,
    pub outcome: AccessOutcome,
    pub actor_practitioner: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = leaves)]
struct InsertLeaf<'a> {
    idx: i64,
    event_id: Uuid,
    leaf_hash: &'a [u8],
    payload: &'a str,
    patient_ref: Option<&'a str>,
    actor_id: &'a str,
    time: DateTime<Utc>,
    action: &'static str,
    outcome: &'static str,
    actor_practitioner: Option<&'a str>,
}

/// What [`append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored at this index.
    New(i64),
    /// The event was already in the log at this index.
    Duplicate(i64),
}

/// Appends a batch of leaves in one transaction, in order; returns one outcome per leaf and the
/// tree's right edge after it. An event already stored, or repeated within the batch, is a
/// duplicate and keeps its index. The new leaves' tiles are written in the same transaction;
/// `latest_edge` gives the caller's latest edge once the lock is held, reused when no other
/// writer appended since (else the edge is read from the tiles).
pub async fn append(
    conn: &mut AsyncPgConnection,
    batch: &[NewLeaf],
    latest_edge: impl FnOnce() -> Edge + Send,
) -> QueryResult<(Vec<Appended>, Edge)> {
    let mut leaf_hashes = Vec::with_capacity(batch.len());
    for leaf in batch {
        leaf_hashes.push(<Hash>::try_from(leaf.leaf_hash.as_slice()).map_err(|_| {
            diesel::result::Error::QueryBuilderError("a leaf hash is not 32 bytes".into())
        })?);
    }
    conn.transaction(async move |conn| {
        prepared("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(APPEND_LOCK)
            .execute(conn)
            .await?;
        let max: Option<i64> = leaves::table
            .select(diesel::dsl::max(leaves::idx))
            .first(conn)
            .await?;
        let mut next = max.map_or(0, |m| m + 1);
        let mut edge = tile_storage::edge_at_locked(conn, latest_edge(), next as u64).await?;
        let ids: Vec<Uuid> = batch.iter().map(|l| l.event_id).collect();
        let mut known: HashMap<Uuid, i64> = leaves::table
            .filter(leaves::event_id.eq_any(&ids))
            .select((leaves::event_id, leaves::idx))
            .load::<(Uuid, i64)>(conn)
            .await?
            .into_iter()
            .collect();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut rows = Vec::with_capacity(batch.len());
        let mut new_hashes = Vec::with_capacity(batch.len());
        for (leaf, hash) in batch.iter().zip(&leaf_hashes) {
            if let Some(idx) = known.get(&leaf.event_id) {
                outcomes.push(Appended::Duplicate(*idx));
                continue;
            }
            known.insert(leaf.event_id, next);
            rows.push(InsertLeaf {
                idx: next,
                event_id: leaf.event_id,
                leaf_hash: &leaf.leaf_hash,
                payload: &leaf.payload,
                patient_ref: leaf.patient_ref.as_deref(),
                actor_id: &leaf.actor_id,
                time: leaf.time,
                action: leaf.action.as_str(),
                outcome: leaf.outcome.as_str(),
                actor_practitioner: leaf.actor_practitioner.as_deref(),
            });
            outcomes.push(Appended::New(next));
            new_hashes.push(*hash);
            next += 1;
        }
        // 10 parameters a row; PostgreSQL takes at most 65535 per statement.
        for chunk in rows.chunks(1000) {
            diesel::insert_into(leaves::table)
                .values(chunk)
                .execute(conn)
                .await?;
        }
        tile_storage::extend_and_write(conn, &mut edge, new_hashes).await?;
        Ok((outcomes, edge))
    })
    .await
}

/// `(idx, leaf_hash)` of at most `limit` leaves from index `from` on, in index order.
pub async fn leaf_hashes_from(
    conn: &mut AsyncPgConnection,
    from: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, Vec<u8>)>> {
    leaves::table
        .filter(leaves::idx.ge(from))
        .order(leaves::idx.asc())
        .limit(limit)
        .select((leaves::idx, leaves::leaf_hash))
        .load(conn)
        .await
}

/// `(idx, leaf_hash, payload)` of at most `limit` leaves from index `from` on, in index order
/// (keyset pagination on the primary key: each page costs the same however deep).
pub async fn leaves_from(
    conn: &mut AsyncPgConnection,
    from: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, Vec<u8>, String)>> {
    leaves::table
        .filter(leaves::idx.ge(from))
        .order(leaves::idx.asc())
        .limit(limit)
        .select((leaves::idx, leaves::leaf_hash, leaves::payload))
        .load(conn)
        .await
}

pub async fn entry(conn: &mut AsyncPgConnection, idx: i64) -> QueryResult<Option<LeafRow>> {
    leaves::table
        .find(idx)
        .select(LeafRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Which entries a listing wants.
#[derive(Debug, Clone)]
pub struct EntryQuery<'a> {
    pub viewer: &'a Viewer,
    pub patient: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    /// Only indices below this (the signed tree size).
    pub below: i64,
    pub limit: i64,
}

/// The newest entries matching `query`, newest first.
pub async fn entries(
    conn: &mut AsyncPgConnection,
    query: &EntryQuery<'_>,
) -> QueryResult<Vec<LeafRow>> {
    let mut q = leaves::table
        .filter(leaves::idx.lt(query.below))
        .into_boxed();
    match query.viewer {
        Viewer::Everything => {}
        Viewer::Patient(p) => q = q.filter(leaves::patient_ref.eq(p.as_str().to_string())),
        Viewer::Actor(a) => q = q.filter(leaves::actor_id.eq(a.clone())),
    }
    if let Some(p) = query.patient {
        q = q.filter(leaves::patient_ref.eq(p.to_string()));
    }
    if let Some(since) = query.since {
        q = q.filter(leaves::time.ge(since));
    }
    q.order(leaves::idx.desc())
        .limit(query.limit)
        .select(LeafRow::as_select())
        .load(conn)
        .await
}

/// The highest index of an entry matching the viewer and patient filter, at any size.
pub async fn newest_index(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    patient: Option<&str>,
) -> QueryResult<Option<i64>> {
    let mut q = leaves::table.into_boxed();
    match viewer {
        Viewer::Everything => {}
        Viewer::Patient(p) => q = q.filter(leaves::patient_ref.eq(p.as_str().to_string())),
        Viewer::Actor(a) => q = q.filter(leaves::actor_id.eq(a.clone())),
    }
    if let Some(p) = patient {
        q = q.filter(leaves::patient_ref.eq(p.to_string()));
    }
    q.select(leaves::idx)
        .order(leaves::idx.desc())
        .first(conn)
        .await
        .optional()
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = checkpoints)]
pub struct CheckpointRow {
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    pub note: String,
    pub signed_at: DateTime<Utc>,
}

pub async fn latest_checkpoint(conn: &mut AsyncPgConnection) -> QueryResult<Option<CheckpointRow>> {
    checkpoints::table
        .order(checkpoints::tree_size.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// At most `limit` stored checkpoints with a size above `after` (all when `None`), in size
/// order, each note with the witnesses' cosignature lines it received appended after the
/// log's signature (in witness order), as it was or would be published.
pub async fn checkpoints_after(
    conn: &mut AsyncPgConnection,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<CheckpointRow>> {
    let mut rows: Vec<CheckpointRow> = checkpoints::table
        .filter(checkpoints::tree_size.gt(after.unwrap_or(-1)))
        .order(checkpoints::tree_size.asc())
        .limit(limit)
        .select(CheckpointRow::as_select())
        .load(conn)
        .await?;
    let sizes: Vec<i64> = rows.iter().map(|r| r.tree_size).collect();
    let lines: Vec<(i64, String)> = cosignatures::table
        .filter(cosignatures::tree_size.eq_any(&sizes))
        .order((cosignatures::tree_size, cosignatures::witness))
        .select((cosignatures::tree_size, cosignatures::line))
        .load(conn)
        .await?;
    let mut lines = lines.into_iter().peekable();
    for row in &mut rows {
        while let Some((_, line)) = lines.next_if(|(size, _)| *size == row.tree_size) {
            row.note.push_str(&line);
        }
    }
    Ok(rows)
}

/// Stores a checkpoint; returns the stored one (another replica may have signed that size
/// first: Ed25519 is deterministic, so with the shared key the notes are equal anyway).
pub async fn store_checkpoint(
    conn: &mut AsyncPgConnection,
    row: &CheckpointRow,
) -> QueryResult<CheckpointRow> {
    diesel::insert_into(checkpoints::table)
        .values(row)
        .on_conflict(checkpoints::tree_size)
        .do_nothing()
        .execute(conn)
        .await?;
    checkpoints::table
        .find(row.tree_size)
        .select(CheckpointRow::as_select())
        .first(conn)
        .await
}

/// The raw Ed25519 private key of the log, created by `generate` on first start. Concurrent
/// first starts agree on one key: the first insert wins and everyone reads it back.
pub async fn load_or_create_key<E>(
    conn: &mut AsyncPgConnection,
    generate: impl FnOnce() -> Result<(Vec<u8>, Vec<u8>), E>,
) -> Result<Vec<u8>, LoadKeyError<E>> {
    let existing: Option<Vec<u8>> = signing_key::table
        .select(signing_key::private_key)
        .first(conn)
        .await
        .optional()?;
    if let Some(key) = existing {
        return Ok(key);
    }
    let (private_key, public_key) = generate().map_err(LoadKeyError::Generate)?;
    diesel::insert_into(signing_key::table)
        .values((
            signing_key::id.eq(1i16),
            signing_key::private_key.eq(&private_key),
            signing_key::public_key.eq(&public_key),
        ))
        .on_conflict(signing_key::id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(signing_key::table
        .select(signing_key::private_key)
        .first(conn)
        .await?)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadKeyError<E> {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("key generation: {0}")]
    Generate(E),
}
