//! Token signing keys: ES256 (P-256) keys generated with OpenSSL and kept in PostgreSQL, so every
//! replica signs with the same active key and a restart keeps old tokens verifiable.
//!
//! Exactly one key is active. Rotation retires it and creates a new one in one transaction; a
//! retired key stays in the JWKS for one token lifetime (plus a margin for clock skew), so
//! tokens signed before the rotation verify until they expire. The `kid` is the key's RFC 7638
//! thumbprint.
//!
//! Other replicas learn of a rotation when they next reload (every 30 s) and keep signing with
//! the retired key until then; the margin below outlasts that, so their tokens verify too.

use std::sync::{Arc, RwLock};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use custodian_auth::TokenVerifier;
use custodian_database::Pool;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use jsonwebtoken::{
    jwk::{Jwk, JwkSet},
    EncodingKey,
};
use openssl::{
    bn::{BigNum, BigNumContext},
    ec::{EcGroup, EcKey},
    nid::Nid,
    pkey::PKey,
};
use sha2::{Digest, Sha256};

use crate::schema::signing_keys;

/// Seconds a retired key outlives the token lifetime in the JWKS (verifiers allow 30 s leeway).
const RETIRED_MARGIN_SECONDS: i64 = 120;

/// Serialises key creation across replicas starting at the same time.
const KEY_LOCK: i64 = 0x4944_454e_5449_5459; // "IDENTITY"

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(String),
    #[error("key material: {0}")]
    Crypto(String),
    #[error("no active signing key")]
    NoActiveKey,
}

impl From<openssl::error::ErrorStack> for KeyError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        KeyError::Crypto(e.to_string())
    }
}

impl From<jsonwebtoken::errors::Error> for KeyError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        KeyError::Crypto(e.to_string())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys, check_for_backend(diesel::pg::Pg))]
struct StoredKey {
    kid: String,
    private_key_pem: String,
    public_jwk: serde_json::Value,
    #[allow(dead_code)]
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

/// The key tokens are signed with.
pub struct ActiveKey {
    pub kid: String,
    pub key: EncodingKey,
}

struct Loaded {
    active: Arc<ActiveKey>,
    jwks: JwkSet,
}

/// The outcome of a rotation.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub kid: String,
    pub retired: Vec<String>,
}

/// The current key set, shared by handlers; reloaded from the database after a rotation and
/// periodically (another replica may have rotated).
#[derive(Clone)]
pub struct Keys {
    pool: Pool,
    verifier: TokenVerifier,
    token_ttl_seconds: i64,
    loaded: Arc<RwLock<Arc<Loaded>>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new P-256 key: its kid, PKCS#8 PEM private key and public JWK.
fn generate() -> Result<(String, String, serde_json::Value), KeyError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let ec = EcKey::generate(&group)?;
    let mut ctx = BigNumContext::new()?;
    let mut x = BigNum::new()?;
    let mut y = BigNum::new()?;
    ec.public_key()
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)?;
    let x = b64(&x.to_vec_padded(32)?);
    let y = b64(&y.to_vec_padded(32)?);
    // RFC 7638: the thumbprint hashes the required members in lexicographic order, no spaces.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = b64(&Sha256::digest(canonical.as_bytes()));
    let pem = PKey::from_ec_key(ec)?.private_key_to_pem_pkcs8()?;
    let pem = String::from_utf8(pem).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid, "x": x, "y": y,
    });
    Ok((kid, pem, jwk))
}

impl Keys {
    /// Loads the key set, creating the first key when there is none.
    pub async fn load(
        pool: Pool,
        verifier: TokenVerifier,
        token_ttl_seconds: i64,
    ) -> Result<Self, KeyError> {
        {
            let mut conn = pool
                .get()
                .await
                .map_err(|e| KeyError::Pool(e.to_string()))?;
            conn.transaction::<_, KeyError, _>(async move |conn| {
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({KEY_LOCK})"))
                    .execute(conn)
                    .await?;
                let active: i64 = signing_keys::table
                    .filter(signing_keys::retired_at.is_null())
                    .count()
                    .get_result(conn)
                    .await?;
                if active == 0 {
                    let (kid, pem, jwk) = generate()?;
                    diesel::insert_into(signing_keys::table)
                        .values((
                            signing_keys::kid.eq(&kid),
                            signing_keys::private_key_pem.eq(&pem),
                            signing_keys::public_jwk.eq(&jwk),
                        ))
                        .execute(conn)
                        .await?;
                    tracing::info!(kid = %kid, "first signing key created");
                }
                Ok(())
            })
            .await?;
        }
        let loaded = Self::read(&pool, token_ttl_seconds).await?;
        verifier.set_keys(&loaded.jwks);
        Ok(Self {
            pool,
            verifier,
            token_ttl_seconds,
            loaded: Arc::new(RwLock::new(Arc::new(loaded))),
        })
    }

    async fn read(pool: &Pool, token_ttl_seconds: i64) -> Result<Loaded, KeyError> {
        let mut conn = pool
            .get()
            .await
            .map_err(|e| KeyError::Pool(e.to_string()))?;
        let cutoff =
            Utc::now() - chrono::Duration::seconds(token_ttl_seconds + RETIRED_MARGIN_SECONDS);
        let stored: Vec<StoredKey> = signing_keys::table
            .filter(
                signing_keys::retired_at
                    .is_null()
                    .or(signing_keys::retired_at.gt(cutoff)),
            )
            .order(signing_keys::created_at.desc())
            .select(StoredKey::as_select())
            .load(&mut conn)
            .await?;
        let mut active = None;
        let mut keys = Vec::with_capacity(stored.len());
        for key in stored {
            let jwk: Jwk = serde_json::from_value(key.public_jwk)
                .map_err(|e| KeyError::Crypto(e.to_string()))?;
            keys.push(jwk);
            if key.retired_at.is_none() {
                let encoding = EncodingKey::from_ec_pem(key.private_key_pem.as_bytes())?;
                active = Some(Arc::new(ActiveKey {
                    kid: key.kid,
                    key: encoding,
                }));
            }
        }
        let active = active.ok_or(KeyError::NoActiveKey)?;
        Ok(Loaded {
            active,
            jwks: JwkSet { keys },
        })
    }

    /// Re-reads the keys (after a rotation here or on another replica) and hands them to the
    /// verifier identity checks its own tokens with.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let loaded = Self::read(&self.pool, self.token_ttl_seconds).await?;
        self.verifier.set_keys(&loaded.jwks);
        if let Ok(mut current) = self.loaded.write() {
            *current = Arc::new(loaded);
        }
        Ok(())
    }

    /// Retires the active key and creates a new one.
    pub async fn rotate(&self) -> Result<Rotation, KeyError> {
        let (kid, pem, jwk) = generate()?;
        let rotation = {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| KeyError::Pool(e.to_string()))?;
            let new_kid = kid.clone();
            conn.transaction::<_, KeyError, _>(async move |conn| {
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({KEY_LOCK})"))
                    .execute(conn)
                    .await?;
                let retired: Vec<String> =
                    diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
                        .set(signing_keys::retired_at.eq(Utc::now()))
                        .returning(signing_keys::kid)
                        .get_results(conn)
                        .await?;
                diesel::insert_into(signing_keys::table)
                    .values((
                        signing_keys::kid.eq(&new_kid),
                        signing_keys::private_key_pem.eq(&pem),
                        signing_keys::public_jwk.eq(&jwk),
                    ))
                    .execute(conn)
                    .await?;
                Ok(Rotation {
                    kid: new_kid,
                    retired,
                })
            })
            .await?
        };
        tracing::info!(kid = %rotation.kid, retired = ?rotation.retired, "signing key rotated");
        self.reload().await?;
        Ok(rotation)
    }

    /// The key to sign with now.
    pub fn active(&self) -> Option<Arc<ActiveKey>> {
        self.loaded.read().ok().map(|l| l.active.clone())
    }

    /// The public keys verifiers accept: the active key and recently retired ones.
    pub fn jwks(&self) -> JwkSet {
        self.loaded
            .read()
            .map(|l| l.jwks.clone())
            .unwrap_or(JwkSet { keys: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify() {
        let (kid, pem, jwk) = generate().unwrap();
        assert_eq!(jwk["kid"], kid.as_str());
        assert_eq!(kid.len(), 43, "a base64url SHA-256 thumbprint");
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid);
        let token = jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "x", "exp": 4_000_000_000_i64}),
            &encoding,
        )
        .unwrap();
        let jwk: Jwk = serde_json::from_value(jwk).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
    }

    #[test]
    fn kids_differ_between_keys() {
        assert_ne!(generate().unwrap().0, generate().unwrap().0);
    }
}
