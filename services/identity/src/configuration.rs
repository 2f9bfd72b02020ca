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

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL`; may carry a password, hence a secret.
    pub url: Secret,
    /// `DATABASE_AUTO_CREATE`: create the database when missing.
    pub auto_create: bool,
    /// `DATABASE_POOL_SIZE`.
    pub pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL`; may carry a password, hence a secret.
    pub url: Secret,
    /// `REDIS_STREAM_PREFIX`: namespaces every stream key.
    pub stream_prefix: String,
}

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
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/custodian_identity";

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
        let pool_size: usize = env.parse("DATABASE_POOL_SIZE", 16)?;
        if pool_size == 0 {
            return Err(ConfigError::Invalid {
                name: "DATABASE_POOL_SIZE".into(),
                reason: "must be at least 1".into(),
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
            database: DatabaseSettings {
                url: Secret::new(env.string("DATABASE_URL", DEFAULT_DATABASE_URL)),
                auto_create: env.flag("DATABASE_AUTO_CREATE", true),
                pool_size,
            },
            redis: RedisSettings {
                url: Secret::new(env.string("REDIS_URL", "redis://127.0.0.1:6379")),
                stream_prefix: env.string("REDIS_STREAM_PREFIX", "custodian"),
            },
            tokens: TokenSettings {
                issuer: env
                    .string("TOKEN_ISSUER", "http://127.0.0.1:8080")
                    .trim_end_matches('/')
                    .to_string(),
                ttl_seconds,
            },
            admin,
            consumer_name: env
                .optional("CONSUMER_NAME")
                .unwrap_or_else(default_consumer_name),
        })
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// `hostname-pid`: unique per process, stable across a process's lifetime.
fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "identity".to_string());
    format!("{host}-{}", std::process::id())
}
