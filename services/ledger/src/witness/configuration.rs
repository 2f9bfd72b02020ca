//! `ledger witness` settings from environment variables (documented in `docs/contracts.md`).

use std::path::PathBuf;

use custodian_database::DatabaseSettings;
use custodian_telemetry::{
    config::{Listen, Secret},
    ConfigError, Env,
};

#[derive(Debug, Clone)]
pub struct WitnessSettings {
    /// `WITNESS_HOST` (`127.0.0.1`), `WITNESS_PORT` (`8094`).
    pub listen: Listen,
    /// `WITNESS_DATABASE_URL` (`postgres://postgres@127.0.0.1:5432/custodian_witness`), its
    /// own database; `DATABASE_AUTO_CREATE`; `WITNESS_DATABASE_POOL_SIZE` (`4`).
    pub database: DatabaseSettings,
    /// `WITNESS_NAME` (`custodian.local/witness`): the cosigner key's name.
    pub name: String,
    /// `WITNESS_KEY_FILE`: a private key line (`PRIVATE+KEY+<name>+<hex id>+<base64>`); unset,
    /// a key is generated once and kept in the witness database.
    pub key_file: Option<PathBuf>,
    /// `WITNESS_LOGS`: comma-separated verifier keys of the logs witnessed (a log's origin is
    /// its key's name; several keys of one origin are its rotated keys).
    pub logs: Vec<String>,
}

pub const DEFAULT_PORT: u16 = 8094;
pub const DEFAULT_NAME: &str = "custodian.local/witness";

impl WitnessSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        let pool_size: usize = env.parse("WITNESS_DATABASE_POOL_SIZE", 4)?;
        if pool_size == 0 {
            return Err(ConfigError::Invalid {
                name: "WITNESS_DATABASE_POOL_SIZE".into(),
                reason: "must be at least 1".into(),
            });
        }
        let logs: Vec<String> = env
            .string("WITNESS_LOGS", "")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        for key in &logs {
            crate::signing::verifier_key_name(key).map_err(|e| ConfigError::Invalid {
                name: "WITNESS_LOGS".into(),
                reason: e.to_string(),
            })?;
        }
        Ok(Self {
            listen: Listen::from_env(&env, "WITNESS_HOST", "WITNESS_PORT", DEFAULT_PORT)?,
            database: DatabaseSettings {
                url: env
                    .secret("WITNESS_DATABASE_URL", "WITNESS_DATABASE_URL_FILE")?
                    .unwrap_or_else(|| {
                        Secret::new("postgres://postgres@127.0.0.1:5432/custodian_witness")
                    }),
                auto_create: env.flag("DATABASE_AUTO_CREATE", true),
                pool_size,
            },
            name: env.string("WITNESS_NAME", DEFAULT_NAME),
            key_file: env.optional("WITNESS_KEY_FILE").map(PathBuf::from),
            logs,
        })
    }
}
