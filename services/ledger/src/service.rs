//! The ledger itself: the durable leaves (storage), the in-memory tree built from them (tree
//! math) and the latest signed checkpoint (signing), kept in step.
//!
//! Writes go to PostgreSQL first, which assigns the index; the in-memory tree then integrates
//! every leaf up to the stored ones, in index order ([`LedgerService::catch_up`]), so a leaf
//! appended by another replica is integrated too, and a crash between the two loses nothing.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use custodian_database::Pool;
use custodian_events::AccessEvent;
use prometheus::{IntCounter, IntGauge};

use crate::{
    domain::Checkpoint,
    error::LedgerError,
    signing::NoteSigner,
    storage::{self, Appended, CheckpointRow, NewLeaf},
    tree::{self, Hash, Tree},
};

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

pub struct LedgerService {
    pool: Pool,
    tree: RwLock<Tree>,
    signer: NoteSigner,
    latest: RwLock<SignedCheckpoint>,
    /// One signer at a time in this process (the database settles races between replicas).
    signing: tokio::sync::Mutex<()>,
    metrics: LedgerMetrics,
}

/// Leaves read per query when loading the tree or catching up.
const LOAD_PAGE: i64 = 100_000;

fn to_i64(n: u64) -> Result<i64, LedgerError> {
    i64::try_from(n).map_err(|_| LedgerError::Validation("number too large".into()))
}

fn hash_of(bytes: &[u8], what: &str) -> Result<Hash, LedgerError> {
    bytes
        .try_into()
        .map_err(|_| LedgerError::unexpected(format!("stored {what} is not 32 bytes")))
}

impl LedgerService {
    /// Loads the tree from the stored leaves and checks the latest stored checkpoint against
    /// it: a database whose leaves no longer match what was signed is refused.
    pub async fn open(
        pool: Pool,
        signer: NoteSigner,
        metrics: LedgerMetrics,
    ) -> Result<Arc<Self>, LedgerError> {
        let mut conn = pool.get().await?;
        let mut tree = Tree::new();
        loop {
            let rows =
                storage::leaf_hashes_from(&mut conn, to_i64(tree.size())?, LOAD_PAGE).await?;
            if rows.is_empty() {
                break;
            }
            for (idx, hash) in rows {
                if idx != tree.size() as i64 {
                    return Err(LedgerError::unexpected(format!(
                        "leaf indices have a gap at {}",
                        tree.size()
                    )));
                }
                tree.push_leaf_hash(hash_of(&hash, "leaf hash")?);
            }
        }
        let stored = storage::latest_checkpoint(&mut conn).await?;
        drop(conn);
        let latest = match stored {
            Some(row) => {
                let size = u64::try_from(row.tree_size).map_err(LedgerError::unexpected)?;
                let root = hash_of(&row.root_hash, "checkpoint root")?;
                match tree.root_at(size) {
                    Ok(r) if r == root => {}
                    _ => {
                        return Err(LedgerError::unexpected(format!(
                            "the stored leaves do not match the checkpoint signed at size {size}"
                        )))
                    }
                }
                SignedCheckpoint {
                    tree_size: size,
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
        let needs_first = latest.note.is_empty();
        metrics.tree_size.set(tree.size() as i64);
        tracing::info!(
            tree_size = tree.size(),
            checkpoint = latest.tree_size,
            "ledger loaded"
        );
        let service = Arc::new(Self {
            pool,
            tree: RwLock::new(tree),
            signer,
            latest: RwLock::new(latest),
            signing: tokio::sync::Mutex::new(()),
            metrics,
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

    /// The tree, for reading proofs.
    pub fn tree(&self) -> RwLockReadGuard<'_, Tree> {
        self.tree.read().unwrap_or_else(|e| e.into_inner())
    }

    fn tree_mut(&self) -> RwLockWriteGuard<'_, Tree> {
        self.tree.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest signed checkpoint.
    pub fn latest(&self) -> SignedCheckpoint {
        self.latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        let outcomes = storage::append(&mut conn, &batch).await?;
        let mut fast_path = true;
        {
            let mut tree = self.tree_mut();
            for (outcome, leaf) in outcomes.iter().zip(&batch) {
                match outcome {
                    Appended::New(idx) if fast_path && *idx == tree.size() as i64 => {
                        // The leaf hash was computed above: 32 bytes.
                        if let Ok(h) = <Hash>::try_from(leaf.leaf_hash.as_slice()) {
                            tree.push_leaf_hash(h);
                        }
                    }
                    Appended::New(_) => fast_path = false,
                    Appended::Duplicate(_) => {}
                }
            }
            self.metrics.tree_size.set(tree.size() as i64);
        }
        let new = outcomes
            .iter()
            .filter(|o| matches!(o, Appended::New(_)))
            .count() as u64;
        self.metrics.appends.inc_by(new);
        self.metrics.duplicates.inc_by(outcomes.len() as u64 - new);
        if !fast_path {
            // Another writer appended in between: integrate everything stored, in order.
            drop(conn);
            self.catch_up().await?;
        }
        Ok(outcomes)
    }

    /// Integrates into the tree every stored leaf it does not hold yet.
    pub async fn catch_up(&self) -> Result<u64, LedgerError> {
        let from = self.tree().size();
        let mut conn = self.pool.get().await?;
        let rows = storage::leaf_hashes_from(&mut conn, to_i64(from)?, LOAD_PAGE).await?;
        drop(conn);
        let mut tree = self.tree_mut();
        for (idx, hash) in rows {
            // Rows another task already integrated are skipped; a gap would be a bug.
            if idx == tree.size() as i64 {
                tree.push_leaf_hash(hash_of(&hash, "leaf hash")?);
            }
        }
        self.metrics.tree_size.set(tree.size() as i64);
        Ok(tree.size())
    }

    /// Signs a checkpoint of the current tree when it grew since the latest one (or `force`).
    pub async fn sign_current(&self, force: bool) -> Result<SignedCheckpoint, LedgerError> {
        let _guard = self.signing.lock().await;
        let latest = self.latest();
        let (size, root) = {
            let tree = self.tree();
            (tree.size(), tree.root())
        };
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
        }
        tracing::debug!(tree_size = size, "checkpoint signed");
        Ok(signed)
    }

    /// The latest checkpoint if it covers `size` leaves, or a freshly signed one.
    pub async fn checkpoint_covering(&self, size: u64) -> Result<SignedCheckpoint, LedgerError> {
        let latest = self.latest();
        if latest.tree_size >= size {
            return Ok(latest);
        }
        if self.tree().size() < size {
            self.catch_up().await?;
        }
        let signed = self.sign_current(false).await?;
        if signed.tree_size < size {
            return Err(LedgerError::NotFound(format!(
                "the log has fewer than {size} entries"
            )));
        }
        Ok(signed)
    }
}
