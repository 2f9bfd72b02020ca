//! Reading streams.
//!
//! [`GroupConsumer`]: one consumer of a consumer group (ledger, anomaly, identity). A message is
//! acknowledged only after its handler succeeded; on start the consumer first re-reads what it
//! had been given and not acknowledged, so a crash re-delivers instead of losing. Handlers are
//! idempotent by event id. A message the handler rejects as malformed goes to `<stream>:dead`.
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

use std::{future::Future, time::Duration};

use redis::{aio::ConnectionManager, streams::StreamReadReply, AsyncCommands};
use tokio_util::sync::CancellationToken;

use crate::{
    signing::{self, stream_label, Authority, Keyring, Message, Rejection},
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
}

/// A connection for blocking reads: a blocking XREAD must not share the multiplexed
/// connection other commands use, and needs a response timeout above its BLOCK time.
pub async fn blocking_connection(url: &str) -> Result<ConnectionManager, EventError> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    Ok(ConnectionManager::new_with_config(client, config).await?)
}

const BLOCK_MS: usize = 1000;
const BATCH: usize = 200;

/// Dead-letter streams keep at most about this many messages (forgeries must not fill Redis).
const DEAD_LETTER_MAXLEN: usize = 10_000;

fn payload_of(entry: &redis::streams::StreamId) -> Option<String> {
    entry.get::<String>("event")
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
}

impl GroupConsumer {
    /// `consumer` names this instance (the pod name in Kubernetes).
    pub async fn new(
        redis_url: &str,
        stream: String,
        group: &str,
        consumer: &str,
    ) -> Result<Self, EventError> {
        let mut redis = blocking_connection(redis_url).await?;
        // Start from the stream's beginning so events published before the group existed count.
        let created: Result<(), redis::RedisError> =
            redis.xgroup_create_mkstream(&stream, group, "0").await;
        if let Err(e) = created {
            if !e.to_string().contains("BUSYGROUP") {
                return Err(e.into());
            }
        }
        Ok(Self {
            redis,
            authority: Authority::of_stream(&stream),
            stream,
            group: group.to_string(),
            consumer: consumer.to_string(),
            keyring: Keyring::shared().clone(),
        })
    }

    /// Verifies with another rule or keyring than the stream's own and the process's.
    pub fn trusting(mut self, authority: Authority, keyring: Keyring) -> Self {
        self.authority = authority;
        self.keyring = keyring;
        self
    }

    /// Consumes until `token` is cancelled, one message at a time. After a message asks to be
    /// retried, the rest of its read stays pending too, so order is kept.
    pub async fn run<H: Handler>(self, handler: H, token: CancellationToken) {
        self.run_batched(OneByOne(handler), token).await
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
pub async fn latest_id(redis: &mut ConnectionManager, stream: &str) -> Result<String, EventError> {
    let newest: redis::streams::StreamRangeReply =
        redis.xrevrange_count(stream, "+", "-", 1).await?;
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
        Ok(Self {
            redis: blocking_connection(redis_url).await?,
            authority: Authority::of_stream(&stream),
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
                        let admitted = payload_of(&entry).filter(|payload| {
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

impl GroupConsumer {
    /// Like [`GroupConsumer::run`], but hands the handler every message of a read (up to 200)
    /// at once and acknowledges them with one XACK. Messages whose outcome is `Retry` (or all of
    /// them, when the handler returns the wrong number of outcomes) stay pending and are read
    /// again after a pause; the others are acknowledged (rejected ones dead-lettered first).
    pub async fn run_batched<H: BatchHandler>(mut self, handler: H, token: CancellationToken) {
        let dead = format!("{}:dead", self.stream);
        let mut pending = true;
        let mut backoff = Duration::from_millis(100);
        while !token.is_cancelled() {
            let start = if pending { "0" } else { ">" };
            let mut options = redis::streams::StreamReadOptions::default()
                .group(&self.group, &self.consumer)
                .count(BATCH);
            if !pending {
                options = options.block(BLOCK_MS);
            }
            let keys = [self.stream.as_str()];
            let ids = [start];
            let read = tokio::select! {
                _ = token.cancelled() => break,
                r = self.redis.xread_options::<_, _, Option<StreamReadReply>>(&keys, &ids, &options) => r,
            };
            let reply = match read {
                Ok(reply) => reply.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(error = %e, stream = %self.stream, "stream read failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let entries: Vec<_> = reply.keys.into_iter().flat_map(|k| k.ids).collect();
            if pending && entries.is_empty() {
                pending = false;
                continue;
            }
            // Messages without an event field, or without the signature their stream needs, are
            // rejected without bothering the handler.
            let mut outcomes: Vec<Option<Result<(), HandlerError>>> =
                Vec::with_capacity(entries.len());
            let mut payloads = Vec::with_capacity(entries.len());
            for entry in &entries {
                match payload_of(entry) {
                    Some(p) => {
                        match admit(&self.keyring, self.authority, &self.stream, entry, &p) {
                            Ok(()) => {
                                payloads.push(p);
                                outcomes.push(None);
                            }
                            Err(rejection) => outcomes.push(Some(Err(HandlerError::Reject(
                                format!("signature refused: {}", rejection.label()),
                            )))),
                        }
                    }
                    None => outcomes.push(Some(Err(HandlerError::Reject(
                        "message has no event field".into(),
                    )))),
                }
            }
            let mut handled = if payloads.is_empty() {
                Vec::new()
            } else {
                handler.handle_batch(&payloads).await
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
            let mut ack: Vec<&str> = Vec::with_capacity(entries.len());
            let mut retry = false;
            for (entry, outcome) in entries.iter().zip(outcomes) {
                let outcome = match outcome {
                    Some(o) => o,
                    None => handled
                        .next()
                        .unwrap_or_else(|| Err(HandlerError::Retry("missing outcome".into()))),
                };
                match outcome {
                    Ok(()) => ack.push(&entry.id),
                    Err(HandlerError::Reject(reason)) => {
                        tracing::error!(message_id = %entry.id, reason = %reason, "message rejected; dead-lettered");
                        let body = payload_of(entry).unwrap_or_default();
                        let _: Result<String, _> = self
                            .redis
                            .xadd_maxlen(
                                &dead,
                                redis::streams::StreamMaxlen::Approx(DEAD_LETTER_MAXLEN),
                                "*",
                                &[
                                    ("source_id", entry.id.as_str()),
                                    ("event", body.as_str()),
                                    ("reason", reason.as_str()),
                                ],
                            )
                            .await;
                        ack.push(&entry.id);
                    }
                    Err(HandlerError::Retry(reason)) => {
                        tracing::warn!(message_id = %entry.id, reason = %reason, "message processing failed; will retry");
                        retry = true;
                    }
                }
            }
            if !ack.is_empty() {
                let _: Result<i64, _> = self.redis.xack(&self.stream, &self.group, &ack).await;
            }
            if retry {
                pending = true;
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
        tracing::info!(stream = %self.stream, group = %self.group, "consumer stopped");
    }
}
