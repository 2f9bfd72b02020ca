//! The transactional outbox. Producers call [`enqueue`] inside the transaction of the change
//! (or, for reads, before answering): once the caller has its 2xx, the event is durable in
//! PostgreSQL. The [`Relay`] moves events to Redis in order and marks them published only after
//! Redis acknowledged the XADDs, so a Redis outage delays events and never loses them. A crash
//! between XADD and the mark republishes a batch: consumers are idempotent by event id.
//!
//! A published event is kept until every consumer group its stream must reach
//! ([`crate::streams::groups_of`]) has acknowledged it. Meanwhile the relay checks that Redis
//! still holds the newest event it published on each stream; when it does not (Redis restarted
//! empty, or lost its last writes in a crash), every event kept for that stream is published
//! again. So losing Redis costs no event: at worst consumers see some twice.
//!
//! A relay given the producer's key ([`Relay::with_signer`]) signs every message it publishes
//! (fields `producer`, `kid`, `sig`; see [`crate::signing`]). It signs at publication, over the
//! exact bytes it XADDs: the outbox row is the producer's own data, the hop through Redis is
//! what consumers need proof for.

use std::{sync::Arc, time::Duration};

use custodian_database::{prepared, Pool};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};
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
        published_at -> Nullable<Timestamptz>,
        stream_ms -> Nullable<Int8>,
        stream_seq -> Nullable<Int8>,
    }
}

const BATCH: i64 = 500;

/// How often the relay forgets what every group acknowledged and checks Redis still has the rest.
const KEEP_EVERY: Duration = Duration::from_secs(1);

/// A Redis stream id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamPosition {
    pub ms: i64,
    pub seq: i64,
}

impl StreamPosition {
    pub fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for StreamPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl StreamPosition {
    /// The smallest id after this one.
    fn next(self) -> Self {
        Self {
            ms: self.ms,
            seq: self.seq.saturating_add(1),
        }
    }
}

/// What the consumer groups a stream must reach have acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acknowledged {
    /// A group the stream must reach does not exist (yet, or any more): keep everything.
    Nothing,
    /// Every message before this id.
    Before(StreamPosition),
}

/// Published events of streams no group must reach (read by replicas' tails, which start from a
/// snapshot) are kept this long, so that a Redis that lost them gives them to the tails again.
const KEEP_TAILED: Duration = Duration::from_secs(300);

/// The newest and the oldest kept event of a stream (`$1`): the newest is gone when Redis lost
/// its last writes; the oldest, when it came back empty (even if this or another producer has
/// published to it since).
const KEPT_ENDS: &str = "(SELECT stream_ms AS ms, stream_seq AS seq FROM event_outbox \
     WHERE stream = $1 AND published_at IS NOT NULL ORDER BY stream_ms DESC, stream_seq DESC LIMIT 1) \
     UNION ALL (SELECT stream_ms, stream_seq FROM event_outbox \
     WHERE stream = $1 AND published_at IS NOT NULL ORDER BY stream_ms, stream_seq LIMIT 1)";

/// The streams with kept events, one index probe per stream (a skip scan of
/// `event_outbox_published`): `SELECT DISTINCT stream` read every kept row, 60 ms a second at
/// 100,000 kept, in the relay's loop.
const KEPT_STREAMS: &str = "WITH RECURSIVE s(stream) AS ( \
     (SELECT stream FROM event_outbox WHERE published_at IS NOT NULL ORDER BY stream LIMIT 1) \
     UNION ALL \
     SELECT (SELECT o.stream FROM event_outbox o WHERE o.published_at IS NOT NULL \
             AND o.stream > s.stream ORDER BY o.stream LIMIT 1) FROM s WHERE s.stream IS NOT NULL) \
     SELECT stream FROM s WHERE stream IS NOT NULL";

#[derive(diesel::QueryableByName)]
struct KeptStream {
    #[diesel(sql_type = diesel::sql_types::Text)]
    stream: String,
}

/// The `outbox_kept_events` gauge counts every kept row: recounted at most this often (a
/// count is tens of milliseconds at 100,000 kept, and the check runs every second).
const COUNT_KEPT_EVERY: Duration = Duration::from_secs(15);

#[derive(diesel::QueryableByName)]
struct KeptEnd {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ms: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
}

/// Up to where every group in `groups` has acknowledged `stream`: a group with nothing pending
/// has acknowledged all it was given; one with pending messages, everything before the oldest.
async fn acknowledged(
    redis: &mut redis::aio::ConnectionManager,
    stream: &str,
    groups: &[&str],
) -> Result<Acknowledged, EventError> {
    use redis::{
        streams::{StreamInfoGroupsReply, StreamPendingReply},
        AsyncCommands,
    };
    let info: StreamInfoGroupsReply = match redis.xinfo_groups(stream).await {
        Ok(info) => info,
        Err(e) if e.to_string().contains("no such key") => return Ok(Acknowledged::Nothing),
        Err(e) => return Err(e.into()),
    };
    let mut upto: Option<StreamPosition> = None;
    for name in groups {
        let Some(group) = info.groups.iter().find(|g| g.name == *name) else {
            return Ok(Acknowledged::Nothing);
        };
        let bound = if group.pending == 0 {
            StreamPosition::parse(&group.last_delivered_id).map(StreamPosition::next)
        } else {
            match redis.xpending(stream, *name).await? {
                StreamPendingReply::Data(d) => StreamPosition::parse(&d.start_id),
                _ => None,
            }
        };
        let Some(bound) = bound else {
            return Ok(Acknowledged::Nothing);
        };
        upto = Some(upto.map_or(bound, |u| u.min(bound)));
    }
    Ok(upto.map_or(Acknowledged::Nothing, Acknowledged::Before))
}

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
    let (mut ids, mut streams, mut payloads) = (
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
    );
    for (stream, id, payload) in events {
        ids.push(*id);
        streams.push(stream.as_str());
        payloads.push(payload);
    }
    // Arrays, not a VALUES row per event: one prepared statement for any number of events.
    // `WITH ORDINALITY ... ORDER BY` keeps the events' order in `seq`, which the relay follows.
    prepared(
        "INSERT INTO event_outbox (event_id, stream, payload) \
         SELECT e.id, e.stream, e.payload \
         FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS e(id, stream, payload, n) \
         ORDER BY e.n \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(streams)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Jsonb>, _>(payloads)
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
    kept: IntGauge,
    republished: IntCounterVec,
    /// Rows per group commit ([`crate::group_commit`]).
    group_commit_rows: Histogram,
    signer: Option<Arc<StreamSigner>>,
    /// When `kept` was last counted (None: never).
    kept_counted: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Relay {
    /// Whether the kept gauge is due a recount (and, if so, notes that it is being recounted).
    fn count_kept_due(&self) -> bool {
        let Ok(mut last) = self.kept_counted.lock() else {
            return true;
        };
        let due = last.is_none_or(|at| at.elapsed() >= COUNT_KEPT_EVERY);
        if due {
            *last = Some(std::time::Instant::now());
        }
        due
    }

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
            kept: IntGauge::new(
                "outbox_kept_events",
                "Published events kept until every consumer group of their stream acknowledged them",
            )
            .expect("static metric options are valid"),
            republished: IntCounterVec::new(
                Opts::new(
                    "events_republished_total",
                    "Events published again because Redis had lost them",
                ),
                &["stream"],
            )
            .expect("static metric options are valid"),
            group_commit_rows: Histogram::with_opts(
                HistogramOpts::new(
                    "outbox_group_commit_rows",
                    "Outbox rows written by one group commit (events of concurrent requests)",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 500.0]),
            )
            .expect("static metric options are valid"),
            signer: None,
            kept_counted: Arc::default(),
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
            Box::new(self.kept.clone()),
            Box::new(self.republished.clone()),
            Box::new(self.group_commit_rows.clone()),
        ]
    }

    pub(crate) fn observe_group_commit(&self, rows: usize) {
        self.group_commit_rows.observe(rows as f64);
    }

    /// Call after committing an enqueue so the relay publishes at once instead of at its next tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes until `token` is cancelled, then makes one last attempt to drain.
    pub async fn run(self, token: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut next_keep = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_keep {
                next_keep = tokio::time::Instant::now() + KEEP_EVERY;
                if let Err(e) = self.keep().await {
                    tracing::warn!(error = %e, "outbox: published events not checked against Redis; retrying");
                }
            }
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

    /// Forgets published events every group of their stream acknowledged, and publishes again
    /// those of a stream on which Redis no longer holds the newest one published.
    pub async fn keep(&self) -> Result<(), EventError> {
        use diesel::sql_types::{BigInt, Text};
        use redis::{streams::StreamRangeReply, AsyncCommands};
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| EventError::Database(e.to_string()))?;
        let mut redis = self.redis.clone();
        let streams: Vec<String> = prepared(KEPT_STREAMS)
            .load::<KeptStream>(&mut conn)
            .await?
            .into_iter()
            .map(|s| s.stream)
            .collect();
        for stream in streams {
            let ends: Vec<KeptEnd> = prepared(KEPT_ENDS)
                .bind::<Text, _>(&stream)
                .load(&mut conn)
                .await?;
            let mut lost = false;
            for end in ends {
                let id = StreamPosition {
                    ms: end.ms,
                    seq: end.seq,
                }
                .to_string();
                let there: StreamRangeReply = redis.xrange(&stream, &id, &id).await?;
                lost |= there.ids.is_empty();
            }
            if lost {
                let again = diesel::update(
                    event_outbox::table
                        .filter(event_outbox::stream.eq(&stream))
                        .filter(event_outbox::published_at.is_not_null()),
                )
                .set((
                    event_outbox::published_at.eq(None::<chrono::DateTime<chrono::Utc>>),
                    event_outbox::stream_ms.eq(None::<i64>),
                    event_outbox::stream_seq.eq(None::<i64>),
                ))
                .execute(&mut conn)
                .await?;
                let label = crate::signing::stream_label(&stream);
                tracing::warn!(
                    stream = label,
                    events = again,
                    "Redis lost events this service published; publishing them again"
                );
                self.republished
                    .with_label_values(&[label])
                    .inc_by(again as u64);
                self.wake();
                continue;
            }
            let groups = crate::streams::groups_of(&stream);
            if groups.is_empty() {
                prepared(
                    "DELETE FROM event_outbox WHERE stream = $1 AND published_at < now() - make_interval(secs => $2)",
                )
                .bind::<Text, _>(&stream)
                .bind::<BigInt, _>(KEEP_TAILED.as_secs() as i64)
                .execute(&mut conn)
                .await?;
                continue;
            }
            if let Acknowledged::Before(upto) = acknowledged(&mut redis, &stream, groups).await? {
                prepared(
                    "DELETE FROM event_outbox WHERE stream = $1 AND published_at IS NOT NULL \
                     AND (stream_ms, stream_seq) < ($2, $3)",
                )
                .bind::<Text, _>(&stream)
                .bind::<BigInt, _>(upto.ms)
                .bind::<BigInt, _>(upto.seq)
                .execute(&mut conn)
                .await?;
            }
        }
        if self.count_kept_due() {
            let kept: i64 = event_outbox::table
                .filter(event_outbox::published_at.is_not_null())
                .count()
                .get_result(&mut conn)
                .await?;
            self.kept.set(kept);
        }
        Ok(())
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
        let republished = self.republished.clone();
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
                .filter(event_outbox::published_at.is_null())
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
                command.arg("id").arg(id).arg("event").arg(payload);
            }
            let positions: Vec<String> = pipe.query_async(&mut redis).await?;
            let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let mut ms = Vec::with_capacity(rows.len());
            let mut seq = Vec::with_capacity(rows.len());
            for position in &positions {
                let position = StreamPosition::parse(position).ok_or_else(|| {
                    EventError::Malformed(format!("XADD answered {position:?}, not a stream id"))
                })?;
                ms.push(position.ms);
                seq.push(position.seq);
            }
            prepared(
                // `seq = ANY($1)` gives the planner an index condition whatever it believes of
                // the table's size: with statistics from when the outbox was empty (a fresh
                // deployment, autovacuum off) it joined through a full walk of the primary key
                // per batch, 800 events/s at a million rows.
                "UPDATE event_outbox SET published_at = now(), stream_ms = p.ms, stream_seq = p.seq \
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS p(row_seq, ms, seq) \
                 WHERE event_outbox.seq = ANY($1) AND event_outbox.seq = p.row_seq",
            )
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&seqs)
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&ms)
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&seq)
            .execute(conn)
            .await?;
            for (_, _, stream, _) in &rows {
                // The stream's name without the deployment's prefix, as every stream metric.
                let label = crate::signing::stream_label(stream);
                published.with_label_values(&[label]).inc();
                // From its first publish on, the stream's republished series exists at 0, so
                // an alert on its increase sees the first republish.
                republished.with_label_values(&[label]);
            }
            Ok(rows.len())
        })
        .await
    }
}
