//! The alert webhook (`ANOMALY_WEBHOOK_URL`): each new alert is POSTed as its FHIR
//! `DetectedIssue`, from a durable queue.
//!
//! - The consumer writes a `webhook_deliveries` row in the same transaction as the alert
//!   ([`enqueue`]), so a crash never loses one (an outbox, like the alerts stream's).
//! - The [`Webhook`] worker claims due rows with a lease (`FOR UPDATE SKIP LOCKED`; several
//!   replicas never POST the same row at once, and a crash mid-delivery makes it due again
//!   when the lease ends), POSTs them, and marks them delivered on a 2xx answer. Otherwise it
//!   retries with exponential backoff (1 s, 2 s, 4 s ... at most [`MAX_BACKOFF`]) until
//!   `ANOMALY_WEBHOOK_MAX_ATTEMPTS`, then gives the delivery up (kept, with its last error).
//!   Delivery is at least once: receivers deduplicate by `X-Custodian-Delivery`.
//! - Each request carries `X-Custodian-Timestamp` (Unix seconds) and `X-Custodian-Signature:
//!   sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret file's contents>`.
//!
//! No alert content is logged: only delivery ids, attempt counts and HTTP statuses.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use custodian_database::Pool;
use diesel::{
    prelude::*,
    sql_types::{Int4, Jsonb, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    configuration::WebhookSettings,
    metrics::{AnomalyMetrics, ABANDONED, DELIVERED, RETRY},
    schema::webhook_deliveries,
};

pub const SIGNATURE_HEADER: &str = "x-custodian-signature";
pub const TIMESTAMP_HEADER: &str = "x-custodian-timestamp";
pub const DELIVERY_HEADER: &str = "x-custodian-delivery";

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long a claimed delivery is reserved for the worker that claimed it.
const LEASE: Duration = Duration::from_secs(60);
/// How long one POST may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries claimed per pass.
const BATCH: i64 = 20;
/// The longest the worker sleeps without being woken.
const POLL: Duration = Duration::from_secs(1);

/// Queues the delivery of `payload` (the alert's `DetectedIssue`), inside the alert's
/// transaction.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    alert_id: Uuid,
    payload: &serde_json::Value,
) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(Uuid::now_v7()),
            webhook_deliveries::alert_id.eq(alert_id),
            webhook_deliveries::payload.eq(payload),
        ))
        .on_conflict(webhook_deliveries::alert_id)
        .do_nothing()
        .execute(conn)
        .await
        .map(|_| ())
}

/// The HMAC-SHA256 signature header value of `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s ... at most [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF)
}

#[derive(Debug, QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
    #[diesel(sql_type = Int4)]
    attempts: i32,
}

/// Wakes the worker when the consumer committed new deliveries.
#[derive(Clone, Default)]
pub struct WebhookWaker(Option<Arc<Notify>>);

impl WebhookWaker {
    pub fn wake(&self) {
        if let Some(notify) = &self.0 {
            notify.notify_one();
        }
    }

    /// Whether a webhook is configured (deliveries are queued only then).
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }
}

/// The delivery worker.
pub struct Webhook {
    pool: Pool,
    settings: WebhookSettings,
    metrics: AnomalyMetrics,
    notify: Arc<Notify>,
}

impl Webhook {
    pub fn new(pool: Pool, settings: WebhookSettings, metrics: AnomalyMetrics) -> Self {
        Self {
            pool,
            settings,
            metrics,
            notify: Arc::new(Notify::new()),
        }
    }

    pub fn waker(&self) -> WebhookWaker {
        WebhookWaker(Some(self.notify.clone()))
    }

    /// Delivers until `token` is cancelled (finishing the pass in progress). The HTTP client is
    /// not `Send`: run it on the actix runtime (`actix_web::rt::spawn`).
    pub async fn run(self, token: CancellationToken) {
        let client = awc::Client::builder().timeout(REQUEST_TIMEOUT).finish();
        loop {
            let more = match self.pass(&client).await {
                Ok(n) => n as i64 == BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook pass failed");
                    false
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                _ = token.cancelled() => break,
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One pass: claims the due deliveries and attempts each. Returns how many it claimed.
    pub async fn pass(&self, client: &awc::Client) -> Result<usize, String> {
        let claimed = {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            let pending: i64 = webhook_deliveries::table
                .filter(webhook_deliveries::delivered_at.is_null())
                .filter(webhook_deliveries::failed_at.is_null())
                .count()
                .get_result(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            self.metrics.webhook_pending.set(pending);
            claim(&mut conn).await.map_err(|e| e.to_string())?
        };
        let count = claimed.len();
        for delivery in claimed {
            let attempts = u32::try_from(delivery.attempts).unwrap_or(0);
            let outcome = self.post(client, &delivery).await;
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            match outcome {
                Ok(()) => {
                    diesel::update(webhook_deliveries::table.find(delivery.id))
                        .set((
                            webhook_deliveries::delivered_at.eq(Some(Utc::now())),
                            webhook_deliveries::last_error.eq(None::<String>),
                        ))
                        .execute(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.metrics
                        .webhook_deliveries
                        .with_label_values(&[DELIVERED])
                        .inc();
                    tracing::info!(delivery_id = %delivery.id, attempts, "webhook delivered");
                }
                Err(error) if attempts >= self.settings.max_attempts => {
                    diesel::update(webhook_deliveries::table.find(delivery.id))
                        .set((
                            webhook_deliveries::failed_at.eq(Some(Utc::now())),
                            webhook_deliveries::last_error.eq(Some(&error)),
                        ))
                        .execute(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.metrics
                        .webhook_deliveries
                        .with_label_values(&[ABANDONED])
                        .inc();
                    tracing::error!(delivery_id = %delivery.id, attempts, error = %error, "webhook delivery given up");
                }
                Err(error) => {
                    let next = Utc::now()
                        + chrono::Duration::from_std(backoff(attempts))
                            .unwrap_or(chrono::Duration::seconds(1));
                    diesel::update(webhook_deliveries::table.find(delivery.id))
                        .set((
                            webhook_deliveries::next_attempt_at.eq(next),
                            webhook_deliveries::last_error.eq(Some(&error)),
                        ))
                        .execute(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    self.metrics
                        .webhook_deliveries
                        .with_label_values(&[RETRY])
                        .inc();
                    tracing::warn!(delivery_id = %delivery.id, attempts, error = %error, "webhook delivery failed, will retry");
                }
            }
        }
        Ok(count)
    }

    async fn post(&self, client: &awc::Client, delivery: &Claimed) -> Result<(), String> {
        let body = serde_json::to_vec(&delivery.payload).map_err(|e| e.to_string())?;
        let timestamp = Utc::now().timestamp();
        let signed = signature(self.settings.secret.expose().as_bytes(), timestamp, &body);
        let response = client
            .post(&self.settings.url)
            .insert_header(("content-type", "application/fhir+json"))
            .insert_header((SIGNATURE_HEADER, signed))
            .insert_header((TIMESTAMP_HEADER, timestamp.to_string()))
            .insert_header((DELIVERY_HEADER, delivery.id.to_string()))
            .send_body(body)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status().as_u16()))
        }
    }
}

/// Claims up to [`BATCH`] due deliveries: each gets an attempt counted and its next attempt
/// moved a lease ahead (so a crash leaves it due again).
async fn claim(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Claimed>> {
    let lease_end: DateTime<Utc> =
        Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(60));
    diesel::sql_query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1 \
         WHERE id IN (SELECT id FROM webhook_deliveries \
                      WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now() \
                      ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING id, payload, attempts",
    )
    .bind::<Timestamptz, _>(lease_end)
    .bind::<diesel::sql_types::BigInt, _>(BATCH)
    .load(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_2104_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let a = signature(b"secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(a, signature(b"other", 1_700_000_000, b"{}"));
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(9), Duration::from_secs(256));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
