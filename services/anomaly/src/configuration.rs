//! Settings from environment variables (names and defaults in `docs/contracts.md`).

use custodian_telemetry::{
    config::{Listen, Secret},
    ConfigError, Env,
};

use std::path::PathBuf;

pub use custodian_access::AccessSettings;
pub use custodian_auth::{AuthSettings, InternalToken};
pub use custodian_database::DatabaseSettings;
pub use custodian_events::streams::RedisSettings;

use crate::model::{CalibrationSettings, ModelConfig, DEFAULT_THRESHOLD, MAX_GRACE};

pub const DEFAULT_PORT: u16 = 8085;
/// `ANOMALY_SUSPEND_CONFIDENCE`: alerts scoring at or above it ask identity to suspend.
pub const DEFAULT_SUSPEND_CONFIDENCE: f64 = 0.92;
/// `ANOMALY_WEBHOOK_MAX_ATTEMPTS`: attempts before a webhook delivery is given up.
pub const DEFAULT_WEBHOOK_MAX_ATTEMPTS: u32 = 10;
/// `ANOMALY_SNAPSHOT_SECONDS`: how often the detector's state is saved (at most this much of
/// learning is observed again, with less detail, after a restart).
pub const DEFAULT_SNAPSHOT_SECONDS: u64 = 300;

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
    /// `TRUSTED_PROXIES` and the rest of the access kernel's settings (the source recorded in
    /// the access events of acknowledgements and dismissals).
    pub access: AccessSettings,
    /// `ANOMALY_WEBHOOK_URL` and its secret: where new alerts are POSTed (none when unset).
    pub webhook: Option<WebhookSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalySettings {
    /// Scores at or above it raise an alert.
    pub alert_threshold: f64,
    /// Whether alerts may ask identity to suspend the user (`ANOMALY_SUSPEND`).
    pub suspend: bool,
    /// Alerts scoring at or above it ask identity to suspend (`ANOMALY_SUSPEND_CONFIDENCE`,
    /// 0.92); below it they alert only.
    pub suspend_confidence: f64,
    /// The model's calibration and grace period ([`model_config_from_env`]).
    pub model: ModelConfig,
    /// `ANOMALY_SNAPSHOT_SECONDS` (300): how often the detector's state is saved with a batch;
    /// `None` (0) never (a restart then relearns).
    pub snapshot_every: Option<std::time::Duration>,
}

/// The alert webhook.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `ANOMALY_WEBHOOK_URL`: an `http://` URL (this build's client speaks no TLS: put a local
    /// TLS-terminating relay in front of an `https` receiver).
    pub url: String,
    /// The contents of `ANOMALY_WEBHOOK_SECRET_FILE`: the HMAC-SHA256 key of the
    /// `X-Custodian-Signature` header.
    pub secret: Secret,
    /// `ANOMALY_WEBHOOK_MAX_ATTEMPTS` (10): attempts before a delivery is given up.
    pub max_attempts: u32,
}

impl WebhookSettings {
    /// From the environment: none when `ANOMALY_WEBHOOK_URL` is unset; then
    /// `ANOMALY_WEBHOOK_SECRET_FILE` is required and must hold a non-empty secret.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(url) = env.optional("ANOMALY_WEBHOOK_URL") else {
            return Ok(None);
        };
        let url = parse_webhook_url(url.trim())?;
        let path = env
            .optional("ANOMALY_WEBHOOK_SECRET_FILE")
            .ok_or_else(|| ConfigError::Missing("ANOMALY_WEBHOOK_SECRET_FILE".into()))?;
        let secret = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
            name: "ANOMALY_WEBHOOK_SECRET_FILE".into(),
            reason: format!("cannot read {path}: {e}"),
        })?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(ConfigError::Invalid {
                name: "ANOMALY_WEBHOOK_SECRET_FILE".into(),
                reason: format!("{path} is empty"),
            });
        }
        let max_attempts: u32 =
            env.parse("ANOMALY_WEBHOOK_MAX_ATTEMPTS", DEFAULT_WEBHOOK_MAX_ATTEMPTS)?;
        if max_attempts == 0 {
            return Err(ConfigError::Invalid {
                name: "ANOMALY_WEBHOOK_MAX_ATTEMPTS".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Some(Self {
            url,
            secret: Secret::new(secret),
            max_attempts,
        }))
    }
}

/// An `http://host[:port]/path` URL.
pub fn parse_webhook_url(url: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "ANOMALY_WEBHOOK_URL".into(),
        reason: reason.into(),
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(invalid(
            "must be an http:// URL (no TLS in this build: use a local TLS-terminating relay)",
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(invalid("must name a host, without credentials"));
    }
    Ok(url.to_string())
}

/// A probability-like setting within `[0, 1]`.
fn unit_interval(name: &str, default: f64) -> Result<f64, ConfigError> {
    let value: f64 = Env.parse(name, default)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::Invalid {
            name: name.into(),
            reason: "must be within [0, 1]".into(),
        });
    }
    Ok(value)
}

/// The model's calibration from `ANOMALY_TARGET_FPR` (0.005: the share of the training
/// period allowed to alert), `ANOMALY_DAILY_ALERT_BUDGET` (75: alerting events a day at most,
/// which lowers the share for a busy hospital; 0 = no limit), `ANOMALY_WARMUP_HOURS` (48: event time that only learns) and
/// `ANOMALY_CALIBRATION_HOURS` (48: event time whose scores set the threshold); the live
/// service and the replay read the same.
pub fn model_config_from_env() -> Result<ModelConfig, ConfigError> {
    let defaults = ModelConfig::default();
    let fpr: f64 = Env.parse("ANOMALY_TARGET_FPR", defaults.calibration.target_fpr)?;
    if !(0.0..0.5).contains(&fpr) {
        return Err(ConfigError::Invalid {
            name: "ANOMALY_TARGET_FPR".into(),
            reason: "must be within [0, 0.5)".into(),
        });
    }
    let hours = |name: &str, default: i64| -> Result<i64, ConfigError> {
        let h: u32 = Env.parse(name, u32::try_from(default / 3600).unwrap_or(48))?;
        Ok(i64::from(h) * 3600)
    };
    // Waits, in seconds of event time: a replay holds its output as long as the longest.
    let wait = |name: &str, default: i64| -> Result<i64, ConfigError> {
        let seconds: u32 = Env.parse(name, u32::try_from(default).unwrap_or(0))?;
        if i64::from(seconds) > MAX_GRACE {
            return Err(ConfigError::Invalid {
                name: name.into(),
                reason: format!("must be at most {MAX_GRACE}"),
            });
        }
        Ok(i64::from(seconds))
    };
    let grace = wait("ANOMALY_GRACE_SECONDS", defaults.grace_seconds)?;
    let visit = wait("ANOMALY_VISIT_SECONDS", defaults.visit_seconds)?;
    let budget: f64 = Env.parse(
        "ANOMALY_DAILY_ALERT_BUDGET",
        defaults.calibration.daily_alert_budget,
    )?;
    if !budget.is_finite() || budget < 0.0 {
        return Err(ConfigError::Invalid {
            name: "ANOMALY_DAILY_ALERT_BUDGET".into(),
            reason: "must be a number of alerts, 0 or more".into(),
        });
    }
    Ok(ModelConfig {
        grace_seconds: grace,
        visit_seconds: visit,
        calibration: CalibrationSettings {
            target_fpr: fpr,
            daily_alert_budget: budget,
            warmup_seconds: hours("ANOMALY_WARMUP_HOURS", defaults.calibration.warmup_seconds)?,
            calibration_seconds: hours(
                "ANOMALY_CALIBRATION_HOURS",
                defaults.calibration.calibration_seconds,
            )?,
        },
        ..defaults
    })
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
        // `https://` calls to other services: checked now, used through
        // `custodian_telemetry::tls::upstream_connector`.
        custodian_telemetry::tls::ClientTls::from_env(&env)?;
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", DEFAULT_PORT)?,
            database: DatabaseSettings::from_env(&env, "custodian_anomaly")?,
            redis: RedisSettings::from_env(&env)?,
            auth: AuthSettings::from_env(&env),
            consumer_name: custodian_events::streams::consumer_name_from_env(&env, "anomaly"),
            anomaly: AnomalySettings {
                alert_threshold: threshold_from_env()?,
                suspend: env.flag("ANOMALY_SUSPEND", true),
                suspend_confidence: unit_interval(
                    "ANOMALY_SUSPEND_CONFIDENCE",
                    DEFAULT_SUSPEND_CONFIDENCE,
                )?,
                model: model_config_from_env()?,
                snapshot_every: match env
                    .parse("ANOMALY_SNAPSHOT_SECONDS", DEFAULT_SNAPSHOT_SECONDS)?
                {
                    0 => None,
                    seconds => Some(std::time::Duration::from_secs(seconds)),
                },
            },
            identity_url: env
                .string("IDENTITY_URL", "http://127.0.0.1:8081")
                .trim_end_matches('/')
                .to_string(),
            internal_token: InternalToken::from_env()?,
            signing_key_file: custodian_events::signing::StreamSigner::path_from_env("anomaly"),
            access: AccessSettings::from_env(&env)?,
            webhook: WebhookSettings::from_env(&env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_plain_http_with_a_host() {
        assert_eq!(
            parse_webhook_url("http://127.0.0.1:9000/hook")
                .ok()
                .as_deref(),
            Some("http://127.0.0.1:9000/hook")
        );
        assert!(parse_webhook_url("https://siem.example/hook").is_err());
        assert!(parse_webhook_url("http:///hook").is_err());
        assert!(parse_webhook_url("http://user:pw@siem/hook").is_err());
        assert!(parse_webhook_url("ftp://siem/hook").is_err());
    }
}
