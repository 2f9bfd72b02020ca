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
    tags(
        (name = "tokens", description = "OAuth2 token issuance and revocation"),
        (name = "discovery", description = "JWKS and server metadata"),
        (name = "admin", description = "Organisations, users, clients and keys (administrators)"),
        (name = "internal", description = "Service-to-service; never forwarded by the gateway"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of every public endpoint. Identity defines the `smart` security scheme
/// the other services' operations name: it issues the tokens and knows their scopes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use custodian_auth::openapi::{describe_scope, finish, smart_scheme, SMART};
    let mut doc = ApiDoc::openapi();
    let scopes = documented_scopes()
        .into_iter()
        .map(|scope| (scope.clone(), describe_scope(&scope)));
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(SMART, smart_scheme(scopes));
    finish(&mut doc, "identity");
    doc
}

/// The scopes the OpenAPI document lists: every scope some role can get (as the discovery
/// documents list them, SMART v2), with the v1 spellings of the same grants.
pub fn documented_scopes() -> Vec<String> {
    let mut scopes = tokens::all_scopes();
    let v1: Vec<String> = scopes
        .iter()
        .flat_map(|scope| {
            let (base, letters) = scope.rsplit_once('.').unwrap_or((scope, ""));
            let spellings: &[&str] = match letters {
                "rs" => &["read"],
                "cruds" => &["read", "write", "*"],
                _ => &[],
            };
            spellings.iter().map(move |p| format!("{base}.{p}"))
        })
        .collect();
    for scope in v1 {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes
}

#[cfg(test)]
mod openapi_tests {
    use super::*;
    use custodian_auth::Role;

    #[test]
    fn every_documented_scope_is_granted_to_some_role() {
        let scopes = documented_scopes();
        for wanted in [
            "patient/*.read",
            "user/*.write",
            "system/*.read",
            "openid",
            "fhirUser",
        ] {
            assert!(scopes.iter().any(|s| s == wanted), "{wanted} missing");
        }
        for scope in &scopes {
            assert!(
                [
                    Role::Admin,
                    Role::Practitioner,
                    Role::Patient,
                    Role::Auditor,
                    Role::Service
                ]
                .into_iter()
                .any(|role| tokens::grant(role, Some(scope)).is_ok()),
                "{scope} is documented but no role can get it"
            );
        }
    }

    #[test]
    fn the_smart_scheme_names_the_token_endpoint() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let scheme = &doc["components"]["securitySchemes"]["smart"];
        assert_eq!(scheme["type"], "oauth2");
        assert_eq!(scheme["flows"]["password"]["tokenUrl"], "/auth/token");
        assert_eq!(
            scheme["flows"]["clientCredentials"]["tokenUrl"],
            "/auth/token"
        );
        assert!(scheme["flows"]["password"]["scopes"]["patient/*.rs"].is_string());
        assert!(scheme["flows"].get("authorizationCode").is_none());
    }
}
