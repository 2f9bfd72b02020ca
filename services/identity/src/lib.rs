//! Identity: who may act in Custodian. It issues the ES256 access tokens every other service
//! verifies, publishes their keys, and decides who is suspended.
//!
//! - [`configuration`]: settings from the environment (`docs/contracts.md`).
//! - [`startup`]: builds the application (database, migrations, keys, background tasks, server).
//! - [`routes`]: the HTTP endpoints: `/auth/token`, `/auth/revoke`, the admin API under
//!   `/auth/admin`, discovery under `/.well-known`, and `/internal/suspended`.
//! - [`domain`]: input types that parse (usernames, passwords, references).
//! - [`models`] and [`schema`]: the tables and their queries.
//! - [`keys`]: the signing keys (generation, rotation, JWKS); [`tokens`]: scopes and signing.
//! - [`suspension`]: suspending users and publishing it; [`consumers`]: the alerts consumer.
//! - [`hashing`]: argon2id for passwords and client secrets, bounded; [`bootstrap`]: the first
//!   admin.
//! - [`login`]: login throttling, lockouts and login access events; [`throttle`]: the bounded
//!   in-memory buckets it keeps per address.
//! - [`error`]: every error and its HTTP answer; [`metrics`]: identity's counters.

use custodian_auth::openapi::BearerAuth;
pub mod bootstrap;
pub mod configuration;
pub mod consumers;
pub mod domain;
pub mod error;
pub mod hashing;
pub mod keys;
pub mod login;
pub mod metrics;
pub mod models;
pub mod routes;
pub mod schema;
pub mod startup;
pub mod state;
pub mod suspension;
pub mod throttle;
pub mod tokens;

use utoipa::OpenApi as _;

use routes::{admin, internal, token, well_known};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Custodian identity", description = "Tokens, keys, users and suspensions."),
    paths(
        token::issue::token,
        token::revoke::revoke,
        well_known::jwks::jwks,
        well_known::discovery::openid_configuration,
        well_known::discovery::smart_configuration,
        well_known::discovery::fhir_smart_configuration,
        admin::organizations::create,
        admin::organizations::list,
        admin::users::create,
        admin::users::read,
        admin::users::suspend,
        admin::users::reinstate,
        admin::users::unlock,
        admin::clients::create,
        admin::clients::unlock,
        admin::keys::rotate,
        internal::suspended::suspended,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "OAuth2 token issuance and revocation"),
        (name = "discovery", description = "JWKS and server metadata"),
        (name = "admin", description = "Organisations, users, clients and keys (administrators)"),
        (name = "internal", description = "Service-to-service; never forwarded by the gateway"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of every public endpoint.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
