//! Logins: who may try, how often, at what cost, and the access event of every attempt.
//!
//! Every password or client-secret check goes through [`Logins::authenticate`], in this order:
//! 1. **Address throttle** (in memory, bounded): more than `LOGIN_ADDRESS_MAX_FAILURES` failures
//!    from one address (IPv6: its /64) within `LOGIN_ADDRESS_WINDOW_SECONDS` answer 429 with
//!    `Retry-After`, before any work. The address is the peer, or what a trusted proxy
//!    (`TRUSTED_PROXIES`) says in `X-Forwarded-For`; a client's own header is not believed.
//! 2. **Lockout** (in PostgreSQL, so it survives restarts and holds on every replica):
//!    `LOGIN_MAX_FAILURES` failures of one account or client within
//!    `LOGIN_FAILURE_WINDOW_SECONDS` lock it for `LOGIN_LOCKOUT_SECONDS`, or until an
//!    administrator unlocks it. A locked account is refused even with the right password, with
//!    no hash computed. Unknown usernames lock the same way (in memory), so the answers do not
//!    tell which usernames exist.
//! 3. **Bounded hashing** ([`Hasher`]): a full queue answers 503 with `Retry-After` at once.
//!    Unknown usernames may fill at most half the queue, so a flood of made-up names from many
//!    addresses leaves room for real users (under such a flood, an unknown name is refused
//!    sooner than a real one: the price of that room).
//!
//! Each attempt leaves an access event built by the access kernel's `login_event`: the basis
//! is `bad-credentials`, `locked-out`, `throttled` or `suspended` for denials and `password` or
//! `client-credentials` for a success. Setting a lockout is an event of its own (`locked-out`),
//! and so is lifting one (`unlocked`: the administrator's, or identity's when it expires).

use std::time::Duration;

use actix_web::HttpRequest;
use custodian_access::{
    login_event, request_id_of, source_of, AccessLog, LoginAttempt, PatientRef, TrustedProxies,
};
use custodian_database::Pool;
use custodian_events::{AccessEvent, AccessOutcome, Actor, Source};
use tokio_util::sync::CancellationToken;

use crate::{
    configuration::LoginSettings,
    error::Unexpected,
    hashing::{HashError, Hasher, Lane},
    metrics::IdentityMetrics,
    models::{
        client,
        login_lockout::{self, PrincipalKind},
        user, Client, User,
    },
    throttle::{AddressKey, Buckets, Strikes, MAX_KEYS},
};

/// Basis codes of login events.
pub mod basis {
    pub const BAD_CREDENTIALS: &str = "bad-credentials";
    pub const LOCKED_OUT: &str = custodian_access::LOCKED_OUT_BASIS;
    pub const THROTTLED: &str = "throttled";
    pub const SUSPENDED: &str = "suspended";
    pub const SCOPE: &str = "scope";
    pub const PASSWORD: &str = "password";
    pub const CLIENT_CREDENTIALS: &str = "client-credentials";
    pub const UNLOCKED: &str = "unlocked";
    /// The user (actor) was suspended on a signed anomaly alert.
    pub const SUSPENDED_BY_ALERT: &str = "suspended-by-alert";
    /// An administrator (actor) suspended a user.
    pub const SUSPENDED_BY_ADMIN: &str = "suspended-by-admin";
    /// An administrator (actor) reinstated a suspended user: the only way a suspension ends.
    pub const REINSTATED: &str = "reinstated";
}

/// How long a client should wait after a 503 because every hash slot was taken.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where one login attempt came from.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub source: Source,
    pub request_id: Option<String>,
    address: Option<AddressKey>,
}

impl Attempt {
    pub fn of(req: &HttpRequest, trusted: &TrustedProxies) -> Self {
        let source = source_of(req, trusted);
        let address = source.ip.as_deref().and_then(AddressKey::parse);
        Self {
            source,
            request_id: request_id_of(req),
            address,
        }
    }

    /// An attempt nobody made from anywhere (events identity writes on its own).
    pub fn internal() -> Self {
        Self {
            source: Source::default(),
            request_id: None,
            address: None,
        }
    }

    /// The access event of this attempt by `principal`.
    pub fn event(
        &self,
        principal: &Principal<'_>,
        outcome: AccessOutcome,
        basis: &str,
    ) -> AccessEvent {
        self.event_as(principal.actor(), principal.patient(), None, outcome, basis)
    }

    /// The access event of this attempt with an explicit actor (an administrator's unlock),
    /// naming the `account` acted on when it is not the actor.
    pub fn event_as(
        &self,
        actor: Option<Actor>,
        patient: Option<PatientRef>,
        account: Option<String>,
        outcome: AccessOutcome,
        basis: &str,
    ) -> AccessEvent {
        login_event(
            LoginAttempt {
                actor,
                patient: patient.as_ref(),
                source: self.source.clone(),
                request_id: self.request_id.clone(),
                account,
            },
            outcome,
            basis,
        )
    }
}

/// Who is trying to log in.
#[derive(Debug, Clone, Copy)]
pub enum Principal<'a> {
    User(&'a User),
    Client(&'a Client),
    /// A username or client id that does not exist; `key` names it for the in-memory lockout.
    Unknown {
        key: &'a str,
    },
}

impl Principal<'_> {
    pub fn actor(&self) -> Option<Actor> {
        match self {
            Principal::User(u) => Some(user_actor(u)),
            Principal::Client(c) => Some(client_actor(c)),
            Principal::Unknown { .. } => None,
        }
    }

    /// A patient user's own compartment: her logins are shown to her.
    pub fn patient(&self) -> Option<PatientRef> {
        match self {
            Principal::User(u) => patient_of(u),
            _ => None,
        }
    }

    fn lockout_key(&self) -> Option<(PrincipalKind, String)> {
        match self {
            Principal::User(u) => Some((PrincipalKind::User, u.id.to_string())),
            Principal::Client(c) => Some((PrincipalKind::Client, c.client_id.clone())),
            Principal::Unknown { .. } => None,
        }
    }
}

pub fn user_actor(u: &User) -> Actor {
    Actor {
        id: u.id.to_string(),
        role: u.role.clone(),
        organization: u.organization_ref(),
        department: u.department.clone(),
        practitioner: u.practitioner_ref.clone(),
    }
}

pub fn client_actor(c: &Client) -> Actor {
    Actor {
        id: c.client_id.clone(),
        role: c.role.clone(),
        organization: c
            .organization_id
            .map(crate::domain::OrganizationId::reference),
        department: None,
        practitioner: None,
    }
}

pub fn patient_of(u: &User) -> Option<PatientRef> {
    u.patient_ref
        .as_deref()
        .filter(|_| u.role == "patient")
        .and_then(|p| PatientRef::parse_lenient(p).ok())
}

/// The in-memory key of an unknown username or client id (bounded in length).
pub fn unknown_key(kind: PrincipalKind, name: &str) -> String {
    let name: String = name.trim().to_lowercase().chars().take(128).collect();
    format!("{}:{name}", kind.as_str())
}

/// Why an attempt was refused (its event is already recorded).
#[derive(Debug, thiserror::Error)]
pub enum LoginFailure {
    #[error("too many failed logins from this address")]
    Throttled { retry_after: Duration },
    #[error("locked out")]
    LockedOut,
    #[error("too many logins at once")]
    Busy { retry_after: Duration },
    #[error("bad credentials")]
    BadCredentials,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Login throttling, lockouts and bounded hashing (see the module documentation).
#[derive(Clone)]
pub struct Logins {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    settings: LoginSettings,
    hasher: Hasher,
    addresses: Buckets<AddressKey>,
    unknown: Strikes<String>,
    pool: Pool,
    log: AccessLog,
    metrics: IdentityMetrics,
    /// Checked against when the username or client id is unknown, so "no such user" costs as
    /// much as a wrong password and timing reveals no usernames.
    dummy_hash: String,
}

impl Logins {
    pub fn new(
        settings: LoginSettings,
        pool: Pool,
        log: AccessLog,
        metrics: IdentityMetrics,
        dummy_hash: String,
    ) -> Self {
        let hasher = Hasher::new(
            settings.hash_concurrency,
            settings.hash_queue,
            settings.hash_wait,
        );
        let addresses = Buckets::new(
            settings.address_max_failures,
            settings.address_window,
            MAX_KEYS,
        );
        let unknown = Strikes::new(
            settings.max_failures,
            settings.failure_window,
            settings.lockout,
            MAX_KEYS,
        );
        Self {
            inner: std::sync::Arc::new(Inner {
                settings,
                hasher,
                addresses,
                unknown,
                pool,
                log,
                metrics,
                dummy_hash,
            }),
        }
    }

    pub fn settings(&self) -> &LoginSettings {
        &self.inner.settings
    }

    pub fn hasher(&self) -> &Hasher {
        &self.inner.hasher
    }

    /// Writes events to the outbox (durable before the answer) and wakes the relay.
    pub async fn record(&self, events: &[AccessEvent]) -> Result<(), Unexpected> {
        let mut conn = self.inner.pool.get().await?;
        self.inner
            .log
            .record(&mut conn, events)
            .await
            .map_err(|e| Unexpected(format!("access events: {e}")))
    }

    async fn deny(
        &self,
        attempt: &Attempt,
        principal: &Principal<'_>,
        basis: &str,
        failure: LoginFailure,
    ) -> Result<(), LoginFailure> {
        self.record(&[attempt.event(principal, AccessOutcome::Deny, basis)])
            .await?;
        Err(failure)
    }

    /// Checks `secret` for `principal` (against `phc`, its stored hash), throttled, bounded and
    /// recorded as the module documentation says. On success nothing is recorded yet: the
    /// grant records its own event once it has decided (suspended, scope, permit).
    pub async fn authenticate(
        &self,
        attempt: &Attempt,
        principal: Principal<'_>,
        secret: String,
        phc: Option<&str>,
    ) -> Result<(), LoginFailure> {
        let inner = &self.inner;
        if let Some(retry_after) = attempt.address.and_then(|a| inner.addresses.throttled(&a)) {
            inner
                .metrics
                .login_throttled
                .with_label_values(&["address"])
                .inc();
            return self
                .deny(
                    attempt,
                    &principal,
                    basis::THROTTLED,
                    LoginFailure::Throttled { retry_after },
                )
                .await;
        }
        let locked = match (&principal, principal.lockout_key()) {
            (_, Some((kind, id))) => {
                let mut conn = inner.pool.get().await.map_err(Unexpected::from)?;
                login_lockout::locked_until(&mut conn, kind, &id)
                    .await
                    .map_err(Unexpected::from)?
                    .is_some()
            }
            (Principal::Unknown { key }, None) => inner.unknown.locked(&key.to_string()),
            _ => false,
        };
        if locked {
            self.address_failed(attempt);
            return self
                .deny(
                    attempt,
                    &principal,
                    basis::LOCKED_OUT,
                    LoginFailure::LockedOut,
                )
                .await;
        }
        let (lane, phc) = match phc {
            Some(phc) => (Lane::Account, phc.to_string()),
            None => (Lane::Unknown, inner.dummy_hash.clone()),
        };
        let matches = match inner.hasher.verify(lane, secret, phc).await {
            Ok(matches) => matches,
            Err(HashError::Busy) => {
                inner
                    .metrics
                    .login_throttled
                    .with_label_values(&["busy"])
                    .inc();
                return self
                    .deny(
                        attempt,
                        &principal,
                        basis::THROTTLED,
                        LoginFailure::Busy {
                            retry_after: BUSY_RETRY_AFTER,
                        },
                    )
                    .await;
            }
            Err(e) => return Err(Unexpected::from(e).into()),
        };
        let lockout_key = principal.lockout_key();
        if matches {
            if let Some((kind, id)) = lockout_key {
                let mut conn = inner.pool.get().await.map_err(Unexpected::from)?;
                login_lockout::forgive(&mut conn, kind, &id)
                    .await
                    .map_err(Unexpected::from)?;
                return Ok(());
            }
        }
        // A wrong secret, or any secret for an unknown principal.
        self.address_failed(attempt);
        let mut events =
            vec![attempt.event(&principal, AccessOutcome::Deny, basis::BAD_CREDENTIALS)];
        match (lockout_key, &principal) {
            (Some((kind, id)), _) => {
                let mut conn = inner.pool.get().await.map_err(Unexpected::from)?;
                let failure = login_lockout::record_failure(
                    &mut conn,
                    kind,
                    &id,
                    inner.settings.max_failures,
                    inner.settings.failure_window,
                    inner.settings.lockout,
                )
                .await
                .map_err(Unexpected::from)?;
                if failure.newly_locked {
                    inner.metrics.login_lockouts.inc();
                    tracing::warn!(
                        principal_kind = kind.as_str(),
                        principal_id = %id,
                        locked_until = ?failure.locked_until,
                        "locked out after repeated failed logins"
                    );
                    events.push(attempt.event(&principal, AccessOutcome::Deny, basis::LOCKED_OUT));
                }
            }
            (None, Principal::Unknown { key }) => inner.unknown.fail(&key.to_string()),
            (None, _) => {}
        }
        self.record(&events).await?;
        Err(LoginFailure::BadCredentials)
    }

    fn address_failed(&self, attempt: &Attempt) {
        if let Some(address) = attempt.address {
            self.inner.addresses.fail(&address);
        }
    }

    /// An administrator lifts `kind`/`id`'s lockout; the event names the administrator as actor
    /// (and a patient user's compartment, so she sees it). Returns whether one was in force.
    pub async fn unlock(
        &self,
        attempt: &Attempt,
        administrator: Actor,
        kind: PrincipalKind,
        id: &str,
        patient: Option<PatientRef>,
    ) -> Result<bool, Unexpected> {
        let mut conn = self.inner.pool.get().await?;
        let was_locked = login_lockout::unlock(&mut conn, kind, id).await?;
        let event = attempt.event_as(
            Some(administrator),
            patient,
            Some(kind.account_reference(id)),
            AccessOutcome::Permit,
            basis::UNLOCKED,
        );
        self.inner
            .log
            .record(&mut conn, &[event])
            .await
            .map_err(|e| Unexpected(format!("access events: {e}")))?;
        tracing::info!(principal_kind = kind.as_str(), principal_id = %id, was_locked, "login lockout lifted by an administrator");
        Ok(was_locked)
    }

    /// Lifts lockouts whose time has passed (each an `unlocked` event with the account as
    /// actor and no source) and forgets stale failure counts.
    pub async fn sweep(&self) -> Result<usize, Unexpected> {
        let mut conn = self.inner.pool.get().await?;
        let lifted = login_lockout::expire(&mut conn).await?;
        let attempt = Attempt::internal();
        let mut events = Vec::with_capacity(lifted.len());
        for (kind, id) in &lifted {
            let event = match kind {
                PrincipalKind::User => {
                    let found = match id.parse::<uuid::Uuid>() {
                        Ok(uuid) => user::find(&mut conn, uuid).await?,
                        Err(_) => None,
                    };
                    found.map(|u| {
                        attempt.event(&Principal::User(&u), AccessOutcome::Permit, basis::UNLOCKED)
                    })
                }
                PrincipalKind::Client => client::find(&mut conn, id).await?.map(|c| {
                    attempt.event(
                        &Principal::Client(&c),
                        AccessOutcome::Permit,
                        basis::UNLOCKED,
                    )
                }),
            };
            events.extend(event);
        }
        if !events.is_empty() {
            self.inner
                .log
                .record(&mut conn, &events)
                .await
                .map_err(|e| Unexpected(format!("access events: {e}")))?;
        }
        login_lockout::purge(&mut conn, self.inner.settings.failure_window).await?;
        Ok(lifted.len())
    }

    /// How often [`Logins::sweep`] runs: half the lockout, between 1 and 30 seconds.
    pub fn sweep_interval(&self) -> Duration {
        (self.inner.settings.lockout / 2).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// Sweeps until cancelled.
    pub async fn run_sweeper(self, token: CancellationToken) {
        let interval = self.sweep_interval();
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(lifted = n, "expired login lockouts lifted"),
                Err(e) => tracing::warn!(error = %e, "login lockouts could not be swept"),
            }
        }
    }
}
