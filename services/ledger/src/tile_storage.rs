//! The tree's tiles in PostgreSQL (table `tiles`, see [`crate::tiles`] for the layout).
//!
//! Tiles are written by the single writer that holds the append lock, in the same transaction
//! as the leaves they cover: a committed leaf always has its tiles. Leaves stored without
//! tiles (a database from before tiles, or a replica of the old version still appending) are
//! integrated by [`integrate_untiled`], page by page.

use std::{collections::HashMap, sync::Arc};

use custodian_database::prepared;
use diesel::{
    prelude::*,
    sql_types::{Array, BigInt, Bytea, SmallInt},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{
    schema::{leaves, tiles},
    storage::APPEND_LOCK,
    tiles::{edge_tiles, hashes_from_bytes, hashes_to_bytes, Edge, TileId, TileWrites},
    tree::Hash,
};

/// Leaf hashes read per query when integrating leaves stored without tiles.
pub const INTEGRATE_PAGE: i64 = 65_536;

fn corrupt(what: String) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(what.into())
}

/// Writes tiles: new ones are inserted, a stored one is replaced only by a wider one (full
/// tiles never change; the partial ones grow). One statement.
pub async fn write_tiles(
    conn: &mut AsyncPgConnection,
    tiles: &[(TileId, Vec<Hash>)],
) -> QueryResult<()> {
    if tiles.is_empty() {
        return Ok(());
    }
    let levels: Vec<i16> = tiles.iter().map(|(id, _)| id.level as i16).collect();
    let indices: Vec<i64> = tiles.iter().map(|(id, _)| id.index as i64).collect();
    let hashes: Vec<Vec<u8>> = tiles.iter().map(|(_, h)| hashes_to_bytes(h)).collect();
    prepared(
        "INSERT INTO tiles (level, idx, hashes) \
         SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) \
         ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes \
         WHERE octet_length(tiles.hashes) < octet_length(EXCLUDED.hashes)",
    )
    .bind::<Array<SmallInt>, _>(levels)
    .bind::<Array<BigInt>, _>(indices)
    .bind::<Array<Bytea>, _>(hashes)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored tiles among `ids` (absent ones are missing from the map): one query per level
/// asked (a proof's upper-level tiles are nearly always cached, so in practice one query). The
/// query is built with diesel's DSL so its prepared statement is cached (a raw `sql_query` is
/// prepared again every time: one more round trip).
pub async fn fetch_tiles(
    conn: &mut AsyncPgConnection,
    ids: &[TileId],
) -> QueryResult<HashMap<TileId, Arc<Vec<Hash>>>> {
    let mut by_level: std::collections::BTreeMap<u32, Vec<i64>> = Default::default();
    for id in ids {
        by_level.entry(id.level).or_default().push(id.index as i64);
    }
    let mut out = HashMap::with_capacity(ids.len());
    for (level, indices) in by_level {
        let rows: Vec<(i64, Vec<u8>)> = tiles::table
            .filter(tiles::level.eq(level as i16))
            .filter(tiles::idx.eq_any(indices))
            .select((tiles::idx, tiles::hashes))
            .load(conn)
            .await?;
        for (idx, bytes) in rows {
            let id = TileId {
                level,
                index: idx as u64,
            };
            let hashes = hashes_from_bytes(&bytes)
                .ok_or_else(|| corrupt(format!("tile {id:?} is not whole hashes")))?;
            out.insert(id, Arc::new(hashes));
        }
    }
    Ok(out)
}

/// Number of leaves the stored tiles cover: the end of the last level-0 tile.
pub async fn tiled_size(conn: &mut AsyncPgConnection) -> QueryResult<u64> {
    #[derive(QueryableByName)]
    struct Last {
        #[diesel(sql_type = BigInt)]
        idx: i64,
        #[diesel(sql_type = BigInt)]
        width: i64,
    }
    let last: Option<Last> = prepared(
        "SELECT idx, (octet_length(hashes) / 32)::bigint AS width FROM tiles \
         WHERE level = 0 ORDER BY idx DESC LIMIT 1",
    )
    .get_result(conn)
    .await
    .optional()?;
    Ok(last.map_or(0, |l| l.idx as u64 * 256 + l.width as u64))
}

/// Number of stored leaves (indices are dense).
pub async fn leaf_count(conn: &mut AsyncPgConnection) -> QueryResult<u64> {
    let max: Option<i64> = leaves::table
        .select(diesel::dsl::max(leaves::idx))
        .first(conn)
        .await?;
    Ok(max.map_or(0, |m| m as u64 + 1))
}

/// The right edge of the tree of `size` leaves, from its (at most 8) edge tiles, one query.
pub async fn load_edge(conn: &mut AsyncPgConnection, size: u64) -> QueryResult<Edge> {
    let ids: Vec<TileId> = edge_tiles(size).into_iter().map(|(id, _)| id).collect();
    let tiles = fetch_tiles(conn, &ids).await?;
    Edge::from_tiles(size, &tiles)
        .map_err(|id| corrupt(format!("tile {id:?} of the tree at size {size} is missing")))
}

/// Appends leaf hashes to `edge` and writes the tiles that changed.
pub async fn extend_and_write(
    conn: &mut AsyncPgConnection,
    edge: &mut Edge,
    leaf_hashes: impl IntoIterator<Item = Hash>,
) -> QueryResult<()> {
    let mut writes = TileWrites::default();
    edge.extend(leaf_hashes, &mut writes);
    let mut all = edge.partial_writes(&writes);
    all.append(&mut writes.full);
    for chunk in all.chunks(256) {
        write_tiles(conn, chunk).await?;
    }
    Ok(())
}

/// Integrates stored leaves `[edge.size(), upto)` into the tiles, reading their hashes page by
/// page (memory: one page). The caller holds the append lock.
pub async fn integrate_leaves(
    conn: &mut AsyncPgConnection,
    edge: &mut Edge,
    upto: u64,
) -> QueryResult<()> {
    while edge.size() < upto {
        let from = edge.size() as i64;
        let rows: Vec<(i64, Vec<u8>)> = leaves::table
            .filter(leaves::idx.ge(from).and(leaves::idx.lt(upto as i64)))
            .order(leaves::idx.asc())
            .limit(INTEGRATE_PAGE)
            .select((leaves::idx, leaves::leaf_hash))
            .load(conn)
            .await?;
        if rows.is_empty() {
            return Err(corrupt(format!("leaf {from} is missing")));
        }
        let mut hashes = Vec::with_capacity(rows.len());
        for (offset, (idx, hash)) in rows.into_iter().enumerate() {
            if idx != from + offset as i64 {
                return Err(corrupt(format!("leaf indices have a gap before {idx}")));
            }
            hashes.push(
                <Hash>::try_from(hash.as_slice())
                    .map_err(|_| corrupt(format!("leaf hash {idx} is not 32 bytes")))?,
            );
        }
        extend_and_write(conn, edge, hashes).await?;
    }
    Ok(())
}

/// Within an append transaction holding the lock: the edge of the stored tree of `size`
/// leaves. `known` is reused when it is at that size (the common case: this process wrote
/// last); otherwise the edge is loaded from the tiles and leaves without tiles are integrated.
pub async fn edge_at_locked(
    conn: &mut AsyncPgConnection,
    known: Edge,
    size: u64,
) -> QueryResult<Edge> {
    if known.size() == size {
        return Ok(known);
    }
    let tiled = tiled_size(conn).await?;
    let mut edge = load_edge(conn, tiled).await?;
    integrate_leaves(conn, &mut edge, size).await?;
    Ok(edge)
}

/// Builds the tiles of every leaf stored without them, one transaction per page so memory
/// and transaction size stay bounded; returns the number of leaves integrated. Safe to run
/// from several replicas at once (each page takes the append lock).
pub async fn integrate_untiled(conn: &mut AsyncPgConnection) -> QueryResult<u64> {
    let mut integrated = 0;
    loop {
        let done = conn
            .transaction(async |conn| {
                prepared("SELECT pg_advisory_xact_lock($1)")
                    .bind::<diesel::sql_types::BigInt, _>(APPEND_LOCK)
                    .execute(conn)
                    .await?;
                let tiled = tiled_size(conn).await?;
                let stored = leaf_count(conn).await?;
                if tiled >= stored {
                    return Ok::<_, diesel::result::Error>(None);
                }
                let mut edge = load_edge(conn, tiled).await?;
                let upto = stored.min(tiled + INTEGRATE_PAGE as u64);
                integrate_leaves(conn, &mut edge, upto).await?;
                Ok(Some(upto - tiled))
            })
            .await?;
        match done {
            Some(n) => {
                integrated += n;
                tracing::info!(integrated, "built tiles for stored leaves");
            }
            None => return Ok(integrated),
        }
    }
}

/// `(idx, payload, patient_ref, actor_id)` of the leaves `[from, to)`, in index order: the
/// data of an entry bundle and what decides who may read it.
pub async fn leaf_range(
    conn: &mut AsyncPgConnection,
    from: i64,
    to: i64,
) -> QueryResult<Vec<(i64, String, Option<String>, String)>> {
    leaves::table
        .filter(leaves::idx.ge(from).and(leaves::idx.lt(to)))
        .order(leaves::idx.asc())
        .select((
            leaves::idx,
            leaves::payload,
            leaves::patient_ref,
            leaves::actor_id,
        ))
        .load(conn)
        .await
}
