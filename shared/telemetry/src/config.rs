//! Configuration from environment variables. Every setting has a working default for a
//! developer machine; production overrides them (see the k8s ConfigMap).

use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid { name: String, reason: String },
    #[error("environment variable {0} is required")]
    Missing(String),
    /// A `<NAME>_FILE` secret that cannot be used; names the variable and the path, never the
    /// content.
    #[error("{name}: cannot use secret file {path}: {reason}")]
    SecretFile {
        name: String,
        path: String,
        reason: String,
    },
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

    /// A secret: the content of the file `file_var` names when that is set (a mounted
    /// Kubernetes Secret: secrets stay out of the environment, which `/proc`, crash reports and
    /// `kubectl describe` show), else the variable `name` itself; `None` when neither is set
    /// (the caller keeps its default). Call it with both names spelled out,
    /// `env.secret("DATABASE_URL", "DATABASE_URL_FILE")`, so `grep` finds either.
    ///
    /// The file's trailing whitespace and newline are trimmed (`echo` and editors add one). A
    /// missing, unreadable or empty file is an error, and so is setting both variables: which
    /// one wins would be a guess.
    pub fn secret(&self, name: &str, file_var: &str) -> Result<Option<Secret>, ConfigError> {
        let plain = self.optional(name);
        let Some(path) = self.optional(file_var) else {
            return Ok(plain.map(Secret::new));
        };
        if plain.is_some() {
            return Err(ConfigError::Invalid {
                name: file_var.to_string(),
                reason: format!("{name} is set as well: set only one of them"),
            });
        }
        let path = path.trim().to_string();
        let file_error = |reason: String| ConfigError::SecretFile {
            name: file_var.to_string(),
            path: path.clone(),
            reason,
        };
        // The I/O error's text names the failure only (not found, permission denied).
        let content = std::fs::read(&path).map_err(|e| file_error(e.to_string()))?;
        let content = String::from_utf8(content)
            .map_err(|_| file_error("the content is not UTF-8 text".into()))?;
        let value = content.trim_end();
        if value.is_empty() {
            return Err(file_error("the file is empty".into()));
        }
        Ok(Some(Secret::new(value)))
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

/// Where a service listens: `HOST` and `PORT`-style pair, and whether it serves HTTPS
/// (`TLS_CERT_FILE`, `TLS_KEY_FILE`, `TLS_CLIENT_CA_FILE`: see [`crate::tls`]).
#[derive(Debug, Clone)]
pub struct Listen {
    pub host: String,
    pub port: u16,
    /// `None`: plain HTTP.
    pub tls: Option<crate::tls::ServerTls>,
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
            tls: crate::tls::ServerTls::from_env(env)?,
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

    /// A temporary file holding `content`, removed on drop.
    struct TempSecret(std::path::PathBuf);

    impl TempSecret {
        fn new(content: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!(
                "custodian-secret-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4()
            ));
            std::fs::write(&path, content).unwrap();
            Self(path)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempSecret {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    // Each test uses its own variable names: tests run in parallel in one process.

    #[test]
    fn secret_file_wins_and_is_trimmed() {
        let file = TempSecret::new(b"postgres://u:pw@db/x \n\n");
        std::env::set_var("CUSTODIAN_T1_URL_FILE", file.path());
        let got = Env
            .secret("CUSTODIAN_T1_URL", "CUSTODIAN_T1_URL_FILE")
            .unwrap()
            .unwrap();
        assert_eq!(got.expose(), "postgres://u:pw@db/x");
        // Leading whitespace is content (a password may start with a space).
        let file = TempSecret::new(b" pw\r\n");
        std::env::set_var("CUSTODIAN_T1B_FILE", file.path());
        let got = Env.secret("CUSTODIAN_T1B", "CUSTODIAN_T1B_FILE").unwrap();
        assert_eq!(got.unwrap().expose(), " pw");
    }

    #[test]
    fn plain_variable_when_no_file() {
        std::env::set_var("CUSTODIAN_T2_URL", "redis://h");
        let got = Env
            .secret("CUSTODIAN_T2_URL", "CUSTODIAN_T2_URL_FILE")
            .unwrap();
        assert_eq!(got.unwrap().expose(), "redis://h");
        assert!(Env
            .secret("CUSTODIAN_T2_UNSET", "CUSTODIAN_T2_UNSET_FILE")
            .unwrap()
            .is_none());
    }

    #[test]
    fn both_set_is_an_error() {
        let file = TempSecret::new(b"from-file");
        std::env::set_var("CUSTODIAN_T3", "from-env");
        std::env::set_var("CUSTODIAN_T3_FILE", file.path());
        let err = Env.secret("CUSTODIAN_T3", "CUSTODIAN_T3_FILE").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("CUSTODIAN_T3_FILE") && text.contains("CUSTODIAN_T3 "));
        assert!(!text.contains("from-file") && !text.contains("from-env"));
    }

    #[test]
    fn empty_or_missing_file_is_an_error_naming_variable_and_path() {
        let file = TempSecret::new(b" \n\t\n");
        std::env::set_var("CUSTODIAN_T4_FILE", file.path());
        let err = Env.secret("CUSTODIAN_T4", "CUSTODIAN_T4_FILE").unwrap_err();
        assert!(matches!(err, ConfigError::SecretFile { .. }));
        let text = err.to_string();
        assert!(text.contains("CUSTODIAN_T4_FILE") && text.contains(file.path()));
        assert!(text.contains("empty"));

        let missing = std::env::temp_dir().join("custodian-no-such-secret-file");
        std::env::set_var("CUSTODIAN_T5_FILE", &missing);
        let err = Env.secret("CUSTODIAN_T5", "CUSTODIAN_T5_FILE").unwrap_err();
        assert!(err.to_string().contains(missing.to_str().unwrap()));
    }

    #[test]
    fn secret_file_errors_never_show_the_content() {
        let file = TempSecret::new(b"\xff\xfehunter2");
        std::env::set_var("CUSTODIAN_T6_FILE", file.path());
        let err = Env.secret("CUSTODIAN_T6", "CUSTODIAN_T6_FILE").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn parse_reports_bad_values() {
        std::env::set_var("CUSTODIAN_TEST_BAD_PORT", "eighty");
        let err = Env.parse::<u16>("CUSTODIAN_TEST_BAD_PORT", 1).unwrap_err();
        assert!(err.to_string().contains("CUSTODIAN_TEST_BAD_PORT"));
        assert_eq!(Env.parse::<u16>("CUSTODIAN_TEST_UNSET_PORT", 7).unwrap(), 7);
    }
}
