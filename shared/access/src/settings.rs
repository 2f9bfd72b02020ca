//! The kernel's deployment settings, read once from the environment.

pub use custodian_auth::source::TrustedProxies;
use custodian_telemetry::{config::ConfigError, Env};

/// Who may see a patient's data without her explicit permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustodianMode {
    /// The organisation that holds the record (its custodian) treats her without a separate
    /// permit unless her consent denies it; everyone else needs her permit. (Default.)
    Custodian,
    /// Strictly opt-in, as a regional exchange runs: even the custodian needs a permit.
    OptIn,
}

/// How the kernel is run in this deployment.
#[derive(Debug, Clone)]
pub struct AccessSettings {
    pub mode: CustodianMode,
    /// `TRUSTED_PROXIES`: default loopback (the gateway on the same host in `make run`).
    pub trusted_proxies: TrustedProxies,
    /// `ACCESS_EXPLAIN_DENIALS`: answer a denial with 403 naming the missing permit (so a
    /// clinician knows to ask the patient) instead of the 404 an unknown id gets.
    pub explain_denials: bool,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            mode: CustodianMode::Custodian,
            trusted_proxies: TrustedProxies::parse("127.0.0.1/32,::1/128")
                .unwrap_or_else(|_| TrustedProxies::none()),
            explain_denials: false,
        }
    }
}

impl AccessSettings {
    /// `ACCESS_POLICY` (`custodian` | `opt-in`), `TRUSTED_PROXIES`, `ACCESS_EXPLAIN_DENIALS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mode = match env.string("ACCESS_POLICY", "custodian").trim() {
            "custodian" => CustodianMode::Custodian,
            "opt-in" => CustodianMode::OptIn,
            other => {
                return Err(ConfigError::Invalid {
                    name: "ACCESS_POLICY".into(),
                    reason: format!("{other:?} is not custodian or opt-in"),
                })
            }
        };
        let trusted_proxies = TrustedProxies::parse(
            &env.string("TRUSTED_PROXIES", "127.0.0.1/32,::1/128"),
        )
        .map_err(|reason| ConfigError::Invalid {
            name: "TRUSTED_PROXIES".into(),
            reason,
        })?;
        Ok(Self {
            mode,
            trusted_proxies,
            explain_denials: env.flag("ACCESS_EXPLAIN_DENIALS", false),
        })
    }
}
