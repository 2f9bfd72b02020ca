//! Settings, read from environment variables with the defaults of `docs/contracts.md`.

use custodian_telemetry::{config::Listen, ConfigError, Env};

pub use custodian_access::AccessSettings;
pub use custodian_auth::AuthSettings;
pub use custodian_database::DatabaseSettings;
pub use custodian_events::streams::RedisSettings;

/// Everything the consent service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Listen,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    /// The access kernel's settings (`TRUSTED_PROXIES` for the source address in events).
    pub access: AccessSettings,
    /// Base URL clients see (the gateway): `Location` headers and `fullUrl`s are built from it.
    pub public_url: String,
    /// `IDENTITY_URL`: where the snapshot of suspended users and revoked tokens comes from.
    pub identity_url: String,
    /// `RECORDS_URL`: where the snapshot of memberships comes from.
    pub records_url: String,
}

pub const DEFAULT_PORT: u16 = 8082;

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        // `https://` calls to other services: checked now, used through
        // `custodian_telemetry::tls::upstream_connector`.
        custodian_telemetry::tls::ClientTls::from_env(&env)?;
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", DEFAULT_PORT)?,
            database: DatabaseSettings::from_env(&env, "custodian_consent")?,
            redis: RedisSettings::from_env(&env)?,
            auth: AuthSettings::from_env(&env),
            access: AccessSettings::from_env(&env)?,
            public_url: env
                .string("PUBLIC_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
            identity_url: env
                .string("IDENTITY_URL", "http://127.0.0.1:8081")
                .trim_end_matches('/')
                .to_string(),
            records_url: env
                .string("RECORDS_URL", "http://127.0.0.1:8083")
                .trim_end_matches('/')
                .to_string(),
        })
    }
}
