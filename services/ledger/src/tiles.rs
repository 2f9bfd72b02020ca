//! The tree stored as C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>), pure math, no I/O.
//!
//! A tile of level `L`, index `N` lists the hashes of the complete tree nodes of height `8·L`
//! with indices `[256·N, 256·N + W)`: a full tile has `W = 256` and never changes; the rightmost
//! tile of each level is partial (`W < 256`) and grows. Level 0 tiles are the leaf hashes. A
//! node of height `8·L + r` (`r < 8`) is the root of `2^r` consecutive entries of one tile of
//! level `L`, so any node the proof algorithms read comes from exactly one tile.
//!
//! - [`TileId`], [`tile_of`]: which tile holds a node; [`TileId::path`]/[`TilePath::parse`]:
//!   the spec's URL path (`tile/<L>/<N>[.p/<W>]`).
//! - [`Edge`]: the right edge of the tree (the partial tile of every level, at most 255 hashes
//!   each): enough to append and to compute the root, and all the service keeps in memory.
//! - [`TileSet`]: a [`HashSource`] over fetched tiles (and an edge).

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use crate::tree::{empty_root, node_hash, perfect_root, Hash, HashSource, Node, HASH_LEN};

/// Tree levels per tile (the spec's tile height).
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// A tile: level `level` (tree height `8·level`), index `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    pub level: u32,
    pub index: u64,
}

/// The tile holding `node`, and the range of its entries whose root the node is.
pub fn tile_of(node: Node) -> (TileId, std::ops::Range<usize>) {
    let level = node.height / TILE_HEIGHT;
    let r = node.height % TILE_HEIGHT;
    let first = node.index << r;
    let offset = (first % TILE_WIDTH) as usize;
    (
        TileId {
            level,
            index: first / TILE_WIDTH,
        },
        offset..offset + (1usize << r),
    )
}

/// The hash of `node` from the entries of its tile (`None` when the tile is too narrow).
pub fn node_from_tile(node: Node, entries: &[Hash]) -> Option<Hash> {
    let (_, range) = tile_of(node);
    entries.get(range).map(perfect_root)
}

/// Number of entries the tile `id` has in a tree of `size` leaves (0 when it has none yet).
pub fn tile_width_at(id: TileId, size: u64) -> u64 {
    let nodes = size.checked_shr(TILE_HEIGHT * id.level).unwrap_or(0);
    nodes
        .saturating_sub(id.index.saturating_mul(TILE_WIDTH))
        .min(TILE_WIDTH)
}

/// The tiles a tree of `size` leaves has at its right edge: one partial tile per level with a
/// non-zero width, lowest level first, with their widths.
pub fn edge_tiles(size: u64) -> Vec<(TileId, u64)> {
    let mut out = Vec::new();
    let mut level = 0;
    loop {
        let nodes = size.checked_shr(TILE_HEIGHT * level).unwrap_or(0);
        if nodes == 0 {
            break;
        }
        let width = nodes % TILE_WIDTH;
        if width > 0 {
            out.push((
                TileId {
                    level,
                    index: nodes / TILE_WIDTH,
                },
                width,
            ));
        }
        level += 1;
    }
    out
}

/// The right edge of a tree: its size and, per level, the entries of the rightmost tile that
/// is not full yet. At most `64 / 8 = 8` levels of at most 255 hashes: 64 KiB, whatever the size.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    size: u64,
    /// `partial[L]` has exactly `(size >> 8L) % 256` entries.
    partial: Vec<Vec<Hash>>,
    /// The root, computed once (up to ~2,000 hashes) when first asked.
    root: OnceLock<Hash>,
}

impl PartialEq for Edge {
    fn eq(&self, other: &Self) -> bool {
        self.size == other.size && self.partial == other.partial
    }
}

impl Eq for Edge {}

/// What appending to an [`Edge`] changed: tiles to write (full ones once, partial ones upserted).
#[derive(Debug, Default)]
pub struct TileWrites {
    /// Tiles completed by the appends, each exactly 256 hashes.
    pub full: Vec<(TileId, Vec<Hash>)>,
    /// Levels whose partial tile changed.
    touched: Vec<bool>,
}

impl Edge {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The edge of a tree of `size` leaves, from its edge tiles (as [`edge_tiles`] lists them;
    /// wider tiles, stored later, are cut to the width at `size`).
    pub fn from_tiles(size: u64, tiles: &HashMap<TileId, Arc<Vec<Hash>>>) -> Result<Self, TileId> {
        let mut partial = Vec::new();
        for (id, width) in edge_tiles(size) {
            let entries = tiles
                .get(&id)
                .and_then(|t| t.get(..width as usize))
                .ok_or(id)?;
            while partial.len() < id.level as usize {
                partial.push(Vec::new());
            }
            partial.push(entries.to_vec());
        }
        Ok(Self {
            size,
            partial,
            root: OnceLock::new(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The partial tile of `level` with its entries, if it has any.
    pub fn partial_tile(&self, level: u32) -> Option<(TileId, &[Hash])> {
        let entries = self.partial.get(level as usize)?;
        if entries.is_empty() {
            return None;
        }
        let nodes = self.size >> (TILE_HEIGHT * level);
        Some((
            TileId {
                level,
                index: nodes / TILE_WIDTH,
            },
            entries,
        ))
    }

    /// Appends leaf hashes, collecting the tiles that changed into `writes`.
    pub fn extend(&mut self, leaf_hashes: impl IntoIterator<Item = Hash>, writes: &mut TileWrites) {
        for hash in leaf_hashes {
            self.push(hash, writes);
        }
    }

    fn push(&mut self, hash: Hash, writes: &mut TileWrites) {
        let size_after = self.size + 1;
        let mut carry = hash;
        let mut level = 0usize;
        loop {
            if self.partial.len() == level {
                self.partial.push(Vec::new());
            }
            if writes.touched.len() <= level {
                writes.touched.resize(level + 1, false);
            }
            writes.touched[level] = true;
            self.partial[level].push(carry);
            if self.partial[level].len() < TILE_WIDTH as usize {
                break;
            }
            // A full tile: written once, and its root is one entry of the level above.
            let full = std::mem::take(&mut self.partial[level]);
            carry = perfect_root(&full);
            let nodes = size_after >> (TILE_HEIGHT as usize * level);
            writes.full.push((
                TileId {
                    level: level as u32,
                    index: nodes / TILE_WIDTH - 1,
                },
                full,
            ));
            level += 1;
        }
        self.size = size_after;
        self.root = OnceLock::new();
    }

    /// The partial tiles `writes` says changed, to upsert.
    pub fn partial_writes(&self, writes: &TileWrites) -> Vec<(TileId, Vec<Hash>)> {
        writes
            .touched
            .iter()
            .enumerate()
            .filter(|(_, touched)| **touched)
            .filter_map(|(level, _)| self.partial_tile(level as u32))
            .map(|(id, entries)| (id, entries.to_vec()))
            .collect()
    }

    /// The root of the tree: the perfect subtrees of the edge, folded right to left.
    pub fn root(&self) -> Hash {
        *self.root.get_or_init(|| self.compute_root())
    }

    fn compute_root(&self) -> Hash {
        let mut subtrees = Vec::new();
        for entries in self.partial.iter().rev() {
            let mut offset = 0;
            let mut width = entries.len();
            while width > 0 {
                let chunk = 1usize << (usize::BITS - 1 - width.leading_zeros());
                subtrees.push(perfect_root(&entries[offset..offset + chunk]));
                offset += chunk;
                width -= chunk;
            }
        }
        let Some(mut root) = subtrees.pop() else {
            return empty_root();
        };
        while let Some(left) = subtrees.pop() {
            root = node_hash(&left, &root);
        }
        root
    }
}

impl HashSource for Edge {
    fn node(&self, node: Node) -> Option<Hash> {
        let (id, _) = tile_of(node);
        let (edge_id, entries) = self.partial_tile(id.level)?;
        if edge_id != id {
            return None;
        }
        node_from_tile(node, entries)
    }
}

/// Tiles fetched for a computation, with the edge for the partial ones.
#[derive(Debug, Default)]
pub struct TileSet {
    pub tiles: HashMap<TileId, Arc<Vec<Hash>>>,
    pub edge: Arc<Edge>,
}

impl HashSource for TileSet {
    fn node(&self, node: Node) -> Option<Hash> {
        let (id, _) = tile_of(node);
        match self.tiles.get(&id) {
            Some(entries) => node_from_tile(node, entries),
            None => self.edge.node(node),
        }
    }
}

/// Full tiles recently read, at most `capacity` of them (8 KiB each). Full tiles never change,
/// so a cached one is never stale. Least recently used ones go first, an eighth at a time.
#[derive(Debug)]
pub struct TileCache {
    capacity: usize,
    clock: u64,
    tiles: HashMap<TileId, (Arc<Vec<Hash>>, u64)>,
}

impl TileCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: 0,
            tiles: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    pub fn get(&mut self, id: TileId) -> Option<Arc<Vec<Hash>>> {
        self.clock += 1;
        let (tile, used) = self.tiles.get_mut(&id)?;
        *used = self.clock;
        Some(tile.clone())
    }

    /// Keeps `tile` if it is full (partial tiles grow, so they are not cached).
    pub fn insert(&mut self, id: TileId, tile: Arc<Vec<Hash>>) {
        if tile.len() as u64 != TILE_WIDTH {
            return;
        }
        self.clock += 1;
        self.tiles.insert(id, (tile, self.clock));
        if self.tiles.len() > self.capacity {
            let mut ages: Vec<u64> = self.tiles.values().map(|(_, used)| *used).collect();
            let cut = (self.capacity / 8).max(1);
            let (_, threshold, _) = ages.select_nth_unstable(cut);
            let threshold = *threshold;
            self.tiles.retain(|_, (_, used)| *used >= threshold);
        }
    }
}

/// Hashes of a stored tile, checked to be whole hashes.
pub fn hashes_from_bytes(bytes: &[u8]) -> Option<Vec<Hash>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(HASH_LEN) {
        return None;
    }
    bytes
        .chunks_exact(HASH_LEN)
        .map(|c| <Hash>::try_from(c).ok())
        .collect()
}

/// Bytes of a tile: its hashes concatenated, as the spec serves them.
pub fn hashes_to_bytes(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// A tile as addressed by the spec's URL path: `<L>/<N>[.p/<W>]` for hash tiles,
/// `entries/<N>[.p/<W>]` for entry bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// `None` for an entry bundle.
    pub level: Option<u32>,
    pub index: u64,
    /// `Some(W)` for a partial tile of width `W` (1..=255).
    pub width: Option<u64>,
}

/// Why a tile path is not one the spec allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])")]
pub struct BadTilePath;

impl TilePath {
    /// Parses the part after `tile/`. Index elements are exactly three digits, all but the last
    /// prefixed with `x`, with no leading zero group; `W` is 1..=255 with no leading zero.
    pub fn parse(path: &str) -> Result<Self, BadTilePath> {
        let (first, rest) = path.split_once('/').ok_or(BadTilePath)?;
        let level = if first == "entries" {
            None
        } else {
            Some(parse_small(first, 63)? as u32)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index, w)) => (index, Some(parse_small(w, TILE_WIDTH - 1)?)),
            None => (rest, None),
        };
        if width == Some(0) {
            return Err(BadTilePath);
        }
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, group) in groups.iter().enumerate() {
            let last = i + 1 == groups.len();
            let digits = if last {
                *group
            } else {
                group.strip_prefix('x').ok_or(BadTilePath)?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadTilePath);
            }
            if i == 0 && !last && digits == "000" {
                return Err(BadTilePath);
            }
            let value: u64 = digits.parse().map_err(|_| BadTilePath)?;
            index = index
                .checked_mul(1000)
                .and_then(|n| n.checked_add(value))
                .ok_or(BadTilePath)?;
        }
        Ok(Self {
            level,
            index,
            width,
        })
    }

    /// The path after `tile/`, as the spec writes it.
    pub fn encode(&self) -> String {
        let mut groups = Vec::new();
        let mut n = self.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let index: Vec<String> = groups
            .iter()
            .rev()
            .enumerate()
            .map(|(i, g)| {
                if i + 1 == groups.len() {
                    format!("{g:03}")
                } else {
                    format!("x{g:03}")
                }
            })
            .collect();
        let head = match self.level {
            Some(l) => l.to_string(),
            None => "entries".to_string(),
        };
        let mut out = format!("{head}/{}", index.join("/"));
        if let Some(w) = self.width {
            out.push_str(&format!(".p/{w}"));
        }
        out
    }
}

/// A decimal with no leading zero (except `0` itself), at most `max`.
fn parse_small(s: &str, max: u64) -> Result<u64, BadTilePath> {
    if s.is_empty() || s.len() > 3 || (s.len() > 1 && s.starts_with('0')) {
        return Err(BadTilePath);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadTilePath);
    }
    let n: u64 = s.parse().map_err(|_| BadTilePath)?;
    if n > max {
        return Err(BadTilePath);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::tree::{self, leaf_hash, Tree};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Appends through an edge, keeping every written tile as a store would.
    fn tiled(n: u64, batch: usize) -> (Edge, HashMap<TileId, Arc<Vec<Hash>>>) {
        let mut edge = Edge::new();
        let mut store = HashMap::new();
        for chunk in leaves(n).chunks(batch) {
            let mut writes = TileWrites::default();
            edge.extend(chunk.iter().copied(), &mut writes);
            for (id, entries) in edge.partial_writes(&writes).into_iter().chain(writes.full) {
                let old: Option<&Arc<Vec<Hash>>> = store.get(&id);
                if let Some(old) = old {
                    assert!(old.len() < 256, "full tile {id:?} written twice");
                    assert_eq!(&entries[..old.len()], &old[..], "tile {id:?} rewritten");
                }
                store.insert(id, Arc::new(entries));
            }
        }
        (edge, store)
    }

    #[test]
    fn edge_roots_and_tile_proofs_match_the_in_memory_tree() {
        for (n, batch) in [
            (0, 1),
            (1, 1),
            (255, 7),
            (256, 256),
            (257, 100),
            (511, 3),
            (65_535, 1000),
            (65_536, 4096),
            (65_537, 999),
            (70_000, 200),
        ] {
            let all = leaves(n);
            let tree = Tree::from_leaf_hashes(all.iter().copied());
            let (edge, store) = tiled(n, batch);
            assert_eq!(edge.size(), n);
            assert_eq!(edge.root(), tree.root(), "root at {n}");
            let set = TileSet {
                tiles: store.clone(),
                edge: Arc::new(edge.clone()),
            };
            // The edge rebuilt from the stored tiles alone is the same edge.
            assert_eq!(Edge::from_tiles(n, &store).unwrap(), edge);
            let mut x = n.wrapping_mul(2_654_435_761) | 1;
            for _ in 0..200.min(n) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let size = 1 + x % n;
                let index = (x >> 11) % size;
                assert_eq!(
                    tree::inclusion_proof(&set, index, size).unwrap(),
                    tree.inclusion_proof(index, size).unwrap(),
                    "inclusion {index} in {size}"
                );
                let first = 1 + (x >> 23) % size;
                assert_eq!(
                    tree::consistency_proof(&set, first, size).unwrap(),
                    tree.consistency_proof(first, size).unwrap(),
                    "consistency {first} -> {size}"
                );
                assert_eq!(
                    tree::root_at(&set, size).unwrap(),
                    tree.root_at(size).unwrap()
                );
                // An older size's edge, cut from the same (wider) tiles, has that size's root.
                assert_eq!(
                    Edge::from_tiles(size, &store).unwrap().root(),
                    tree.root_at(size).unwrap()
                );
            }
        }
    }

    #[test]
    fn full_tiles_hold_the_nodes_of_their_level() {
        let (_, store) = tiled(65_536 + 300, 500);
        let tree = Tree::from_leaf_hashes(leaves(65_536 + 300));
        let level1 = store.get(&TileId { level: 1, index: 0 }).unwrap();
        assert_eq!(level1.len(), 256);
        for (i, h) in level1.iter().enumerate() {
            assert_eq!(
                Some(*h),
                tree::HashSource::node(
                    &tree,
                    Node {
                        height: 8,
                        index: i as u64
                    }
                )
            );
        }
        assert_eq!(
            store.get(&TileId { level: 2, index: 0 }).map(|t| t.len()),
            Some(1)
        );
    }

    #[test]
    fn tile_paths_follow_the_spec() {
        for (path, level, index, width) in [
            ("0/000", Some(0), 0, None),
            ("0/001.p/7", Some(0), 1, Some(7)),
            ("1/x001/x234/067", Some(1), 1_234_067, None),
            ("entries/x001/000.p/255", None, 1000, Some(255)),
        ] {
            let parsed = TilePath::parse(path).unwrap();
            assert_eq!(
                parsed,
                TilePath {
                    level,
                    index,
                    width
                }
            );
            assert_eq!(parsed.encode(), path);
        }
        for bad in [
            "0/1",
            "0/0001",
            "0/x000/001",
            "0/001/x002",
            "00/001",
            "64/001",
            "0/001.p/0",
            "0/001.p/256",
            "0/001.p/07",
            "0/-01",
            "0",
            "x/001",
            "0/x999/x999/x999/x999/x999/x999/x999/999",
        ] {
            assert_eq!(TilePath::parse(bad), Err(BadTilePath), "{bad}");
        }
    }

    #[test]
    fn the_cache_keeps_recent_full_tiles_within_its_capacity() {
        let mut cache = TileCache::new(16);
        let full = Arc::new(vec![[0u8; 32]; 256]);
        let id = |index| TileId { level: 0, index };
        cache.insert(id(1000), Arc::new(vec![[0u8; 32]; 3]));
        assert!(
            cache.get(id(1000)).is_none(),
            "partial tiles are not cached"
        );
        for i in 0..100 {
            cache.insert(id(i), full.clone());
            // Tile 0 stays hot.
            assert!(cache.get(id(0)).is_some());
            assert!(cache.len() <= 16);
        }
        assert!(cache.get(id(99)).is_some());
        assert!(cache.get(id(1)).is_none());
    }

    #[test]
    fn tile_widths_at_sizes() {
        let t = |level, index| TileId { level, index };
        assert_eq!(tile_width_at(t(0, 0), 300), 256);
        assert_eq!(tile_width_at(t(0, 1), 300), 44);
        assert_eq!(tile_width_at(t(0, 2), 300), 0);
        assert_eq!(tile_width_at(t(1, 0), 300), 1);
        assert_eq!(
            edge_tiles(65_536 + 256 + 3),
            vec![(t(0, 257), 3), (t(1, 1), 1), (t(2, 0), 1)]
        );
    }
}
