//! Settings from environment variables (see `docs/contracts.md`), with developer defaults.

use std::time::Duration;

use custodian_access::AccessSettings;
use custodian_telemetry::{config::Listen, config::Secret, ConfigError, Env};

/// Where the encryption key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `RECORDS_ENCRYPTION_KEY` (or `RECORDS_ENCRYPTION_KEY_FILE`, holding the same 64 hex
    /// characters): wins over `RECORDS_KEY_FILE`.
    Hex(Secret),
    /// `RECORDS_KEY_FILE`: 32 raw bytes, created 0600 with a random key when missing.
    File(String),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Listen,
    pub database_url: Secret,
    pub database_auto_create: bool,
    pub database_pool_size: usize,
    pub redis_url: String,
    pub stream_prefix: String,
    pub token_issuer: String,
    pub jwks_url: String,
    pub consent_url: String,
    /// `IDENTITY_URL`: where the snapshot of suspended users and revoked tokens comes from.
    pub identity_url: String,
    pub key: KeySource,
    /// The base URL clients see (the gateway's), for `Location`, `fullUrl` and links.
    pub public_url: String,
    /// `ACCESS_POLICY`, `TRUSTED_PROXIES`, `ACCESS_EXPLAIN_DENIALS`.
    pub access: AccessSettings,
    /// `RECORDS_EXPORT_RETENTION_SECONDS` (86400): how long a finished `$export` job and its
    /// files are served (their `Expires`) before the sweep deletes them.
    pub export_retention: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        let key = match env.secret("RECORDS_ENCRYPTION_KEY", "RECORDS_ENCRYPTION_KEY_FILE")? {
            Some(hex) => KeySource::Hex(hex),
            None => KeySource::File(env.string("RECORDS_KEY_FILE", "var/records.key")),
        };
        // `https://` calls to other services: checked now, used through
        // `custodian_telemetry::tls::upstream_connector`.
        custodian_telemetry::tls::ClientTls::from_env(&env)?;
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", 8083)?,
            database_url: env
                .secret("DATABASE_URL", "DATABASE_URL_FILE")?
                .unwrap_or_else(|| {
                    Secret::new("postgres://postgres@127.0.0.1:5432/custodian_records")
                }),
            database_auto_create: env.flag("DATABASE_AUTO_CREATE", true),
            database_pool_size: env.parse("DATABASE_POOL_SIZE", 16)?,
            redis_url: custodian_events::streams::RedisSettings::url_from_env(&env)?
                .expose()
                .to_string(),
            stream_prefix: env.string("REDIS_STREAM_PREFIX", "custodian"),
            token_issuer: env.string("TOKEN_ISSUER", "http://127.0.0.1:8080"),
            jwks_url: env.string("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json"),
            consent_url: env.string("CONSENT_URL", "http://127.0.0.1:8082"),
            identity_url: env
                .string("IDENTITY_URL", "http://127.0.0.1:8081")
                .trim_end_matches('/')
                .to_string(),
            key,
            public_url: env
                .string("PUBLIC_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
            access: AccessSettings::from_env(&env)?,
            export_retention: match env.parse("RECORDS_EXPORT_RETENTION_SECONDS", 86_400u64)? {
                0 => {
                    return Err(ConfigError::Invalid {
                        name: "RECORDS_EXPORT_RETENTION_SECONDS".into(),
                        reason: "an export must be downloadable for at least a second".into(),
                    })
                }
                seconds => Duration::from_secs(seconds),
            },
        })
    }
}
