//! Settings from environment variables (names and defaults in `docs/contracts.md`).

use std::{path::PathBuf, time::Duration};

pub use custodian_auth::{AuthSettings, InternalToken};
pub use custodian_database::DatabaseSettings;
pub use custodian_events::streams::RedisSettings;

use custodian_telemetry::{config::Listen, ConfigError, Env};

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
    /// `IDENTITY_URL` (`http://127.0.0.1:8081`): where the deny-list snapshot comes from.
    pub identity_url: String,
    /// `INTERNAL_TOKEN_FILE` (`var/keys/internal.token`): the service credential for it.
    pub internal_token: InternalToken,
    /// `TRUSTED_PROXIES` and the rest of the access kernel's settings.
    pub access: custodian_access::AccessSettings,
    /// `LEDGER_SIGNING_KEY_FILE`: note private keys, the first signs (see [`crate::keys`]);
    /// unset, a key generated once is kept in the database.
    pub signing_key_file: Option<PathBuf>,
    /// `LEDGER_WITNESSES`, `LEDGER_WITNESS_QUORUM`, `LEDGER_WITNESS_TIMEOUT_MS`.
    pub witnessing: crate::witnessing::WitnessingSettings,
    /// `PUBLIC_URL` (`http://127.0.0.1:8080`, the gateway): the base of the links in FHIR
    /// answers (`/fhir/AuditEvent` bundles, an `AuditEvent`'s entry and proof).
    pub public_url: String,
}

pub const DEFAULT_PORT: u16 = 8084;
pub const DEFAULT_ORIGIN: &str = "custodian.local/ledger";

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
        let witness_timeout_ms: u64 = env.parse("LEDGER_WITNESS_TIMEOUT_MS", 5000)?;
        let witnessing = crate::witnessing::WitnessingSettings::parse(
            &env.string("LEDGER_WITNESSES", ""),
            env.parse("LEDGER_WITNESS_QUORUM", 0)?,
            Duration::from_millis(witness_timeout_ms.max(1)),
        )
        .map_err(|reason| ConfigError::Invalid {
            name: "LEDGER_WITNESSES".into(),
            reason,
        })?;
        // `https://` calls to other services: checked now, used through
        // `custodian_telemetry::tls::upstream_connector`.
        custodian_telemetry::tls::ClientTls::from_env(&env)?;
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", DEFAULT_PORT)?,
            database: DatabaseSettings::from_env(&env, "custodian_ledger")?,
            redis: RedisSettings::from_env(&env)?,
            auth: AuthSettings::from_env(&env),
            consumer_name: custodian_events::streams::consumer_name_from_env(&env, "ledger"),
            origin,
            checkpoint_interval: Duration::from_millis(interval_ms),
            identity_url: env
                .string("IDENTITY_URL", "http://127.0.0.1:8081")
                .trim_end_matches('/')
                .to_string(),
            internal_token: InternalToken::from_env()?,
            access: custodian_access::AccessSettings::from_env(&env)?,
            signing_key_file: env.optional("LEDGER_SIGNING_KEY_FILE").map(PathBuf::from),
            witnessing,
            public_url: env
                .string("PUBLIC_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
        })
    }
}
