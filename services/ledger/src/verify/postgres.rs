//! The log as stored in PostgreSQL: the `leaves` and `checkpoints` tables, read in pages by
//! key (never OFFSET), through the same queries the service uses.

use diesel_async::AsyncPgConnection;

use super::{Source, SourceCheckpoint, SourceError, SourceLeaf};
use crate::storage;

/// Leaves per query: large enough that round trips do not dominate, small enough to bound
/// memory (about 10 MB of event JSON).
pub const LEAF_PAGE: i64 = 20_000;
/// Checkpoints per query.
pub const CHECKPOINT_PAGE: i64 = 1_000;

pub struct PgSource<'a> {
    conn: &'a mut AsyncPgConnection,
    label: String,
}

impl<'a> PgSource<'a> {
    /// `label` names the database in the report; it must hold no credentials.
    pub fn new(conn: &'a mut AsyncPgConnection, label: impl Into<String>) -> Self {
        Self {
            conn,
            label: label.into(),
        }
    }
}

fn database_error(e: diesel::result::Error) -> SourceError {
    SourceError(format!("database: {e}"))
}

fn to_i64(n: u64) -> Result<i64, SourceError> {
    i64::try_from(n).map_err(|_| SourceError(format!("{n} is out of range")))
}

fn to_u64(n: i64) -> Result<u64, SourceError> {
    // The schema's CHECK constraints keep stored sizes and indices non-negative.
    u64::try_from(n).map_err(|_| SourceError(format!("a negative index {n} is stored")))
}

impl Source for PgSource<'_> {
    fn describe(&self) -> String {
        format!("PostgreSQL ({})", self.label)
    }

    async fn checkpoints_after(
        &mut self,
        after: Option<u64>,
    ) -> Result<Vec<SourceCheckpoint>, SourceError> {
        let after = after.map(to_i64).transpose()?;
        storage::checkpoints_after(self.conn, after, CHECKPOINT_PAGE)
            .await
            .map_err(database_error)?
            .into_iter()
            .map(|row| {
                Ok(SourceCheckpoint {
                    tree_size: to_u64(row.tree_size)?,
                    root_hash: Some(row.root_hash),
                    note: row.note,
                })
            })
            .collect()
    }

    async fn leaves_from(&mut self, start: u64) -> Result<Vec<SourceLeaf>, SourceError> {
        storage::leaves_from(self.conn, to_i64(start)?, LEAF_PAGE)
            .await
            .map_err(database_error)?
            .into_iter()
            .map(|(idx, leaf_hash, payload)| {
                Ok(SourceLeaf {
                    index: to_u64(idx)?,
                    payload,
                    leaf_hash,
                })
            })
            .collect()
    }

    /// PostgreSQL holds leaves, not proofs: consistency follows from the roots.
    async fn consistency_proof(
        &mut self,
        _first: u64,
        _second: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, SourceError> {
        Ok(None)
    }
}
