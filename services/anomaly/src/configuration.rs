//! Settings from environment variables (names and defaults in `docs/contracts.md`).

use custodian_telemetry::{config::Listen, ConfigError, Env};

use crate::model::DEFAULT_THRESHOLD;

pub const DEFAULT_PORT: u16 = 8085;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Listen,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    /// This instance's name in the `anomaly` consumer group.
    pub consumer_name: String,
    pub anomaly: AnomalySettings,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub auto_create: bool,
    pub pool_size: usize,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub stream_prefix: String,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub issuer: String,
    pub jwks_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalySettings {
    /// Scores at or above it raise an alert.
    pub alert_threshold: f64,
    /// Whether alerts ask identity to suspend the user.
    pub suspend: bool,
}

/// `ANOMALY_ALERT_THRESHOLD`, checked to lie within `[0, 1]` (the replay reads only this).
pub fn threshold_from_env() -> Result<f64, ConfigError> {
    let threshold: f64 = Env.parse("ANOMALY_ALERT_THRESHOLD", DEFAULT_THRESHOLD)?;
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ConfigError::Invalid {
            name: "ANOMALY_ALERT_THRESHOLD".into(),
            reason: "must be within [0, 1]".into(),
        });
    }
    Ok(threshold)
}

fn default_consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "anomaly".to_string());
    format!("{host}-{}", std::process::id())
}

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
                url: env.string(
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/custodian_anomaly",
                ),
                auto_create: env.flag("DATABASE_AUTO_CREATE", true),
                pool_size,
            },
            redis: RedisSettings {
                url: env.string("REDIS_URL", "redis://127.0.0.1:6379"),
                stream_prefix: env.string("REDIS_STREAM_PREFIX", "custodian"),
            },
            auth: AuthSettings {
                issuer: env.string("TOKEN_ISSUER", "http://127.0.0.1:8080"),
                jwks_url: env.string("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json"),
            },
            consumer_name: env
                .optional("CONSUMER_NAME")
                .unwrap_or_else(default_consumer_name),
            anomaly: AnomalySettings {
                alert_threshold: threshold_from_env()?,
                suspend: env.flag("ANOMALY_SUSPEND", true),
            },
        })
    }
}
