//! Configuration from environment variables. Every setting has a working default for a
//! developer machine; production overrides them (see the k8s ConfigMap).

use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid { name: String, reason: String },
    #[error("environment variable {0} is required")]
    Missing(String),
}

/// Reads settings for one service. A prefix-free reader: variable names are spelled out in full
/// at the call site so `grep` finds every variable a service reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Env {
    /// The variable's value, or `default` when unset or empty.
    pub fn string(&self, name: &str, default: &str) -> String {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => v,
            _ => default.to_string(),
        }
    }

    /// The variable's value when set and non-empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    /// The variable's value; an error when unset.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::Missing(name.to_string()))
    }

    /// The variable parsed as `T`, or `default` when unset.
    pub fn parse<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                name: name.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// A boolean: `1`, `true`, `yes`, `on` (any case) are true.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.optional(name) {
            None => default,
            Some(v) => matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            ),
        }
    }
}

/// Where a service listens: `HOST` and `PORT`-style pair.
#[derive(Debug, Clone)]
pub struct Listen {
    pub host: String,
    pub port: u16,
}

impl Listen {
    pub fn from_env(
        env: &Env,
        host_var: &str,
        port_var: &str,
        default_port: u16,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            host: env.string(host_var, "127.0.0.1"),
            port: env.parse(port_var, default_port)?,
        })
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A secret read from the environment. It never prints: `Debug` shows a placeholder.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn parse_reports_bad_values() {
        std::env::set_var("CUSTODIAN_TEST_BAD_PORT", "eighty");
        let err = Env.parse::<u16>("CUSTODIAN_TEST_BAD_PORT", 1).unwrap_err();
        assert!(err.to_string().contains("CUSTODIAN_TEST_BAD_PORT"));
        assert_eq!(Env.parse::<u16>("CUSTODIAN_TEST_UNSET_PORT", 7).unwrap(), 7);
    }
}
