//! What handlers share, built once in `startup`.

use custodian_auth::TokenVerifier;
use custodian_database::Pool;
use custodian_events::{outbox::Relay, Streams};

use crate::{
    configuration::TokenSettings, keys::Keys, metrics::IdentityMetrics, suspension::Suspensions,
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
    /// A hash checked against when a username or client id is unknown, so that answering
    /// "no such user" takes as long as "wrong password" and timing reveals no usernames.
    pub dummy_hash: String,
}
