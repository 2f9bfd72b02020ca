//! Rewrites the search index of every stored resource when the code that extracts it changes
//! ([`INDEX_VERSION`]), in the background: searches keep answering meanwhile (a parameter
//! whose extraction changed may miss resources not yet rewritten, never show one the caller
//! may not see: access is not in the index). Resumable and shared by replicas through the
//! store's `search_index_versions` row ([`Reindex`]).

use std::collections::BTreeMap;

use custodian_fhir_search::{
    index::{IndexWrite, Reindex, ReindexPosition, INDEX_VERSION},
    Registry,
};
use diesel::{
    sql_types::{BigInt, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{crypto::RecordCipher, error::RecordsError, store};

/// Resources rewritten per transaction.
const BATCH: i64 = 200;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    resource_type: String,
    #[diesel(sql_type = Text)]
    resource_id: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

/// What one step did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Rewrote(usize),
    Done,
}

/// Rewrites the next batch: the resources after the recorded position, locked, their current
/// versions read and extracted again, the position advanced, all in one transaction.
pub async fn step(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    registry: &'static Registry,
) -> Result<Step, RecordsError> {
    conn.transaction::<Step, RecordsError, _>(async move |conn| {
        let (after_type, after_id) = match Reindex::lock(conn).await? {
            ReindexPosition::Done => return Ok(Step::Done),
            ReindexPosition::After(t, i) => (t, i),
        };
        // Locked, so a concurrent write of one of them waits (its own index rows are written
        // by the current code anyway).
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT resource_type, resource_id, version FROM resources \
             WHERE NOT deleted AND (resource_type, resource_id) > ($1, $2) \
             ORDER BY resource_type, resource_id LIMIT $3 FOR UPDATE",
        )
        .bind::<Text, _>(&after_type)
        .bind::<Text, _>(&after_id)
        .bind::<BigInt, _>(BATCH)
        .load(conn)
        .await?;
        let Some(last) = rows.last() else {
            Reindex::complete(conn).await?;
            return Ok(Step::Done);
        };
        let (last_type, last_id) = (last.resource_type.clone(), last.resource_id.clone());
        let mut by_type: BTreeMap<&str, Vec<(String, i64)>> = BTreeMap::new();
        for row in &rows {
            by_type
                .entry(row.resource_type.as_str())
                .or_default()
                .push((row.resource_id.clone(), row.version));
        }
        let mut write = IndexWrite::default();
        for (resource_type, wanted) in by_type {
            let bodies = store::current_bodies(conn, cipher, resource_type, &wanted).await?;
            for (id, _) in &wanted {
                // An unreadable body keeps its rows: better an index from older code than none.
                let Some(value) = bodies
                    .get(id)
                    .and_then(|json| serde_json::from_str::<Value>(json).ok())
                else {
                    tracing::error!("a stored version could not be read to reindex it");
                    continue;
                };
                write.replace(resource_type, id, &registry.extract(resource_type, &value));
            }
        }
        write.write(conn).await?;
        Reindex::advance(conn, &last_type, &last_id).await?;
        Ok(Step::Rewrote(rows.len()))
    })
    .await
}

/// Runs [`step`] until the index is current or the service stops; errors are retried after a
/// pause (the database may be restarting).
pub async fn run(
    pool: custodian_database::Pool,
    cipher: RecordCipher,
    registry: &'static Registry,
    stop: CancellationToken,
) {
    let mut rewritten = 0usize;
    while !stop.is_cancelled() {
        let result = match pool.get().await {
            Ok(mut conn) => step(&mut conn, &cipher, registry).await,
            Err(e) => Err(crate::error::pool_error(e)),
        };
        match result {
            Ok(Step::Done) => {
                if rewritten > 0 {
                    tracing::info!(rewritten, version = INDEX_VERSION, "search index rewritten");
                }
                return;
            }
            Ok(Step::Rewrote(n)) => {
                rewritten += n;
                if rewritten % 10_000 < n {
                    tracing::info!(
                        rewritten,
                        version = INDEX_VERSION,
                        "rewriting the search index"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reindexing paused");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                }
            }
        }
    }
}
