//! Discovery: the JWKS verifiers fetch, and the OpenID / SMART configuration documents.

pub mod discovery;
pub mod jwks;
