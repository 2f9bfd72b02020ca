//! Settings read from the environment, with the defaults of `docs/contracts.md`.

use custodian_telemetry::{config::Secret, ConfigError, Env};

/// Everything identity needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST`, `127.0.0.1` by default.
    pub host: String,
    /// `PORT`, 8081 by default; 0 picks a free port (tests).
    pub port: u16,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub tokens: TokenSettings,
    /// `ADMIN_USERNAME` and `ADMIN_PASSWORD`: the administrator bootstrapped at start.
    pub admin: Option<AdminSettings>,
    /// `CONSUMER_NAME`: this instance's name in Redis consumer groups.
    pub consumer_name: String,
}

pub use custodian_database::DatabaseSettings;
pub use custodian_events::streams::RedisSettings;

#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `TOKEN_ISSUER`: the `iss` of every token and the base of the discovery URLs.
    pub issuer: String,
    /// `TOKEN_TTL_SECONDS`: access token lifetime.
    pub ttl_seconds: i64,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub username: String,
    pub password: Secret,
}

const DEFAULT_PORT: u16 = 8081;

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        let ttl_seconds: i64 = env.parse("TOKEN_TTL_SECONDS", 900)?;
        if !(30..=86_400).contains(&ttl_seconds) {
            return Err(ConfigError::Invalid {
                name: "TOKEN_TTL_SECONDS".into(),
                reason: "must be between 30 and 86400".into(),
            });
        }
        let admin = env
            .optional("ADMIN_PASSWORD")
            .map(|password| AdminSettings {
                username: env.string("ADMIN_USERNAME", "admin"),
                password: Secret::new(password),
            });
        Ok(Self {
            host: env.string("HOST", "127.0.0.1"),
            port: env.parse("PORT", DEFAULT_PORT)?,
            database: DatabaseSettings::from_env(&env, "custodian_identity")?,
            redis: RedisSettings::from_env(&env),
            tokens: TokenSettings {
                issuer: env
                    .string("TOKEN_ISSUER", "http://127.0.0.1:8080")
                    .trim_end_matches('/')
                    .to_string(),
                ttl_seconds,
            },
            admin,
            consumer_name: custodian_events::streams::consumer_name_from_env(&env, "identity"),
        })
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}
