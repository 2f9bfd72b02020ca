//! Reading streams.
//!
//! [`GroupConsumer`]: one consumer of a consumer group (ledger, anomaly, identity). A message is
//! acknowledged only after its handler succeeded. What a member was given and never acknowledged
//! (it died in between) is claimed by a live member once idle for [`ClaimPolicy::min_idle`], so a
//! crash re-delivers instead of losing; a message delivered [`ClaimPolicy::max_deliveries`] times
//! goes to `<stream>:dead` instead of taking down the next consumer, as does one the handler
//! rejects as malformed. A group Redis lost is created again. Handlers are idempotent by event id.
//!
//! [`StreamTail`]: every replica reads every message (gateway deny lists, records' consent
//! replica); it keeps its position in memory and starts from a snapshot's stream id.
//!
//! Both verify a message's signature before any handler sees it, on the streams whose messages
//! are obeyed ([`Authority::of_stream`]: consent, identity, alerts), with the process's
//! [`Keyring::shared`] unless given another ([`GroupConsumer::trusting`]). A message without a
//! valid signature of a producer trusted for the stream is never handled: a group consumer
//! dead-letters and acknowledges it, a tail skips it; either way it is logged (without its
//! payload) and counted in `stream_messages_rejected_total{stream,reason}`.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use redis::{
    aio::ConnectionManager,
    streams::{
        StreamClaimReply, StreamId, StreamInfoConsumersReply, StreamInfoGroupsReply,
        StreamPendingCountReply, StreamPendingId, StreamReadReply,
    },
    AsyncCommands,
};
use tokio_util::sync::CancellationToken;

use crate::{
    signing::{self, stream_label, Authority, Keyring, Message, Rejection},
    streams::ClaimPolicy,
    EventError,
};

/// What a handler says about one message.
#[derive(Debug)]
pub enum HandlerError {
    /// A passing failure (database down): leave the message pending and retry it.
    Retry(String),
    /// The message can never be processed: dead-letter and acknowledge it.
    Reject(String),
}

/// Processes one message's `event` field.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, payload: &str) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Whether `handle` would act on `payload` at all. A [`StreamTail`] checks the signature
    /// only of messages its handler acts on and skips the others unread: ignoring a forged
    /// message is as safe as ignoring a genuine one, and a check costs about 0.1 ms of CPU
    /// (the relationships stream carries a care fact for every Encounter written, which the
    /// membership replicas ignore). Unsure: true.
    fn acts_on(&self, _payload: &str) -> bool {
        true
    }
}

/// A connection for blocking reads: a blocking XREAD must not share the multiplexed
/// connection other commands use, and needs a response timeout above its BLOCK time.
pub async fn blocking_connection(url: &str) -> Result<ConnectionManager, EventError> {
    Ok(crate::streams::connect_waiting(url, Duration::from_secs(30)).await?)
}

const BLOCK_MS: usize = 1000;
const BATCH: usize = 200;

/// Dead-letter streams keep at most about this many messages (forgeries must not fill Redis).
const DEAD_LETTER_MAXLEN: usize = 10_000;

fn payload_of(entry: &redis::streams::StreamId) -> Option<String> {
    entry.get::<String>("event")
}

/// Every rejection series of a signed stream this process reads exists from the start, at 0,
/// so an alert on its increase sees the first forged message.
fn expose_rejections(authority: Authority, stream: &str) {
    if authority == Authority::Unsigned {
        return;
    }
    if let Some(counter) = custodian_telemetry::metrics::stream_rejections() {
        for rejection in Rejection::ALL {
            counter.with_label_values(&[stream_label(stream), rejection.label()]);
        }
    }
}

/// Whether a message may be handled: its signature, when the stream's authority requires one.
/// A refusal is counted and logged, without the payload (it may be anything).
fn admit(
    keyring: &Keyring,
    authority: Authority,
    stream: &str,
    entry: &redis::streams::StreamId,
    payload: &str,
) -> Result<(), Rejection> {
    if authority == Authority::Unsigned {
        return Ok(());
    }
    let id = entry.get::<String>("id");
    let producer = entry.get::<String>(signing::PRODUCER_FIELD);
    let kid = entry.get::<String>(signing::KEY_ID_FIELD);
    let sig = entry.get::<String>(signing::SIGNATURE_FIELD);
    let verdict = keyring.verify(
        authority,
        stream,
        &Message {
            id: id.as_deref(),
            payload,
            producer: producer.as_deref(),
            kid: kid.as_deref(),
            sig: sig.as_deref(),
        },
    );
    if let Err(rejection) = verdict {
        if let Some(counter) = custodian_telemetry::metrics::stream_rejections() {
            counter
                .with_label_values(&[stream_label(stream), rejection.label()])
                .inc();
        }
        tracing::warn!(
            stream = stream_label(stream),
            message_id = %entry.id,
            reason = rejection.label(),
            "stream message refused: not signed by a producer trusted for this stream"
        );
    }
    verdict
}

pub struct GroupConsumer {
    redis: ConnectionManager,
    stream: String,
    group: String,
    consumer: String,
    authority: Authority,
    keyring: Keyring,
    policy: ClaimPolicy,
}

impl GroupConsumer {
    /// `consumer` names this instance (the pod name in Kubernetes). It need not be stable:
    /// what a dead instance left pending is claimed by the others ([`ClaimPolicy`]).
    pub async fn new(
        redis_url: &str,
        stream: String,
        group: &str,
        consumer: &str,
    ) -> Result<Self, EventError> {
        let mut redis = blocking_connection(redis_url).await?;
        create_group(&mut redis, &stream, group).await?;
        // Every series of the group exists from the start, at 0, so an alert on its increase
        // sees the first redelivery or dead letter.
        if let Some(m) = custodian_telemetry::metrics::consumer_groups() {
            let stream = stream_label(&stream);
            m.redelivered.with_label_values(&[stream, group]);
            for reason in ["redelivered", "rejected"] {
                m.dead_lettered.with_label_values(&[stream, group, reason]);
            }
        }
        let authority = Authority::of_stream(&stream);
        expose_rejections(authority, &stream);
        Ok(Self {
            redis,
            authority,
            stream,
            group: group.to_string(),
            consumer: consumer.to_string(),
            keyring: Keyring::shared().clone(),
            policy: ClaimPolicy::default(),
        })
    }

    /// Verifies with another rule or keyring than the stream's own and the process's.
    pub fn trusting(mut self, authority: Authority, keyring: Keyring) -> Self {
        self.authority = authority;
        self.keyring = keyring;
        self
    }

    /// When messages of a silent group member are claimed, and when they are given up on.
    pub fn claiming(mut self, policy: ClaimPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Consumes until `token` is cancelled, one message at a time. After a message asks to be
    /// retried, the rest of its read stays pending too, so order is kept.
    pub async fn run<H: Handler>(self, handler: H, token: CancellationToken) {
        self.run_batched(OneByOne(handler), token).await
    }
}

/// Creates the group at the stream's beginning (so events published before the group existed
/// count), and the stream if missing; an existing group is left as it is.
async fn create_group(
    redis: &mut ConnectionManager,
    stream: &str,
    group: &str,
) -> Result<(), EventError> {
    let created: Result<(), redis::RedisError> =
        redis.xgroup_create_mkstream(stream, group, "0").await;
    match created {
        Err(e) if !e.to_string().contains("BUSYGROUP") => Err(e.into()),
        _ => Ok(()),
    }
}

/// Adapts a [`Handler`] to a [`BatchHandler`].
struct OneByOne<H>(H);

impl<H: Handler> BatchHandler for OneByOne<H> {
    async fn handle_batch(&self, payloads: &[String]) -> Vec<Result<(), HandlerError>> {
        let mut outcomes = Vec::with_capacity(payloads.len());
        let mut retrying = false;
        for payload in payloads {
            if retrying {
                outcomes.push(Err(HandlerError::Retry(
                    "an earlier message is being retried".into(),
                )));
                continue;
            }
            let outcome = self.0.handle(payload).await;
            retrying = matches!(outcome, Err(HandlerError::Retry(_)));
            outcomes.push(outcome);
        }
        outcomes
    }
}

/// The id of the newest message in `stream`, or `0-0` when it is empty. Read it *before*
/// taking a snapshot, then tail from it: nothing between the two is missed.
///
/// Services ask it as they start: a reply that times out (Redis busy on a loaded machine;
/// the fault harness saw a restarted service exit on it) is asked again for up to
/// [`crate::streams::CONNECT_WITHIN`], as a first connection is.
pub async fn latest_id(redis: &mut ConnectionManager, stream: &str) -> Result<String, EventError> {
    let newest = crate::streams::while_unreachable("stream position not read yet", || {
        let mut redis = redis.clone();
        async move {
            redis
                .xrevrange_count::<_, _, _, _, redis::streams::StreamRangeReply>(
                    stream, "+", "-", 1,
                )
                .await
        }
    })
    .await?;
    Ok(newest
        .ids
        .first()
        .map(|e| e.id.clone())
        .unwrap_or_else(|| "0-0".to_string()))
}

/// Reads every message of a stream after a given id, for replicas.
pub struct StreamTail {
    redis: ConnectionManager,
    stream: String,
    last_id: String,
    authority: Authority,
    keyring: Keyring,
}

impl StreamTail {
    pub async fn new(redis_url: &str, stream: String, after: String) -> Result<Self, EventError> {
        let authority = Authority::of_stream(&stream);
        expose_rejections(authority, &stream);
        Ok(Self {
            redis: blocking_connection(redis_url).await?,
            authority,
            stream,
            last_id: after,
            keyring: Keyring::shared().clone(),
        })
    }

    /// Verifies with another rule or keyring than the stream's own and the process's.
    pub fn trusting(mut self, authority: Authority, keyring: Keyring) -> Self {
        self.authority = authority;
        self.keyring = keyring;
        self
    }

    pub async fn run<H: Handler>(mut self, handler: H, token: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !token.is_cancelled() {
            let options = redis::streams::StreamReadOptions::default()
                .count(BATCH)
                .block(BLOCK_MS);
            let keys = [self.stream.as_str()];
            let ids = [self.last_id.clone()];
            let read = tokio::select! {
                _ = token.cancelled() => break,
                r = self.redis.xread_options::<_, _, Option<StreamReadReply>>(&keys, &ids, &options) => r,
            };
            match read {
                Ok(reply) => {
                    backoff = Duration::from_millis(100);
                    for entry in reply
                        .unwrap_or_default()
                        .keys
                        .into_iter()
                        .flat_map(|k| k.ids)
                    {
                        let admitted = payload_of(&entry)
                            .filter(|payload| handler.acts_on(payload))
                            .filter(|payload| {
                                admit(&self.keyring, self.authority, &self.stream, &entry, payload)
                                    .is_ok()
                            });
                        if let Some(payload) = admitted {
                            if let Err(e) = handler.handle(&payload).await {
                                tracing::error!(message_id = %entry.id, error = ?e, "tail message not applied");
                            }
                        }
                        self.last_id = entry.id;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, stream = %self.stream, "stream tail read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!(stream = %self.stream, "stream tail stopped");
    }
}

/// Processes a batch of messages' `event` fields at once (one database transaction for many
/// events, say). Returns one outcome per payload, in order.
pub trait BatchHandler: Send + Sync + 'static {
    fn handle_batch(
        &self,
        payloads: &[String],
    ) -> impl Future<Output = Vec<Result<(), HandlerError>>> + Send;
}

/// A pause after a batch asked to be retried grows to this.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

impl GroupConsumer {
    /// Like [`GroupConsumer::run`], but hands the handler every message of a read (up to 200)
    /// at once and acknowledges them with one XACK. Messages whose outcome is `Retry` (or all of
    /// them, when the handler returns the wrong number of outcomes) stay pending and are handed
    /// over again after a pause; the others are acknowledged (rejected ones dead-lettered first).
    ///
    /// Retried messages are held in memory rather than read again: a read of the pending list
    /// counts as a delivery, and the delivery count is how a message that kills its consumers is
    /// told from one that waits for the database. While held, their idle time is reset so that
    /// the group does not take them for a dead member's. Every few seconds the consumer claims
    /// what other members have left unacknowledged for [`ClaimPolicy::min_idle`] (they died
    /// between reading and acknowledging), and refreshes the group's pending and lag gauges.
    pub async fn run_batched<H: BatchHandler>(mut self, handler: H, token: CancellationToken) {
        let claim_every =
            (self.policy.min_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let mut next_claim = Instant::now();
        // First what this name was given and never acknowledged (a restart under a stable name).
        let mut own_pending = true;
        let mut held: Vec<StreamId> = Vec::new();
        let mut retry_pause = Duration::from_millis(500);
        let mut backoff = Duration::from_millis(100);
        while !token.is_cancelled() {
            let entries = if !held.is_empty() {
                std::mem::take(&mut held)
            } else {
                let mut claimed = Vec::new();
                if Instant::now() >= next_claim {
                    next_claim = Instant::now() + claim_every;
                    match self.claim_silent().await {
                        Ok(entries) => claimed = entries,
                        Err(e) => self.recover(e).await,
                    }
                    self.observe().await;
                }
                if claimed.is_empty() {
                    let read = tokio::select! {
                        _ = token.cancelled() => break,
                        r = self.read(own_pending) => r,
                    };
                    match read {
                        Ok(entries) => {
                            backoff = Duration::from_millis(100);
                            if own_pending && entries.is_empty() {
                                own_pending = false;
                                continue;
                            }
                            if own_pending {
                                match self.give_up_on_redelivered(entries).await {
                                    Ok(entries) => entries,
                                    Err(e) => {
                                        self.recover(e).await;
                                        continue;
                                    }
                                }
                            } else {
                                entries
                            }
                        }
                        Err(e) => {
                            self.recover(e).await;
                            tokio::select! {
                                _ = token.cancelled() => break,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                } else {
                    claimed
                }
            };
            if entries.is_empty() {
                continue;
            }
            let retry = self.handle(&handler, entries).await;
            if retry.is_empty() {
                retry_pause = Duration::from_millis(500);
                continue;
            }
            held = retry;
            // The pause is slept in slices, touching the held messages between them, so that no
            // member takes them for a dead one's however long the database stays away.
            let resume = Instant::now() + retry_pause;
            retry_pause = (retry_pause * 2).min(MAX_RETRY_PAUSE);
            let touch_every = self.policy.min_idle / 3;
            loop {
                let now = Instant::now();
                if now >= resume || held.is_empty() {
                    break;
                }
                let slice = (resume - now).min(touch_every);
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(slice) => {}
                }
                held = self.touch(held).await;
            }
        }
        tracing::info!(stream = %self.stream, group = %self.group, "consumer stopped");
    }

    /// New messages (`>`, blocking up to a second), or this name's own pending ones (`0`).
    async fn read(&mut self, own_pending: bool) -> Result<Vec<StreamId>, redis::RedisError> {
        let mut options = redis::streams::StreamReadOptions::default()
            .group(&self.group, &self.consumer)
            .count(BATCH);
        if !own_pending {
            options = options.block(BLOCK_MS);
        }
        let keys = [self.stream.as_str()];
        let ids = [if own_pending { "0" } else { ">" }];
        let reply: Option<StreamReadReply> =
            self.redis.xread_options(&keys, &ids, &options).await?;
        Ok(reply
            .unwrap_or_default()
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .collect())
    }

    /// A failed Redis command: when the group is gone (Redis restarted empty, or the group was
    /// deleted), it is created again from the stream's start; anything else is logged.
    async fn recover(&mut self, e: redis::RedisError) {
        if e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP") {
            tracing::warn!(
                stream = stream_label(&self.stream),
                group = %self.group,
                "consumer group missing (Redis lost its data?); creating it again from the stream's start"
            );
            if let Err(e) = create_group(&mut self.redis, &self.stream, &self.group).await {
                tracing::warn!(error = %e, stream = stream_label(&self.stream), "consumer group not created; retrying");
            }
        } else {
            tracing::warn!(error = %e, stream = stream_label(&self.stream), group = %self.group, "stream command failed; retrying");
        }
    }

    /// Claims, in stream order, the messages members of the group have left unacknowledged for
    /// `min_idle`. Those already delivered `max_deliveries` times are
    /// dead-lettered instead of handled (they would take this consumer down too).
    async fn claim_silent(&mut self) -> Result<Vec<StreamId>, redis::RedisError> {
        let min_idle = self.policy.min_idle.as_millis() as u64;
        let silent: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("IDLE")
            .arg(min_idle)
            .arg("-")
            .arg("+")
            .arg(BATCH)
            .query_async(&mut self.redis)
            .await?;
        // This consumer's own messages count too: when it claims, it holds none in flight, so
        // one of its own idle this long was left behind (an acknowledgement lost to a Redis
        // hiccup, a claim cut short).
        let silent: Vec<StreamPendingId> = silent.ids;
        if silent.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = silent.iter().map(|p| p.id.as_str()).collect();
        // XCLAIM checks the idle time again: of two members claiming at once, one gets each.
        let claimed: StreamClaimReply = self
            .redis
            .xclaim(&self.stream, &self.group, &self.consumer, min_idle, &ids)
            .await?;
        let deliveries = |id: &str| {
            silent
                .iter()
                .find(|p| p.id == id)
                .map_or(0, |p| p.times_delivered)
        };
        let mut handed = Vec::with_capacity(claimed.ids.len());
        let mut exhausted = Vec::new();
        for entry in claimed.ids {
            if deliveries(&entry.id) >= self.policy.max_deliveries {
                exhausted.push(entry);
            } else {
                handed.push(entry);
            }
        }
        if !handed.is_empty() {
            let from: std::collections::BTreeSet<&str> =
                silent.iter().map(|p| p.consumer.as_str()).collect();
            tracing::warn!(
                stream = stream_label(&self.stream),
                group = %self.group,
                messages = handed.len(),
                from = ?from,
                "claimed messages a silent group member left unacknowledged"
            );
            if let Some(m) = custodian_telemetry::metrics::consumer_groups() {
                m.redelivered
                    .with_label_values(&[stream_label(&self.stream), self.group.as_str()])
                    .inc_by(handed.len() as u64);
            }
        }
        self.give_up(exhausted).await?;
        Ok(handed)
    }

    /// Of this name's own pending messages just read again, those delivered more than
    /// `max_deliveries` times are dead-lettered; the others are returned.
    async fn give_up_on_redelivered(
        &mut self,
        entries: Vec<StreamId>,
    ) -> Result<Vec<StreamId>, redis::RedisError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(entries);
        };
        let counts: StreamPendingCountReply = self
            .redis
            .xpending_consumer_count(
                &self.stream,
                &self.group,
                &first.id,
                &last.id,
                entries.len(),
                &self.consumer,
            )
            .await?;
        let over = |id: &str| {
            counts
                .ids
                .iter()
                .any(|p| p.id == id && p.times_delivered > self.policy.max_deliveries)
        };
        let (exhausted, kept): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| over(&e.id));
        self.give_up(exhausted).await?;
        Ok(kept)
    }

    /// Dead-letters and acknowledges messages delivered too often without an acknowledgement.
    async fn give_up(&mut self, exhausted: Vec<StreamId>) -> Result<(), redis::RedisError> {
        if exhausted.is_empty() {
            return Ok(());
        }
        let reason = format!(
            "delivered {} times without being acknowledged",
            self.policy.max_deliveries
        );
        for entry in &exhausted {
            tracing::error!(
                stream = stream_label(&self.stream),
                group = %self.group,
                message_id = %entry.id,
                "message keeps failing its consumers; dead-lettered"
            );
            self.dead_letter(entry, &reason, "redelivered").await?;
        }
        let ids: Vec<&str> = exhausted.iter().map(|e| e.id.as_str()).collect();
        let _: i64 = self.redis.xack(&self.stream, &self.group, &ids).await?;
        Ok(())
    }

    /// Copies a message to `<stream>:dead` with why it was given up and by which group.
    async fn dead_letter(
        &mut self,
        entry: &StreamId,
        reason: &str,
        label: &'static str,
    ) -> Result<(), redis::RedisError> {
        let body = payload_of(entry).unwrap_or_default();
        let dead = format!("{}:dead", self.stream);
        let _: String = self
            .redis
            .xadd_maxlen(
                &dead,
                redis::streams::StreamMaxlen::Approx(DEAD_LETTER_MAXLEN),
                "*",
                &[
                    ("source_id", entry.id.as_str()),
                    ("group", self.group.as_str()),
                    ("event", body.as_str()),
                    ("reason", reason),
                ],
            )
            .await?;
        if let Some(m) = custodian_telemetry::metrics::consumer_groups() {
            m.dead_lettered
                .with_label_values(&[stream_label(&self.stream), self.group.as_str(), label])
                .inc();
        }
        Ok(())
    }

    /// Resets the idle time of messages held for a retry (XCLAIM JUSTID does not count as a
    /// delivery) and keeps those still this consumer's: one acknowledged or claimed by another
    /// member meanwhile is dropped.
    async fn touch(&mut self, held: Vec<StreamId>) -> Vec<StreamId> {
        let ids: Vec<&str> = held.iter().map(|e| e.id.as_str()).collect();
        let options = redis::streams::StreamClaimOptions::default().with_justid();
        let still: Result<Vec<String>, _> = self
            .redis
            .xclaim_options(&self.stream, &self.group, &self.consumer, 0, &ids, options)
            .await;
        match still {
            Ok(still) => held.into_iter().filter(|e| still.contains(&e.id)).collect(),
            Err(e) => {
                self.recover(e).await;
                held
            }
        }
    }

    /// Sets the pending and lag gauges, and forgets members long gone with nothing pending
    /// (names are per process, so every restart leaves one behind).
    async fn observe(&mut self) {
        let groups: Result<StreamInfoGroupsReply, _> = self.redis.xinfo_groups(&self.stream).await;
        if let (Ok(groups), Some(m)) = (groups, custodian_telemetry::metrics::consumer_groups()) {
            if let Some(group) = groups.groups.iter().find(|g| g.name == self.group) {
                let labels = [stream_label(&self.stream), self.group.as_str()];
                m.pending
                    .with_label_values(&labels)
                    .set(group.pending as i64);
                if let Some(lag) = group.lag {
                    m.lag.with_label_values(&labels).set(lag as i64);
                }
            }
        }
        let departed_after = self.policy.min_idle.saturating_mul(30).as_millis() as usize;
        let members: Result<StreamInfoConsumersReply, _> =
            self.redis.xinfo_consumers(&self.stream, &self.group).await;
        if let Ok(members) = members {
            for member in members.consumers {
                if member.name != self.consumer
                    && member.pending == 0
                    && member.idle > departed_after
                {
                    let _: Result<usize, _> = self
                        .redis
                        .xgroup_delconsumer(&self.stream, &self.group, &member.name)
                        .await;
                }
            }
        }
    }

    /// Admits, hands to the handler, acknowledges and dead-letters one read; returns the
    /// messages to retry, in order.
    async fn handle<H: BatchHandler>(
        &mut self,
        handler: &H,
        entries: Vec<StreamId>,
    ) -> Vec<StreamId> {
        // Messages without an event field, or without the signature their stream needs, are
        // rejected without bothering the handler.
        let mut outcomes: Vec<Option<Result<(), HandlerError>>> = Vec::with_capacity(entries.len());
        let mut payloads = Vec::with_capacity(entries.len());
        for entry in &entries {
            match payload_of(entry) {
                Some(p) => match admit(&self.keyring, self.authority, &self.stream, entry, &p) {
                    Ok(()) => {
                        payloads.push(p);
                        outcomes.push(None);
                    }
                    Err(rejection) => outcomes.push(Some(Err(HandlerError::Reject(format!(
                        "signature refused: {}",
                        rejection.label()
                    ))))),
                },
                None => outcomes.push(Some(Err(HandlerError::Reject(
                    "message has no event field".into(),
                )))),
            }
        }
        let mut handled = if payloads.is_empty() {
            Vec::new()
        } else {
            // A handler waiting for the database may take longer than `min_idle`: its messages'
            // idle time is reset meanwhile, so no other member takes them for a dead one's.
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            let mut beat = self.redis.clone();
            let touch_every = self.policy.min_idle / 3;
            let work = handler.handle_batch(&payloads);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    outcomes = &mut work => break outcomes,
                    _ = tokio::time::sleep(touch_every) => {
                        let options = redis::streams::StreamClaimOptions::default().with_justid();
                        let _: Result<Vec<String>, _> = beat
                            .xclaim_options(&self.stream, &self.group, &self.consumer, 0, &ids, options)
                            .await;
                    }
                }
            }
        };
        if handled.len() != payloads.len() {
            tracing::error!(
                expected = payloads.len(),
                got = handled.len(),
                "batch handler returned the wrong number of outcomes"
            );
            handled = payloads
                .iter()
                .map(|_| Err(HandlerError::Retry("bad batch outcome".into())))
                .collect();
        }
        let mut handled = handled.into_iter();
        let mut ack: Vec<String> = Vec::with_capacity(entries.len());
        let mut retry = Vec::new();
        for (entry, outcome) in entries.into_iter().zip(outcomes) {
            let outcome = match outcome {
                Some(o) => o,
                None => handled
                    .next()
                    .unwrap_or_else(|| Err(HandlerError::Retry("missing outcome".into()))),
            };
            match outcome {
                Ok(()) => ack.push(entry.id),
                Err(HandlerError::Reject(reason)) => {
                    tracing::error!(message_id = %entry.id, reason = %reason, "message rejected; dead-lettered");
                    // Not acknowledged unless dead-lettered: a Redis error here retries it.
                    match self.dead_letter(&entry, &reason, "rejected").await {
                        Ok(()) => ack.push(entry.id),
                        Err(e) => {
                            tracing::warn!(error = %e, "dead letter not written; will retry");
                            retry.push(entry);
                        }
                    }
                }
                Err(HandlerError::Retry(reason)) => {
                    tracing::warn!(message_id = %entry.id, reason = %reason, "message processing failed; will retry");
                    retry.push(entry);
                }
            }
        }
        if !ack.is_empty() {
            // A lost acknowledgement only means a redelivery, which handlers absorb.
            if let Err(e) = self
                .redis
                .xack::<_, _, _, i64>(&self.stream, &self.group, &ack)
                .await
            {
                tracing::warn!(error = %e, stream = stream_label(&self.stream), "acknowledgement failed; the messages will be delivered again");
            }
        }
        retry
    }
}
