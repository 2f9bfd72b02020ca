//! What handlers share, built once in `startup`.

use custodian_access::{settings::AccessSettings, AccessLog};
use custodian_auth::TokenVerifier;
use custodian_database::Pool;
use custodian_events::{outbox::Relay, Streams};

use crate::{
    configuration::TokenSettings, keys::Keys, login::Logins, metrics::IdentityMetrics,
    suspension::Suspensions,
};

pub struct AppState {
    pub pool: Pool,
    pub keys: Keys,
    pub tokens: TokenSettings,
    pub streams: Streams,
    /// Woken after an event is enqueued so it is published at once.
    pub relay: Relay,
    pub metrics: IdentityMetrics,
    /// Identity's verifier of its own tokens (admin API, revocation).
    pub verifier: TokenVerifier,
    pub suspensions: Suspensions,
    /// The access kernel's settings (`TRUSTED_PROXIES` decides whose `X-Forwarded-For` is
    /// believed for a login's source).
    pub access: AccessSettings,
    /// The one way access events leave identity.
    pub access_log: AccessLog,
    /// Throttling, lockouts and bounded hashing of logins.
    pub logins: Logins,
}
