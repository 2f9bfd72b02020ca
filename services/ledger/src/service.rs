//! The ledger itself: the durable leaves and tiles (storage), the tree's right edge in memory
//! (tile math) and the latest signed checkpoint (signing), kept in step.
//!
//! Writes go to PostgreSQL first, which assigns the index and stores the leaves' tiles in the
//! same transaction; the in-memory right edge then moves to the stored size. A leaf appended
//! by another replica is picked up by [`LedgerService::catch_up`], which reloads the edge from
//! the tiles. Proofs read the (at most a handful of) tiles they need in one query, through a
//! small cache of full tiles.
//!
//! Memory is bounded whatever the log's size: the edge (at most 8 partial tiles, 64 KiB) and
//! [`TILE_CACHE_TILES`] full tiles of 8 KiB.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex, RwLock},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use custodian_database::Pool;
use custodian_events::AccessEvent;
use prometheus::{IntCounter, IntGauge};
use tokio::sync::watch;

use crate::{
    domain::Checkpoint,
    error::LedgerError,
    signing::NoteSigner,
    storage::{self, Appended, CheckpointRow, NewLeaf},
    tile_storage,
    tiles::{tile_of, Edge, TileCache, TileId, TileSet},
    tree::{self, Hash, HashSource, Node, NodeRecorder, TreeError},
};

/// Full tiles kept in memory for proofs (8 KiB each: 32 MiB).
pub const TILE_CACHE_TILES: usize = 4096;

/// The ledger's own metrics.
#[derive(Clone)]
pub struct LedgerMetrics {
    pub tree_size: IntGauge,
    pub appends: IntCounter,
    pub duplicates: IntCounter,
    pub checkpoints_signed: IntCounter,
}

impl LedgerMetrics {
    pub fn register(metrics: &custodian_telemetry::Metrics) -> Result<Self, prometheus::Error> {
        let m = Self {
            tree_size: IntGauge::new("ledger_tree_size", "Leaves in the ledger's Merkle tree")?,
            appends: IntCounter::new(
                "ledger_appends_total",
                "Access events appended to the ledger",
            )?,
            duplicates: IntCounter::new(
                "ledger_duplicates_total",
                "Redelivered access events already in the ledger",
            )?,
            checkpoints_signed: IntCounter::new(
                "ledger_checkpoints_signed_total",
                "Checkpoints signed",
            )?,
        };
        metrics.register(Box::new(m.tree_size.clone()));
        metrics.register(Box::new(m.appends.clone()));
        metrics.register(Box::new(m.duplicates.clone()));
        metrics.register(Box::new(m.checkpoints_signed.clone()));
        Ok(m)
    }
}

/// A checkpoint with its signed note.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    pub tree_size: u64,
    pub root_hash: Hash,
    pub note: String,
}

impl SignedCheckpoint {
    pub fn root_base64(&self) -> String {
        STANDARD.encode(self.root_hash)
    }
}

/// An inclusion proof with what it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_hash: Hash,
    /// Sibling hashes, leaf first (RFC 9162 §2.1.3.1).
    pub proof: Vec<Hash>,
    pub root: Hash,
}

/// A consistency proof with the two roots it links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub proof: Vec<Hash>,
    pub first_root: Hash,
    pub second_root: Hash,
}

pub struct LedgerService {
    pool: Pool,
    /// The tree's right edge at the size integrated so far; replaced whole, never edited.
    edge: RwLock<Arc<Edge>>,
    tile_cache: Mutex<TileCache>,
    signer: NoteSigner,
    latest: RwLock<SignedCheckpoint>,
    /// One signer at a time in this process (the database settles races between replicas).
    signing: tokio::sync::Mutex<()>,
    metrics: LedgerMetrics,
    /// What is served: the newest checkpoint with at least `witness_quorum` cosignatures (its
    /// note carries them); without witnesses, the newest signed. See [`crate::witnessing`].
    published: watch::Sender<SignedCheckpoint>,
    /// The newest signed checkpoint, watched by the witnessing task.
    signed: watch::Sender<SignedCheckpoint>,
    witness_quorum: usize,
}

/// How long a request needing a checkpoint that covers new entries waits for the witnesses to
/// cosign one, before it is answered with the newest published checkpoint.
const PUBLICATION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn to_i64(n: u64) -> Result<i64, LedgerError> {
    i64::try_from(n).map_err(|_| LedgerError::Validation("number too large".into()))
}

fn hash_of(bytes: &[u8], what: &str) -> Result<Hash, LedgerError> {
    bytes
        .try_into()
        .map_err(|_| LedgerError::unexpected(format!("stored {what} is not 32 bytes")))
}

/// A request's own mistake (an index beyond the size) is a 404 like a size the log lacks; a
/// node missing from the tiles is a fault.
fn tree_error(e: TreeError) -> LedgerError {
    match e {
        TreeError::MissingNode(_) => LedgerError::unexpected(e),
        other => LedgerError::NotFound(other.to_string()),
    }
}

impl LedgerService {
    /// Opens the ledger: builds the tiles of leaves stored without them (a database from
    /// before tiles), loads the tree's right edge from the tiles and checks the latest stored
    /// checkpoint's root against them: a database whose tree no longer matches what was
    /// signed is refused. Reads O(log n) tiles, not the leaves.
    /// With a `witness_quorum`, nothing is published until [`crate::witnessing`] restores or
    /// obtains a checkpoint with enough cosignatures.
    pub async fn open(
        pool: Pool,
        signer: NoteSigner,
        metrics: LedgerMetrics,
        witness_quorum: usize,
    ) -> Result<Arc<Self>, LedgerError> {
        let mut conn = pool.get().await?;
        let integrated = tile_storage::integrate_untiled(&mut conn).await?;
        if integrated > 0 {
            tracing::info!(integrated, "tiles built for leaves stored without them");
        }
        let size = tile_storage::tiled_size(&mut conn).await?;
        let edge = tile_storage::load_edge(&mut conn, size).await?;
        let stored = storage::latest_checkpoint(&mut conn).await?;
        let latest = match stored {
            Some(row) => {
                let signed_size = u64::try_from(row.tree_size).map_err(LedgerError::unexpected)?;
                let root = hash_of(&row.root_hash, "checkpoint root")?;
                let mismatch = || {
                    LedgerError::unexpected(format!(
                        "the stored tree does not match the checkpoint signed at size {signed_size}"
                    ))
                };
                if signed_size > size {
                    return Err(mismatch());
                }
                let at_signed = tile_storage::load_edge(&mut conn, signed_size)
                    .await
                    .map_err(|_| mismatch())?;
                if at_signed.root() != root {
                    return Err(mismatch());
                }
                SignedCheckpoint {
                    tree_size: signed_size,
                    root_hash: root,
                    note: row.note,
                }
            }
            // Placeholder until the first checkpoint below is signed.
            None => SignedCheckpoint {
                tree_size: 0,
                root_hash: tree::empty_root(),
                note: String::new(),
            },
        };
        drop(conn);
        let needs_first = latest.note.is_empty();
        metrics.tree_size.set(size as i64);
        tracing::info!(
            tree_size = size,
            checkpoint = latest.tree_size,
            "ledger loaded"
        );
        let published = if witness_quorum == 0 {
            latest.clone()
        } else {
            SignedCheckpoint {
                tree_size: 0,
                root_hash: tree::empty_root(),
                note: String::new(),
            }
        };
        let service = Arc::new(Self {
            pool,
            edge: RwLock::new(Arc::new(edge)),
            tile_cache: Mutex::new(TileCache::new(TILE_CACHE_TILES)),
            signer,
            signed: watch::Sender::new(latest.clone()),
            latest: RwLock::new(latest),
            signing: tokio::sync::Mutex::new(()),
            metrics,
            published: watch::Sender::new(published),
            witness_quorum,
        });
        if needs_first {
            service.sign_current(true).await?;
        }
        Ok(service)
    }

    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The tree's right edge as integrated so far.
    pub fn edge(&self) -> Arc<Edge> {
        self.edge.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Number of leaves integrated so far.
    pub fn size(&self) -> u64 {
        self.edge().size()
    }

    /// Size and root of the tree as integrated so far.
    pub fn head(&self) -> (u64, Hash) {
        let edge = self.edge();
        (edge.size(), edge.root())
    }

    /// Moves the edge forward (never back: a slower task may finish with an older one).
    fn advance(&self, edge: Edge) -> u64 {
        let mut current = self.edge.write().unwrap_or_else(|e| e.into_inner());
        if edge.size() > current.size() {
            *current = Arc::new(edge);
        }
        let size = current.size();
        self.metrics.tree_size.set(size as i64);
        size
    }

    /// The published checkpoint: what is served and what proofs are given against (with
    /// witnesses, the newest one they cosigned; its note carries their cosignatures).
    pub fn latest(&self) -> SignedCheckpoint {
        self.published.borrow().clone()
    }

    /// The newest signed checkpoint, published or not.
    pub fn latest_signed(&self) -> SignedCheckpoint {
        self.latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Signed checkpoints as they come (the witnessing task submits each to the witnesses).
    pub fn subscribe_signed(&self) -> watch::Receiver<SignedCheckpoint> {
        self.signed.subscribe()
    }

    /// Cosignatures a checkpoint needs before it is published.
    pub fn witness_quorum(&self) -> usize {
        self.witness_quorum
    }

    /// Publishes a checkpoint (with its cosignature lines) unless a larger one already is.
    pub fn publish(&self, checkpoint: SignedCheckpoint) -> bool {
        self.published.send_if_modified(|current| {
            let newer = checkpoint.tree_size > current.tree_size
                || current.note.is_empty()
                || (checkpoint.tree_size == current.tree_size && checkpoint.note != current.note);
            if newer {
                *current = checkpoint;
            }
            newer
        })
    }

    /// Appends events (`payload` is the exact JSON received; it becomes the leaf data).
    pub async fn append(
        &self,
        events: &[(String, AccessEvent)],
    ) -> Result<Vec<Appended>, LedgerError> {
        let batch: Vec<NewLeaf> = events
            .iter()
            .map(|(payload, event)| NewLeaf {
                event_id: event.id,
                leaf_hash: tree::leaf_hash(payload.as_bytes()).to_vec(),
                payload: payload.clone(),
                patient_ref: event.patient.clone(),
                actor_id: event.actor.id.clone(),
                time: event.time,
                action: event.action,
                outcome: event.outcome,
                actor_practitioner: event.actor.practitioner.clone(),
            })
            .collect();
        let mut conn = self.pool.get().await?;
        let (outcomes, edge) =
            storage::append(&mut conn, &batch, || Edge::clone(&self.edge())).await?;
        drop(conn);
        self.advance(edge);
        let new = outcomes
            .iter()
            .filter(|o| matches!(o, Appended::New(_)))
            .count() as u64;
        self.metrics.appends.inc_by(new);
        self.metrics.duplicates.inc_by(outcomes.len() as u64 - new);
        Ok(outcomes)
    }

    /// Integrates what other writers stored since: builds missing tiles (leaves from a writer
    /// of the version before tiles) and moves the edge to the stored size. Two cheap queries
    /// when nothing changed.
    pub async fn catch_up(&self) -> Result<u64, LedgerError> {
        let mut conn = self.pool.get().await?;
        let stored = tile_storage::leaf_count(&mut conn).await?;
        if stored <= self.size() {
            return Ok(self.size());
        }
        let mut tiled = tile_storage::tiled_size(&mut conn).await?;
        if tiled < stored {
            tile_storage::integrate_untiled(&mut conn).await?;
            tiled = tile_storage::tiled_size(&mut conn).await?;
        }
        if tiled <= self.size() {
            return Ok(self.size());
        }
        let edge = tile_storage::load_edge(&mut conn, tiled).await?;
        drop(conn);
        Ok(self.advance(edge))
    }

    /// Runs `compute` over the tiles of the tree of `size` leaves: a first pass lists the
    /// nodes it reads, their tiles come from the edge, the cache or one query, then the real
    /// pass. `compute` also gets the tree's root at `size` when it is the edge's (computed once
    /// per edge). Sizes beyond the integrated tree are caught up first, then 404.
    async fn with_tiles<T>(
        &self,
        size: u64,
        compute: impl Fn(&dyn HashSource, Option<Hash>) -> Result<T, TreeError>,
    ) -> Result<T, LedgerError> {
        if size > self.size() && self.catch_up().await? < size {
            return Err(LedgerError::NotFound(format!(
                "the log has fewer than {size} entries"
            )));
        }
        let edge = self.edge();
        let known_root = (edge.size() == size).then(|| edge.root());
        let recorder = NodeRecorder::new();
        compute(&recorder, known_root).map_err(tree_error)?;
        let wanted: BTreeSet<TileId> = recorder
            .into_nodes()
            .into_iter()
            .map(|node| tile_of(node).0)
            .filter(|id| edge.partial_tile(id.level).map(|(edge_id, _)| edge_id) != Some(*id))
            .collect();
        let mut set = TileSet {
            tiles: Default::default(),
            edge: edge.clone(),
        };
        let mut missing = Vec::new();
        {
            let mut cache = self.tile_cache.lock().unwrap_or_else(|e| e.into_inner());
            for id in wanted {
                match cache.get(id) {
                    Some(tile) => {
                        set.tiles.insert(id, tile);
                    }
                    None => missing.push(id),
                }
            }
        }
        if !missing.is_empty() {
            let mut conn = self.pool.get().await?;
            let fetched = tile_storage::fetch_tiles(&mut conn, &missing).await?;
            drop(conn);
            let mut cache = self.tile_cache.lock().unwrap_or_else(|e| e.into_inner());
            for (id, tile) in fetched {
                cache.insert(id, tile.clone());
                set.tiles.insert(id, tile);
            }
        }
        compute(&set, known_root).map_err(tree_error)
    }

    /// The stored hashes of tile `id`: the edge's own for its partial tiles, else the cache or
    /// the database. `None` when the tile does not exist (yet).
    pub async fn tile(&self, id: TileId) -> Result<Option<Arc<Vec<Hash>>>, LedgerError> {
        let edge = self.edge();
        if let Some((edge_id, entries)) = edge.partial_tile(id.level) {
            if edge_id == id {
                return Ok(Some(Arc::new(entries.to_vec())));
            }
        }
        if let Some(tile) = self
            .tile_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(Some(tile));
        }
        let mut conn = self.pool.get().await?;
        let tile = tile_storage::fetch_tiles(&mut conn, &[id])
            .await?
            .remove(&id);
        if let Some(tile) = &tile {
            self.tile_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, tile.clone());
        }
        Ok(tile)
    }

    /// The root of the tree when it held `size` leaves.
    pub async fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        self.with_tiles(size, |source, known| match known {
            Some(root) => Ok(root),
            None => tree::root_at(source, size),
        })
        .await
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves, with the leaf's hash
    /// and that tree's root.
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<InclusionProof, LedgerError> {
        let mut proofs = self.inclusion_proofs(&[index], size).await?;
        proofs
            .pop()
            .ok_or_else(|| LedgerError::unexpected("no proof computed"))
    }

    /// Inclusion proofs of several leaves in the tree of `size` leaves, in the order asked,
    /// from one read of the tiles.
    pub async fn inclusion_proofs(
        &self,
        indices: &[u64],
        size: u64,
    ) -> Result<Vec<InclusionProof>, LedgerError> {
        self.with_tiles(size, |source, known| {
            let root = match known {
                Some(root) => root,
                None => tree::root_at(source, size)?,
            };
            indices
                .iter()
                .map(|&index| {
                    let leaf_hash = source
                        .node(Node { height: 0, index })
                        .ok_or(TreeError::IndexOutOfRange { index, size })?;
                    Ok(InclusionProof {
                        proof: tree::inclusion_proof(source, index, size)?,
                        leaf_hash,
                        root,
                    })
                })
                .collect()
        })
        .await
    }

    /// The consistency proof between the trees of `first` and `second` leaves
    /// (`0 < first <= second`), with both roots.
    pub async fn consistency(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, LedgerError> {
        if first == 0 || first > second {
            return Err(LedgerError::Validation(
                "a consistency proof needs 0 < first <= second".into(),
            ));
        }
        self.with_tiles(second, |source, known| {
            Ok(ConsistencyProof {
                proof: tree::consistency_proof(source, first, second)?,
                first_root: tree::root_at(source, first)?,
                second_root: match known {
                    Some(root) => root,
                    None => tree::root_at(source, second)?,
                },
            })
        })
        .await
    }

    /// The consistency proof between the trees of `first` and `second` leaves.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, LedgerError> {
        Ok(self.consistency(first, second).await?.proof)
    }

    /// Signs a checkpoint of the current tree when it grew since the latest one (or `force`).
    pub async fn sign_current(&self, force: bool) -> Result<SignedCheckpoint, LedgerError> {
        let _guard = self.signing.lock().await;
        let latest = self.latest_signed();
        let (size, root) = self.head();
        if size <= latest.tree_size && !force {
            return Ok(latest);
        }
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_string(),
            tree_size: size,
            root_hash: root,
        };
        let note = self.signer.sign_checkpoint(&checkpoint)?;
        let mut conn = self.pool.get().await?;
        let stored = storage::store_checkpoint(
            &mut conn,
            &CheckpointRow {
                tree_size: to_i64(size)?,
                root_hash: root.to_vec(),
                note,
                signed_at: chrono::Utc::now(),
            },
        )
        .await?;
        if stored.root_hash != root {
            return Err(LedgerError::unexpected(format!(
                "a different root was already signed at size {size}"
            )));
        }
        self.metrics.checkpoints_signed.inc();
        let signed = SignedCheckpoint {
            tree_size: size,
            root_hash: root,
            note: stored.note,
        };
        let mut latest = self.latest.write().unwrap_or_else(|e| e.into_inner());
        if signed.tree_size >= latest.tree_size {
            *latest = signed.clone();
            drop(latest);
            self.signed.send_replace(signed.clone());
            if self.witness_quorum == 0 {
                self.publish(signed.clone());
            }
        }
        tracing::debug!(tree_size = size, "checkpoint signed");
        Ok(signed)
    }

    /// The published checkpoint if it covers `size` leaves, or a freshly signed one. With
    /// witnesses, the fresh one is published only once cosigned: this waits up to
    /// [`PUBLICATION_WAIT`] for that and then answers the newest published checkpoint, which
    /// may not cover `size` (callers use its size, never `size`).
    pub async fn checkpoint_covering(&self, size: u64) -> Result<SignedCheckpoint, LedgerError> {
        let latest = self.latest();
        if latest.tree_size >= size {
            return Ok(latest);
        }
        if self.size() < size {
            self.catch_up().await?;
        }
        let signed = self.sign_current(false).await?;
        if signed.tree_size < size {
            return Err(LedgerError::NotFound(format!(
                "the log has fewer than {size} entries"
            )));
        }
        if self.witness_quorum == 0 {
            return Ok(signed);
        }
        let mut published = self.published.subscribe();
        let _ = tokio::time::timeout(
            PUBLICATION_WAIT,
            published.wait_for(|p| p.tree_size >= size),
        )
        .await;
        Ok(self.latest())
    }
}
