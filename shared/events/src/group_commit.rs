//! Group commit of outbox rows written outside any transaction (the access events of reads and
//! searches). Each such write used to be its own statement and its own commit: one round trip
//! and one WAL flush per request. Here concurrent requests hand their rows to a few writer
//! tasks; a writer takes every request waiting (up to [`MAX_ROWS`] rows), inserts them in one
//! statement and one commit, and only then answers each of them. The guarantee is unchanged:
//! a caller's rows are durable in PostgreSQL before its `write` returns `Ok`, and a failed
//! commit fails every request of the batch. The wait is bounded by the batch in flight:
//! nothing waits for a batch to fill.
//!
//! The writers have a pool of their own ([`WRITERS`] connections): a request waiting for its
//! event holds a connection of the service's pool, and writers drawing on that pool would
//! wait for connections held by the requests waiting for them.

use std::sync::Arc;

use custodian_database::Pool;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use crate::{
    outbox::{self, Relay},
    EventError,
};

/// The most rows one statement inserts (three parameters each, far below PostgreSQL's 65,535).
pub const MAX_ROWS: usize = 500;
/// Writers, and the size of their pool: while one batch commits, the next gathers.
pub const WRITERS: usize = 2;
/// Requests that may wait for a writer before `write` itself waits (back-pressure).
const QUEUE: usize = 4096;

/// One outbox row: stream, event id, payload.
pub type OutboxRow = (String, Uuid, serde_json::Value);

struct Request {
    rows: Vec<OutboxRow>,
    done: oneshot::Sender<Result<(), String>>,
}

/// A handle to the writers (cheap to clone). The writers stop when every handle is gone.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Request>,
}

impl GroupCommit {
    /// Starts the writers on the current Tokio runtime. They insert with connections of
    /// `writers` (a pool of their own, of [`WRITERS`] connections) and wake the relay after
    /// each commit.
    pub fn start(writers: Pool, relay: Relay) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(
                writers.clone(),
                relay.clone(),
                receiver.clone(),
            ));
        }
        Self { queue }
    }

    /// Inserts `rows` (ignoring event ids already in the outbox) and returns once they are
    /// committed.
    pub async fn write(&self, rows: Vec<OutboxRow>) -> Result<(), EventError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Request { rows, done })
            .await
            .map_err(|_| EventError::Database("the outbox writers have stopped".into()))?;
        committed
            .await
            .map_err(|_| EventError::Database("an outbox writer stopped mid-batch".into()))?
            .map_err(EventError::Database)
    }
}

/// One writer: takes what is waiting, commits it, answers, and again.
async fn write_batches(pool: Pool, relay: Relay, receiver: Arc<Mutex<mpsc::Receiver<Request>>>) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut rows = first.rows.len();
            let mut batch = vec![first];
            while rows < MAX_ROWS {
                match receiver.try_recv() {
                    Ok(next) => {
                        rows += next.rows.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        let (rows, answers): (Vec<_>, Vec<_>) = batch.into_iter().map(|r| (r.rows, r.done)).unzip();
        let rows: Vec<OutboxRow> = rows.into_iter().flatten().collect();
        relay.observe_group_commit(rows.len());
        let result = insert(&pool, &rows).await;
        if result.is_ok() {
            relay.wake();
        } else if let Err(e) = &result {
            tracing::warn!(error = %e, rows = rows.len(), "outbox: a group commit failed");
        }
        for answer in answers {
            // A caller that went away (its request was cancelled) needs no answer.
            let _ = answer.send(result.clone());
        }
    }
}

async fn insert(pool: &Pool, rows: &[OutboxRow]) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    outbox::enqueue_many(&mut conn, rows)
        .await
        .map_err(|e| e.to_string())
}
