//! Suspending and reinstating users. Both the admin API and the alerts consumer come here: the
//! user row changes and the `IdentityEvent` the gateway acts on is enqueued in the same
//! transaction, so the two never disagree. Suspending a suspended user changes nothing and
//! publishes nothing (alerts are delivered at least once).

use chrono::Utc;
use custodian_auth::DenyList;
use custodian_database::Pool;
use custodian_events::{outbox, outbox::Relay, IdentityEvent, Streams};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    error::Unexpected,
    metrics::IdentityMetrics,
    models::{user, User},
};

#[derive(Debug, thiserror::Error)]
pub enum SuspensionError {
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

impl From<diesel::result::Error> for SuspensionError {
    fn from(e: diesel::result::Error) -> Self {
        SuspensionError::Unexpected(e.into())
    }
}

/// What a suspension or reinstatement did.
#[derive(Debug)]
pub struct Change {
    pub user: User,
    /// False when the user already was in the requested state.
    pub changed: bool,
}

#[derive(Clone)]
pub struct Suspensions {
    pool: Pool,
    streams: Streams,
    relay: Relay,
    metrics: IdentityMetrics,
    deny: DenyList,
}

impl Suspensions {
    pub fn new(
        pool: Pool,
        streams: Streams,
        relay: Relay,
        metrics: IdentityMetrics,
        deny: DenyList,
    ) -> Self {
        Self {
            pool,
            streams,
            relay,
            metrics,
            deny,
        }
    }

    /// Suspends the user and publishes `UserSuspended`.
    pub async fn suspend(&self, user_id: Uuid, reason: &str) -> Result<Change, SuspensionError> {
        self.set(user_id, Some(reason.to_string())).await
    }

    /// Reinstates the user and publishes `UserReinstated`.
    pub async fn reinstate(&self, user_id: Uuid) -> Result<Change, SuspensionError> {
        self.set(user_id, None).await
    }

    async fn set(&self, user_id: Uuid, reason: Option<String>) -> Result<Change, SuspensionError> {
        let mut conn = self.pool.get().await.map_err(Unexpected::from)?;
        let stream = self.streams.identity();
        let (change, event) = conn
            .transaction::<_, SuspensionError, _>(async move |conn| {
                let current = user::find_for_update(conn, user_id)
                    .await?
                    .ok_or(SuspensionError::NotFound)?;
                if current.suspended == reason.is_some() {
                    return Ok((
                        Change {
                            user: current,
                            changed: false,
                        },
                        None,
                    ));
                }
                let updated = user::set_suspended(conn, user_id, reason.as_deref()).await?;
                let event = match &reason {
                    Some(reason) => IdentityEvent::UserSuspended {
                        user_id: user_id.to_string(),
                        reason: reason.clone(),
                        time: Utc::now(),
                    },
                    None => IdentityEvent::UserReinstated {
                        user_id: user_id.to_string(),
                        time: Utc::now(),
                    },
                };
                let payload = serde_json::to_value(&event).map_err(|e| {
                    SuspensionError::Unexpected(Unexpected(format!("event encoding: {e}")))
                })?;
                outbox::enqueue(conn, &stream, Uuid::new_v4(), &payload).await?;
                Ok((
                    Change {
                        user: updated,
                        changed: true,
                    },
                    Some(event),
                ))
            })
            .await?;
        if let Some(event) = event {
            self.relay.wake();
            // This replica refuses the user's tokens at once; others learn it from the stream.
            self.deny.apply(&event);
            if matches!(event, IdentityEvent::UserSuspended { .. }) {
                self.metrics.users_suspended.inc();
                tracing::info!(user_id = %user_id, "user suspended");
            } else {
                tracing::info!(user_id = %user_id, "user reinstated");
            }
        }
        Ok(change)
    }
}
