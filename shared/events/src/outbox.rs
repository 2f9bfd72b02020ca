//! The transactional outbox. Producers call [`enqueue`] inside the transaction of the change
//! (or, for reads, before answering): once the caller has its 2xx, the event is durable in
//! PostgreSQL. The [`Relay`] moves events to Redis in order and deletes them only after Redis
//! acknowledged the XADDs, so a Redis outage delays events and never loses them. A crash between
//! XADD and the delete republishes a batch: consumers are idempotent by event id.
//!
//! A relay given the producer's key ([`Relay::with_signer`]) signs every message it publishes
//! (fields `producer`, `kid`, `sig`; see [`crate::signing`]). It signs at publication, over the
//! exact bytes it XADDs: the outbox row is the producer's own data, the hop through Redis is
//! what consumers need proof for.

use std::{sync::Arc, time::Duration};

use custodian_database::Pool;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use prometheus::{IntCounterVec, IntGauge, Opts};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{signing::StreamSigner, EventError};

diesel::table! {
    event_outbox (seq) {
        seq -> Int8,
        event_id -> Uuid,
        stream -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

const BATCH: i64 = 500;

impl From<diesel::result::Error> for EventError {
    fn from(e: diesel::result::Error) -> Self {
        EventError::Database(e.to_string())
    }
}

/// Writes one event to the outbox on `conn` (inside the caller's transaction, if any).
/// Enqueuing the same event id twice is a no-op.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    stream: &str,
    event_id: Uuid,
    payload: &serde_json::Value,
) -> QueryResult<()> {
    diesel::insert_into(event_outbox::table)
        .values((
            event_outbox::event_id.eq(event_id),
            event_outbox::stream.eq(stream),
            event_outbox::payload.eq(payload),
        ))
        .on_conflict(event_outbox::event_id)
        .do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}

/// Writes several events in one statement.
pub async fn enqueue_many(
    conn: &mut AsyncPgConnection,
    events: &[(String, Uuid, serde_json::Value)],
) -> QueryResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = events
        .iter()
        .map(|(stream, id, payload)| {
            (
                event_outbox::event_id.eq(*id),
                event_outbox::stream.eq(stream.as_str()),
                event_outbox::payload.eq(payload),
            )
        })
        .collect();
    diesel::insert_into(event_outbox::table)
        .values(rows)
        .on_conflict(event_outbox::event_id)
        .do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}

/// Publishes outbox rows to Redis streams.
#[derive(Clone)]
pub struct Relay {
    pool: Pool,
    redis: redis::aio::ConnectionManager,
    wake: Arc<Notify>,
    published: IntCounterVec,
    backlog: IntGauge,
    signer: Option<Arc<StreamSigner>>,
}

impl Relay {
    // The two metrics are built from constant, valid names, help and label names: the
    // `expect`s cannot fail.
    #[allow(clippy::expect_used)]
    pub fn new(pool: Pool, redis: redis::aio::ConnectionManager) -> Self {
        Self {
            pool,
            redis,
            wake: Arc::new(Notify::new()),
            published: IntCounterVec::new(
                Opts::new(
                    "events_published_total",
                    "Events moved from the outbox to Redis",
                ),
                &["stream"],
            )
            .expect("static metric options are valid"),
            backlog: IntGauge::new(
                "outbox_backlog",
                "Events in the last batch read from the outbox",
            )
            .expect("static metric options are valid"),
            signer: None,
        }
    }

    /// Signs every message with the producer's key. Producers of authorisation streams
    /// (consent, identity, anomaly) must: consumers refuse their unsigned messages.
    pub fn with_signer(mut self, signer: StreamSigner) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// Prometheus collectors for the service's registry.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.published.clone()),
            Box::new(self.backlog.clone()),
        ]
    }

    /// Call after committing an enqueue so the relay publishes at once instead of at its next tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes until `token` is cancelled, then makes one last attempt to drain.
    pub async fn run(self, token: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.publish_batch().await {
                Ok(n) => {
                    backoff = Duration::from_millis(100);
                    if n as i64 == BATCH {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay could not publish; retrying");
                    tokio::select! {
                        _ = token.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            tokio::select! {
                _ = token.cancelled() => {
                    let _ = self.publish_batch().await;
                    break;
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Moves up to one batch; returns how many events were published.
    pub async fn publish_batch(&self) -> Result<usize, EventError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| EventError::Database(e.to_string()))?;
        let mut redis = self.redis.clone();
        let published = self.published.clone();
        let backlog = self.backlog.clone();
        let signer = self.signer.clone();
        conn.transaction::<usize, EventError, _>(async move |conn| {
            let rows: Vec<(i64, Uuid, String, serde_json::Value)> = event_outbox::table
                .select((
                    event_outbox::seq,
                    event_outbox::event_id,
                    event_outbox::stream,
                    event_outbox::payload,
                ))
                .order(event_outbox::seq)
                .limit(BATCH)
                .for_update()
                .skip_locked()
                .load(conn)
                .await?;
            backlog.set(rows.len() as i64);
            if rows.is_empty() {
                return Ok(0);
            }
            let mut pipe = redis::pipe();
            for (_, id, stream, payload) in &rows {
                let id = id.to_string();
                let payload = payload.to_string();
                let command = pipe.cmd("XADD");
                command.arg(stream).arg("*");
                if let Some(signer) = &signer {
                    let sig = signer
                        .sign(stream, &id, payload.as_bytes())
                        .map_err(|e| EventError::Signing(e.to_string()))?;
                    command
                        .arg(crate::signing::PRODUCER_FIELD)
                        .arg(signer.producer())
                        .arg(crate::signing::KEY_ID_FIELD)
                        .arg(signer.kid())
                        .arg(crate::signing::SIGNATURE_FIELD)
                        .arg(sig);
                }
                command.arg("id").arg(id).arg("event").arg(payload).ignore();
            }
            pipe.query_async::<()>(&mut redis).await?;
            let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
            diesel::delete(event_outbox::table.filter(event_outbox::seq.eq_any(&seqs)))
                .execute(conn)
                .await?;
            for (_, _, stream, _) in &rows {
                published.with_label_values(&[stream]).inc();
            }
            Ok(rows.len())
        })
        .await
    }
}
