//! Settings, read from environment variables with the defaults of `docs/contracts.md`.

use custodian_telemetry::{config::Listen, config::Secret, ConfigError, Env};

/// Everything the consent service needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Listen,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    /// Base URL clients see (the gateway): `Location` headers and `fullUrl`s are built from it.
    pub public_url: String,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// May carry a password, hence a [`Secret`].
    pub url: Secret,
    pub auto_create: bool,
    pub pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: Secret,
    pub stream_prefix: String,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub issuer: String,
    pub jwks_url: String,
}

pub const DEFAULT_PORT: u16 = 8082;

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        let pool_size: usize = env.parse("DATABASE_POOL_SIZE", 16)?;
        if pool_size == 0 {
            return Err(ConfigError::Invalid {
                name: "DATABASE_POOL_SIZE".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", DEFAULT_PORT)?,
            database: DatabaseSettings {
                url: Secret::new(env.string(
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/custodian_consent",
                )),
                auto_create: env.flag("DATABASE_AUTO_CREATE", true),
                pool_size,
            },
            redis: RedisSettings {
                url: Secret::new(env.string("REDIS_URL", "redis://127.0.0.1:6379")),
                stream_prefix: env.string("REDIS_STREAM_PREFIX", "custodian"),
            },
            auth: AuthSettings {
                issuer: env.string("TOKEN_ISSUER", "http://127.0.0.1:8080"),
                jwks_url: env.string("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json"),
            },
            public_url: env
                .string("PUBLIC_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
        })
    }
}
