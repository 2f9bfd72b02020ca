//! Token verification against cached JWKS keys.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};

use crate::{cache::VerifiedTokens, AuthError, Claims, DenyList, AUDIENCE};

/// Refetching the JWKS for an unknown `kid` at most this often keeps forged `kid`s from turning
/// into a flood of requests to identity.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    jwks_url: Option<String>,
    issuer: String,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_refresh: Mutex<Option<Instant>>,
    deny: DenyList,
    verified: VerifiedTokens,
}

impl TokenVerifier {
    /// Verifies tokens with keys fetched from `jwks_url` (identity's JWKS).
    pub fn remote(jwks_url: impl Into<String>, issuer: impl Into<String>, deny: DenyList) -> Self {
        Self::build(Some(jwks_url.into()), issuer.into(), deny)
    }

    /// Verifies tokens with keys the caller sets (identity verifies its own tokens).
    pub fn local(issuer: impl Into<String>, deny: DenyList) -> Self {
        Self::build(None, issuer.into(), deny)
    }

    fn build(jwks_url: Option<String>, issuer: String, deny: DenyList) -> Self {
        Self {
            inner: Arc::new(Inner {
                jwks_url,
                issuer,
                keys: RwLock::new(HashMap::new()),
                last_refresh: Mutex::new(None),
                deny,
                verified: VerifiedTokens::new(),
            }),
        }
    }

    pub fn deny_list(&self) -> &DenyList {
        &self.inner.deny
    }

    /// Replaces the known keys with those of `jwks`.
    pub fn set_keys(&self, jwks: &JwkSet) {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            if let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                keys.insert(kid, key);
            }
        }
        if let Ok(mut known) = self.inner.keys.write() {
            *known = keys;
        }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.inner
            .keys
            .read()
            .ok()
            .and_then(|k| k.get(kid).cloned())
    }

    /// Fetches the JWKS (rate limited). Must run on an actix runtime (it uses awc).
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let Some(url) = self.inner.jwks_url.clone() else {
            return Ok(());
        };
        {
            let Ok(mut last) = self.inner.last_refresh.lock() else {
                return Ok(());
            };
            if last.is_some_and(|t| t.elapsed() < MIN_REFRESH_INTERVAL)
                && !self.inner.keys.read().map(|k| k.is_empty()).unwrap_or(true)
            {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(5))
            .connector(
                awc::Connector::new().openssl(custodian_telemetry::tls::upstream_connector()),
            )
            .finish();
        let mut response = client
            .get(&url)
            .send()
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(AuthError::KeysUnavailable(format!(
                "JWKS answered {}",
                response.status()
            )));
        }
        let jwks: JwkSet = response
            .json()
            .limit(1 << 20)
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
        self.set_keys(&jwks);
        Ok(())
    }

    /// Checks signature, issuer, audience, expiry, revocation and suspension. A token verified in
    /// the last minute is not verified again; revocation and suspension are checked every time.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if !self.inner.deny.is_ready() {
            return Err(AuthError::KeysUnavailable(
                "the list of suspended users and revoked tokens is not loaded yet".into(),
            ));
        }
        if let Some(verdict) = self.inner.verified.check(token, &self.inner.deny) {
            return verdict;
        }
        let claims = self.verify_signature(token).await?;
        if self.inner.deny.is_revoked(&claims.jti) {
            return Err(AuthError::Revoked);
        }
        if self.inner.deny.is_suspended(&claims.sub) {
            return Err(AuthError::Suspended);
        }
        self.inner.verified.insert(token, &claims);
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        if header.alg != Algorithm::ES256 {
            return Err(AuthError::InvalidToken("unsupported algorithm".into()));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::InvalidToken("token has no kid".into()))?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh().await?;
                self.key(&kid)
                    .ok_or_else(|| AuthError::InvalidToken("unknown signing key".into()))?
            }
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 30;
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?
            .claims;
        Ok(claims)
    }
}
