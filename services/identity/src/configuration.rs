//! Settings read from the environment, with the defaults of `docs/contracts.md`.

use std::time::Duration;

use custodian_access::settings::AccessSettings;
use custodian_telemetry::{config::Secret, tls::ServerTls, ConfigError, Env};

/// Everything identity needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST`, `127.0.0.1` by default.
    pub host: String,
    /// `PORT`, 8081 by default; 0 picks a free port (tests).
    pub port: u16,
    /// `TLS_CERT_FILE`, `TLS_KEY_FILE`, `TLS_CLIENT_CA_FILE`: HTTPS (and mutual TLS) on the
    /// port; `None`: plain HTTP.
    pub tls: Option<ServerTls>,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub tokens: TokenSettings,
    /// `ADMIN_USERNAME` and `ADMIN_PASSWORD` (or `ADMIN_PASSWORD_FILE`): the administrator
    /// bootstrapped at start.
    pub admin: Option<AdminSettings>,
    /// `CONSUMER_NAME`: this instance's name in Redis consumer groups.
    pub consumer_name: String,
    /// The access kernel's settings; identity uses `TRUSTED_PROXIES` to know whose
    /// `X-Forwarded-For` to believe when it records where a login came from.
    pub access: AccessSettings,
    pub login: LoginSettings,
}

/// How logins are throttled, locked out and bounded (`LOGIN_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSettings {
    /// `LOGIN_HASH_CONCURRENCY` (2): Argon2 hashes computed at once. Each takes 19 MiB and a
    /// core for tens of milliseconds, so this bounds the memory and CPU logins can take.
    pub hash_concurrency: usize,
    /// `LOGIN_HASH_QUEUE` (32): logins that may wait for a hash; beyond that the answer is an
    /// immediate 503 with `Retry-After`, so a flood queues nothing unbounded.
    pub hash_queue: usize,
    /// `LOGIN_HASH_WAIT_MS` (2000): the longest a login waits for a hash before a 503.
    pub hash_wait: Duration,
    /// `LOGIN_MAX_FAILURES` (5): failed logins of one account (or client) within the window
    /// that lock it out.
    pub max_failures: u32,
    /// `LOGIN_FAILURE_WINDOW_SECONDS` (900): the window failures are counted in.
    pub failure_window: Duration,
    /// `LOGIN_LOCKOUT_SECONDS` (900): how long a lockout lasts unless an administrator lifts it
    /// earlier (`POST /auth/admin/users/{id}/unlock`).
    pub lockout: Duration,
    /// `LOGIN_ADDRESS_MAX_FAILURES` (30): failed logins from one address (an IPv6 /64) per
    /// `LOGIN_ADDRESS_WINDOW_SECONDS` (60) before it gets 429 with `Retry-After`.
    pub address_max_failures: u32,
    pub address_window: Duration,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            hash_concurrency: 2,
            hash_queue: 32,
            hash_wait: Duration::from_millis(2000),
            max_failures: 5,
            failure_window: Duration::from_secs(900),
            lockout: Duration::from_secs(900),
            address_max_failures: 30,
            address_window: Duration::from_secs(60),
        }
    }
}

fn bounded<T>(
    env: &Env,
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value: T = env.parse(name, default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: name.into(),
            reason: format!("must be between {} and {}", range.start(), range.end()),
        })
    }
}

impl LoginSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            hash_concurrency: bounded(env, "LOGIN_HASH_CONCURRENCY", d.hash_concurrency, 1..=64)?,
            hash_queue: bounded(env, "LOGIN_HASH_QUEUE", d.hash_queue, 0..=10_000)?,
            hash_wait: Duration::from_millis(bounded(env, "LOGIN_HASH_WAIT_MS", 2000, 1..=60_000)?),
            max_failures: bounded(env, "LOGIN_MAX_FAILURES", d.max_failures, 1..=1000)?,
            failure_window: Duration::from_secs(bounded(
                env,
                "LOGIN_FAILURE_WINDOW_SECONDS",
                900,
                1..=86_400 * 30,
            )?),
            lockout: Duration::from_secs(bounded(
                env,
                "LOGIN_LOCKOUT_SECONDS",
                900,
                1..=86_400 * 365,
            )?),
            address_max_failures: bounded(
                env,
                "LOGIN_ADDRESS_MAX_FAILURES",
                d.address_max_failures,
                1..=100_000,
            )?,
            address_window: Duration::from_secs(bounded(
                env,
                "LOGIN_ADDRESS_WINDOW_SECONDS",
                60,
                1..=86_400,
            )?),
        })
    }
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
            .secret("ADMIN_PASSWORD", "ADMIN_PASSWORD_FILE")?
            .map(|password| AdminSettings {
                username: env.string("ADMIN_USERNAME", "admin"),
                password,
            });
        // `https://` calls to other services: checked now, used through
        // `custodian_telemetry::tls::upstream_connector`.
        custodian_telemetry::tls::ClientTls::from_env(&env)?;
        Ok(Self {
            host: env.string("HOST", "127.0.0.1"),
            port: env.parse("PORT", DEFAULT_PORT)?,
            tls: ServerTls::from_env(&env)?,
            database: DatabaseSettings::from_env(&env, "custodian_identity")?,
            redis: RedisSettings::from_env(&env)?,
            tokens: TokenSettings {
                issuer: env
                    .string("TOKEN_ISSUER", "http://127.0.0.1:8080")
                    .trim_end_matches('/')
                    .to_string(),
                ttl_seconds,
            },
            admin,
            consumer_name: custodian_events::streams::consumer_name_from_env(&env, "identity"),
            access: AccessSettings::from_env(&env)?,
            login: LoginSettings::from_env(&env)?,
        })
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}
