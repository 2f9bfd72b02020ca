//! The service credential `/internal/*` endpoints require (identity's deny-list snapshot,
//! consent's consent snapshot): one token shared by the services of a deployment, sent as
//! `Authorization: Bearer <token>` and compared in constant time.
//!
//! The token is read from `INTERNAL_TOKEN_FILE` (default `var/keys/internal.token`); when the
//! file does not exist a random 256-bit token is written there (mode 0600), so on one machine
//! the first service to start creates it and the others read it. In Kubernetes it comes from a
//! Secret mounted as that file. The gateway never forwards `/internal/*`, so clients cannot
//! reach these endpoints through it; the credential stops a caller that reaches a service's
//! port directly.

use std::{
    io::Write,
    path::Path,
    sync::{Arc, OnceLock},
};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};
use openssl::{memcmp, sha::sha256};

use crate::{extract::bearer_token, AuthError};

/// Where the token is read from unless `INTERNAL_TOKEN_FILE` says otherwise.
pub const DEFAULT_TOKEN_FILE: &str = "var/keys/internal.token";

#[derive(Debug, thiserror::Error)]
pub enum InternalTokenError {
    #[error("internal token file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the internal token must be at least 32 characters of printable ASCII")]
    TooWeak,
}

impl From<InternalTokenError> for custodian_telemetry::ConfigError {
    fn from(e: InternalTokenError) -> Self {
        custodian_telemetry::ConfigError::Invalid {
            name: "INTERNAL_TOKEN_FILE".into(),
            reason: e.to_string(),
        }
    }
}

/// The deployment's service credential. `Debug` never shows it.
#[derive(Clone)]
pub struct InternalToken {
    value: Arc<str>,
    digest: [u8; 32],
}

impl std::fmt::Debug for InternalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalToken(***)")
    }
}

impl InternalToken {
    /// A token from its text (surrounding whitespace ignored).
    pub fn new(value: &str) -> Result<Self, InternalTokenError> {
        let value = value.trim();
        if value.len() < 32 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InternalTokenError::TooWeak);
        }
        Ok(Self {
            digest: sha256(value.as_bytes()),
            value: value.into(),
        })
    }

    /// A random token (tests, and the file created when missing).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        if openssl::rand::rand_bytes(&mut bytes).is_err() {
            // Never expected; fall back on the OS generator through uuid's v4.
            bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            digest: sha256(value.as_bytes()),
            value: value.into(),
        }
    }

    /// Reads the token at `path`, creating it (0600, directory 0700) when the file is missing.
    pub fn load_or_create(path: &Path) -> Result<Self, InternalTokenError> {
        let file_error = |reason: String| InternalTokenError::File {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::new(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = Self::generate();
                match write_new(path, token.value.as_bytes()) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "internal service token created");
                        Ok(token)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text =
                            std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
                        Self::new(&text)
                    }
                    Err(e) => Err(file_error(e.to_string())),
                }
            }
            Err(e) => Err(file_error(e.to_string())),
        }
    }

    /// `INTERNAL_TOKEN_FILE` (default `var/keys/internal.token`), created when missing.
    pub fn from_env() -> Result<Self, InternalTokenError> {
        let path = custodian_telemetry::Env.string("INTERNAL_TOKEN_FILE", DEFAULT_TOKEN_FILE);
        Self::load_or_create(Path::new(&path))
    }

    /// The process's token, read from the environment at first use; `None` (logged) when it
    /// cannot be read or created, in which case every internal call is refused.
    pub fn shared() -> Option<&'static InternalToken> {
        static SHARED: OnceLock<Option<InternalToken>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                Self::from_env()
                    .map_err(|e| tracing::error!(error = %e, "no internal service token"))
                    .ok()
            })
            .as_ref()
    }

    /// The token itself (to present it with a client's own `bearer_auth`).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The `Authorization` header that presents it.
    pub fn header(&self) -> (header::HeaderName, String) {
        (header::AUTHORIZATION, format!("Bearer {}", self.value))
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        memcmp::eq(&sha256(presented.as_bytes()), &self.digest)
    }
}

/// Adds the process's service credential to a request to another service's `/internal/*`.
pub fn authorize(request: awc::ClientRequest) -> awc::ClientRequest {
    match InternalToken::shared() {
        Some(token) => request.insert_header(token.header()),
        None => request,
    }
}

/// GETs another service's `/internal/*` snapshot at `url` (with the service credential),
/// retrying with backoff (100 ms doubling to 5 s) until it is read; None when `token` is
/// cancelled first. `source` names the snapshot in the logs. Runs on the actix runtime (awc is
/// not `Send`).
pub async fn fetch_snapshot<T: serde::de::DeserializeOwned>(
    url: &str,
    source: &'static str,
    token: &tokio_util::sync::CancellationToken,
) -> Option<T> {
    async fn fetch<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, String> {
        let client = awc::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .connector(
                awc::Connector::new().openssl(custodian_telemetry::tls::upstream_connector()),
            )
            .finish();
        let mut response = authorize(client.get(url))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        response
            .json::<T>()
            .limit(256 << 20)
            .await
            .map_err(|e| e.to_string())
    }
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        match fetch(url).await {
            Ok(snapshot) => return Some(snapshot),
            Err(e) => tracing::warn!(
                snapshot = source,
                error = %e,
                retry_in_ms = backoff.as_millis() as u64,
                "snapshot not loaded; retrying"
            ),
        }
        tokio::select! {
            _ = token.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}

fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(dir)?;
        }
    }
    // Written in full under a temporary name, then linked into place: a service starting at
    // the same moment never reads half a token.
    let temp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    linked
}

/// A request that presented the service credential. Put it first among a handler's arguments:
/// without the credential the handler does not run and the caller gets 401.
///
/// The expected token is the app's `web::Data<InternalToken>` when there is one, else
/// [`InternalToken::shared`].
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

impl FromRequest for InternalCaller {
    type Error = AuthError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected: Option<&InternalToken> = match req.app_data::<web::Data<InternalToken>>() {
            Some(configured) => Some(configured.get_ref()),
            None => InternalToken::shared(),
        };
        let outcome = match (expected, bearer_token(req)) {
            (_, None) => Err(AuthError::MissingToken),
            (Some(expected), Some(presented)) if expected.matches(&presented) => Ok(InternalCaller),
            _ => {
                tracing::warn!(
                    path = req.path(),
                    "internal endpoint called without the service credential"
                );
                Err(AuthError::InvalidToken("not a service credential".into()))
            }
        };
        ready(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test as actix_test, App, HttpResponse};

    #[test]
    fn tokens_compare_and_never_print() {
        let token = InternalToken::generate();
        assert!(token.matches(&token.value));
        assert!(!token.matches("x"));
        assert!(!format!("{token:?}").contains(&*token.value));
        assert!(InternalToken::new("short").is_err());
        assert!(InternalToken::new(&format!("{}\n", "a".repeat(40))).is_ok());
    }

    #[test]
    fn the_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("custodian-internal-{}", uuid::Uuid::new_v4()));
        let path = dir.join("internal.token");
        let first = InternalToken::load_or_create(&path).unwrap();
        let again = InternalToken::load_or_create(&path).unwrap();
        assert!(again.matches(&first.value));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[actix_web::test]
    async fn internal_endpoints_need_the_credential() {
        let token = InternalToken::generate();
        let app =
            actix_test::init_service(App::new().app_data(web::Data::new(token.clone())).route(
                "/internal/x",
                web::get().to(|_: InternalCaller| async { HttpResponse::Ok().finish() }),
            ))
            .await;
        let call = |auth: Option<String>| {
            let mut req = actix_test::TestRequest::get().uri("/internal/x");
            if let Some(auth) = auth {
                req = req.insert_header((header::AUTHORIZATION, auth));
            }
            req.to_request()
        };
        let status = |r: actix_web::dev::ServiceResponse| r.status().as_u16();
        assert_eq!(
            status(actix_test::call_service(&app, call(None)).await),
            401
        );
        assert_eq!(
            status(actix_test::call_service(&app, call(Some("Bearer wrong".into()))).await),
            401
        );
        assert_eq!(
            status(actix_test::call_service(&app, call(Some(token.header().1))).await),
            200
        );
    }
}
