//! Settings from environment variables (names and defaults in `docs/contracts.md`).

use std::time::Duration;

use custodian_telemetry::{
    config::{Listen, Secret},
    ConfigError, Env,
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Listen,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    /// This instance's name in the `ledger` consumer group.
    pub consumer_name: String,
    /// The log's origin: the checkpoints' first line and the signing key's name.
    pub origin: String,
    /// How often a checkpoint is signed when the tree grew.
    pub checkpoint_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
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

pub const DEFAULT_PORT: u16 = 8084;
pub const DEFAULT_ORIGIN: &str = "custodian.local/ledger";

fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ledger".to_string());
    format!("{host}-{}", std::process::id())
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        let interval_ms: u64 = env.parse("CHECKPOINT_INTERVAL_MS", 500)?;
        if interval_ms == 0 {
            return Err(ConfigError::Invalid {
                name: "CHECKPOINT_INTERVAL_MS".into(),
                reason: "must be positive".into(),
            });
        }
        let origin = env.string("LEDGER_ORIGIN", DEFAULT_ORIGIN);
        if origin.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(ConfigError::Invalid {
                name: "LEDGER_ORIGIN".into(),
                reason: "no spaces or '+' allowed".into(),
            });
        }
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", DEFAULT_PORT)?,
            database: DatabaseSettings {
                url: Secret::new(env.string(
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/custodian_ledger",
                )),
                auto_create: env.flag("DATABASE_AUTO_CREATE", true),
                pool_size: env.parse("DATABASE_POOL_SIZE", 16)?,
            },
            redis: RedisSettings {
                url: Secret::new(env.string("REDIS_URL", "redis://127.0.0.1:6379")),
                stream_prefix: env.string("REDIS_STREAM_PREFIX", "custodian"),
            },
            auth: AuthSettings {
                issuer: env.string("TOKEN_ISSUER", "http://127.0.0.1:8080"),
                jwks_url: env.string("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json"),
            },
            consumer_name: env
                .optional("CONSUMER_NAME")
                .unwrap_or_else(default_consumer_name),
            origin,
            checkpoint_interval: Duration::from_millis(interval_ms),
        })
    }
}
