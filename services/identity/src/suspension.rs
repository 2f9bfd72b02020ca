//! Suspending and reinstating users. Both the admin API and the alerts consumer come here: the
//! user row changes, the `IdentityEvent` the gateway acts on and the access event for the ledger
//! are enqueued in the same transaction, so the three never disagree. Suspending a suspended
//! user changes nothing and publishes nothing (alerts are delivered at least once).
//!
//! On the ledger (events built by the kernel's `login_event`, action `login`):
//!
//! - a suspension on an alert: the suspended user as actor, outcome `deny`, basis
//!   `suspended-by-alert`;
//! - a suspension by an administrator: the administrator as actor, basis `suspended-by-admin`;
//! - a reinstatement: the administrator as actor, basis `reinstated`.
//!
//! Only an administrator reinstates ([`Suspensions::reinstate`] takes an [`Administrator`]);
//! nothing lifts a suspension on a timer (the lockout sweep lifts login lockouts, never
//! suspensions).

use chrono::Utc;
use custodian_access::AccessLog;
use custodian_auth::DenyList;
use custodian_database::Pool;
use custodian_events::{outbox, outbox::Relay, AccessOutcome, Actor, IdentityEvent, Streams};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    error::Unexpected,
    login::{basis, patient_of, user_actor, Attempt},
    metrics::IdentityMetrics,
    models::{user, User},
};

/// An administrator acting through the admin API, and where the request came from.
#[derive(Debug, Clone)]
pub struct Administrator {
    pub actor: Actor,
    pub attempt: Attempt,
}

/// Why a user is suspended.
#[derive(Debug, Clone)]
pub enum Cause {
    /// A signed anomaly alert asked for it.
    Alert,
    /// Boxed: an administrator's actor and request are large beside `Alert`.
    Administrator(Box<Administrator>),
}

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
    log: AccessLog,
}

impl Suspensions {
    pub fn new(
        pool: Pool,
        streams: Streams,
        relay: Relay,
        metrics: IdentityMetrics,
        deny: DenyList,
        log: AccessLog,
    ) -> Self {
        Self {
            pool,
            streams,
            relay,
            metrics,
            deny,
            log,
        }
    }

    /// Suspends the user and publishes `UserSuspended`.
    pub async fn suspend(
        &self,
        user_id: Uuid,
        reason: &str,
        cause: Cause,
    ) -> Result<Change, SuspensionError> {
        self.set(user_id, Some(reason.to_string()), cause).await
    }

    /// Reinstates the user and publishes `UserReinstated`: an administrator's act only.
    pub async fn reinstate(
        &self,
        user_id: Uuid,
        administrator: Administrator,
    ) -> Result<Change, SuspensionError> {
        self.set(user_id, None, Cause::Administrator(Box::new(administrator)))
            .await
    }

    async fn set(
        &self,
        user_id: Uuid,
        reason: Option<String>,
        cause: Cause,
    ) -> Result<Change, SuspensionError> {
        let mut conn = self.pool.get().await.map_err(Unexpected::from)?;
        let stream = self.streams.identity();
        let log = self.log.clone();
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
                let audit = match (&cause, reason.is_some()) {
                    (Cause::Alert, _) => Attempt::internal().event_as(
                        Some(user_actor(&updated)),
                        patient_of(&updated),
                        Some(format!("User/{user_id}")),
                        AccessOutcome::Deny,
                        basis::SUSPENDED_BY_ALERT,
                    ),
                    (Cause::Administrator(admin), suspending) => admin.attempt.event_as(
                        Some(admin.actor.clone()),
                        patient_of(&updated),
                        Some(format!("User/{user_id}")),
                        AccessOutcome::Permit,
                        if suspending {
                            basis::SUSPENDED_BY_ADMIN
                        } else {
                            basis::REINSTATED
                        },
                    ),
                };
                log.enqueue(conn, &[audit]).await.map_err(|e| {
                    SuspensionError::Unexpected(Unexpected(format!("access events: {e}")))
                })?;
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
