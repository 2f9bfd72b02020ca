//! Settings from environment variables (names and defaults in `docs/contracts.md`).

use custodian_telemetry::{config::Listen, ConfigError, Env};

use std::path::PathBuf;

pub use custodian_auth::{AuthSettings, InternalToken};
pub use custodian_database::DatabaseSettings;
pub use custodian_events::streams::RedisSettings;

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
    /// `IDENTITY_URL` (`http://127.0.0.1:8081`): where the deny-list snapshot comes from.
    pub identity_url: String,
    /// `INTERNAL_TOKEN_FILE` (`var/keys/internal.token`): the service credential for it.
    pub internal_token: InternalToken,
    /// `STREAM_SIGNING_KEY_FILE` (`var/keys/anomaly-stream.pem`, created 0600 when missing):
    /// the key alerts are signed with (identity obeys only signed alerts).
    pub signing_key_file: PathBuf,
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

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", DEFAULT_PORT)?,
            database: DatabaseSettings::from_env(&env, "custodian_anomaly")?,
            redis: RedisSettings::from_env(&env),
            auth: AuthSettings::from_env(&env),
            consumer_name: custodian_events::streams::consumer_name_from_env(&env, "anomaly"),
            anomaly: AnomalySettings {
                alert_threshold: threshold_from_env()?,
                suspend: env.flag("ANOMALY_SUSPEND", true),
            },
            identity_url: env
                .string("IDENTITY_URL", "http://127.0.0.1:8081")
                .trim_end_matches('/')
                .to_string(),
            internal_token: InternalToken::from_env()?,
            signing_key_file: custodian_events::signing::StreamSigner::path_from_env("anomaly"),
        })
    }
}
