//! Who is asking: the token claims Custodian issues, their verification against identity's
//! JWKS, the deny list (suspended users, revoked tokens), and the actix extractor handlers use.
//!
//! Tokens are ES256 JWTs issued by identity. Verification needs no call to identity on the hot
//! path: keys are cached and refreshed when an unknown `kid` appears (key rotation); suspensions
//! and revocations arrive on the identity stream and are applied to the [`DenyList`].

pub mod cache;
pub mod claims;
pub mod deny;
pub mod error;
pub mod extract;
pub mod verify;

#[cfg(feature = "testing")]
pub mod testing;

pub use claims::{Claims, Role};
pub use deny::DenyList;
pub use error::AuthError;
pub use extract::Authenticated;
pub use verify::TokenVerifier;

/// The audience every Custodian token carries.
pub const AUDIENCE: &str = "custodian";
