//! Who is asking: the token claims Custodian issues, their verification against identity's
//! JWKS, the deny list (suspended users, revoked tokens), and the actix extractor handlers use.
//!
//! Tokens are ES256 JWTs issued by identity. Verification needs no call to identity on the hot
//! path: keys are cached and refreshed when an unknown `kid` appears (key rotation); suspensions
//! and revocations are loaded from identity's snapshot and then arrive on the identity stream
//! ([`deny::follow`], used by every service that verifies tokens).
//!
//! [`internal`]: the service credential `/internal/*` endpoints require.

pub mod cache;
pub mod claims;
pub mod deny;
pub mod error;
pub mod extract;
pub mod internal;
pub mod openapi;
pub mod source;
pub mod verify;

#[cfg(feature = "testing")]
pub mod testing;

pub use claims::{Claims, Role};
pub use deny::{DenyList, DenySnapshot};
pub use error::AuthError;
pub use extract::Authenticated;
pub use internal::{InternalCaller, InternalToken};
pub use verify::TokenVerifier;

/// `TOKEN_ISSUER` and `JWKS_URL`, read the same way by every service that verifies tokens.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The `iss` of every token: identity's public base URL.
    pub issuer: String,
    /// Where identity publishes its keys.
    pub jwks_url: String,
}

impl AuthSettings {
    pub fn from_env(env: &custodian_telemetry::Env) -> Self {
        Self {
            issuer: env
                .string("TOKEN_ISSUER", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
            jwks_url: env.string("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json"),
        }
    }

    /// A verifier of tokens against the JWKS, with the given deny list.
    pub fn verifier(&self, deny: DenyList) -> TokenVerifier {
        TokenVerifier::remote(self.jwks_url.clone(), self.issuer.clone(), deny)
    }
}

/// The audience every Custodian token carries.
pub const AUDIENCE: &str = "custodian";
