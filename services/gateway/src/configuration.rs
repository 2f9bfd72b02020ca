//! Settings from the environment (names spelled out in full so `grep` finds them), with
//! defaults that work on a developer machine. See `docs/contracts.md`.

use std::time::Duration;

use custodian_auth::InternalToken;
use custodian_telemetry::{
    config::{Listen, Secret},
    tls::ClientTls,
    ConfigError, Env,
};

use crate::{forwarding::TrustedProxies, routing::Upstream};

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST` (`127.0.0.1`) and `PORT` (`8080`; `0` picks a free port).
    pub listen: Listen,
    /// `REDIS_URL` (`redis://127.0.0.1:6379`); may carry a password, so it never prints.
    pub redis_url: Secret,
    /// `REDIS_STREAM_PREFIX` (`custodian`).
    pub stream_prefix: String,
    /// `TOKEN_ISSUER` (`http://127.0.0.1:8080`): the `iss` every token must carry.
    pub token_issuer: String,
    /// `JWKS_URL` (`http://127.0.0.1:8081/.well-known/jwks.json`).
    pub jwks_url: String,
    /// The five services behind the gateway.
    pub upstreams: Upstreams,
    /// `PUBLIC_URL` (`http://127.0.0.1:8080`): how clients reach the gateway.
    pub public_url: String,
    /// `GATEWAY_MAX_BODY_BYTES` (16 MiB): larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// `UPSTREAM_TIMEOUT_MS` (30000): time allowed for an upstream's response head (504 after).
    pub upstream_timeout: Duration,
    /// `TRUSTED_PROXIES` (empty): peers whose `X-Forwarded-For`/`-Proto`/`-Host` are believed.
    /// The gateway faces clients, so by default nobody's are.
    pub trusted_proxies: TrustedProxies,
    /// `INTERNAL_TOKEN_FILE` (`var/keys/internal.token`, created when missing): the service
    /// credential for identity's `/internal/suspended`.
    pub internal_token: InternalToken,
}

/// Base URLs (`http://host:port`, no trailing slash) of the services behind the gateway.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// `IDENTITY_URL` (`http://127.0.0.1:8081`).
    pub identity: UpstreamUrl,
    /// `CONSENT_URL` (`http://127.0.0.1:8082`).
    pub consent: UpstreamUrl,
    /// `RECORDS_URL` (`http://127.0.0.1:8083`).
    pub records: UpstreamUrl,
    /// `LEDGER_URL` (`http://127.0.0.1:8084`).
    pub ledger: UpstreamUrl,
    /// `ANOMALY_URL` (`http://127.0.0.1:8085`).
    pub anomaly: UpstreamUrl,
}

impl Upstreams {
    /// The base URL of one upstream.
    pub fn get(&self, upstream: Upstream) -> &UpstreamUrl {
        match upstream {
            Upstream::Identity => &self.identity,
            Upstream::Consent => &self.consent,
            Upstream::Records => &self.records,
            Upstream::Ledger => &self.ledger,
            Upstream::Anomaly => &self.anomaly,
        }
    }
}

/// A base URL of a service (`http://host[:port]` or `https://host[:port]`), parsed once at
/// start. `https://` upstreams are verified against `UPSTREAM_CA_FILE` (or the system's roots),
/// and presented `UPSTREAM_CLIENT_CERT_FILE` when they require mutual TLS
/// ([`custodian_telemetry::tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    base: String,
    authority: String,
}

impl UpstreamUrl {
    /// Accepts `http(s)://host`, `http(s)://host:port`, with or without a trailing slash.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_end_matches('/');
        let (authority, default_port) = match raw.strip_prefix("https://") {
            Some(rest) => (rest, 443),
            None => (
                raw.strip_prefix("http://")
                    .ok_or_else(|| format!("`{raw}` is not an http:// or https:// URL"))?,
                80,
            ),
        };
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!("`{raw}` must be http://host[:port] without a path"));
        }
        let has_port = match authority.strip_prefix('[') {
            Some(ipv6) => ipv6.contains("]:"),
            None => authority.contains(':'),
        };
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        Ok(Self {
            base: raw.to_string(),
            authority,
        })
    }

    /// `http://host:port`, no trailing slash: request paths are appended as they are.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `host:port`, for the readiness probe's TCP connection.
    pub fn authority(&self) -> &str {
        &self.authority
    }
}

impl Settings {
    /// Reads the settings from environment variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = Env;
        let upstream = |name: &str, default: &str| -> Result<UpstreamUrl, ConfigError> {
            UpstreamUrl::parse(&env.string(name, default)).map_err(|reason| ConfigError::Invalid {
                name: name.to_string(),
                reason,
            })
        };
        let timeout_ms: u64 = env.parse("UPSTREAM_TIMEOUT_MS", 30_000)?;
        if timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                name: "UPSTREAM_TIMEOUT_MS".into(),
                reason: "must be positive".into(),
            });
        }
        // Checked now; the upstream client, JWKS and snapshot fetches use it.
        ClientTls::from_env(&env)?;
        Ok(Self {
            listen: Listen::from_env(&env, "HOST", "PORT", 8080)?,
            redis_url: custodian_events::streams::RedisSettings::url_from_env(&env)?,
            stream_prefix: env.string("REDIS_STREAM_PREFIX", "custodian"),
            token_issuer: env.string("TOKEN_ISSUER", "http://127.0.0.1:8080"),
            jwks_url: env.string("JWKS_URL", "http://127.0.0.1:8081/.well-known/jwks.json"),
            upstreams: Upstreams {
                identity: upstream("IDENTITY_URL", "http://127.0.0.1:8081")?,
                consent: upstream("CONSENT_URL", "http://127.0.0.1:8082")?,
                records: upstream("RECORDS_URL", "http://127.0.0.1:8083")?,
                ledger: upstream("LEDGER_URL", "http://127.0.0.1:8084")?,
                anomaly: upstream("ANOMALY_URL", "http://127.0.0.1:8085")?,
            },
            public_url: env
                .string("PUBLIC_URL", "http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_string(),
            max_body_bytes: env.parse("GATEWAY_MAX_BODY_BYTES", 16 * 1024 * 1024)?,
            upstream_timeout: Duration::from_millis(timeout_ms),
            trusted_proxies: TrustedProxies::parse(&env.string("TRUSTED_PROXIES", "")).map_err(
                |reason| ConfigError::Invalid {
                    name: "TRUSTED_PROXIES".into(),
                    reason,
                },
            )?,
            internal_token: InternalToken::from_env()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::UpstreamUrl;

    #[test]
    fn upstream_urls_are_parsed() {
        let url = UpstreamUrl::parse("http://records:8083/").unwrap();
        assert_eq!(url.base(), "http://records:8083");
        assert_eq!(url.authority(), "records:8083");
        assert_eq!(
            UpstreamUrl::parse("http://records").unwrap().authority(),
            "records:80"
        );
        assert_eq!(
            UpstreamUrl::parse("http://[::1]:9").unwrap().authority(),
            "[::1]:9"
        );
        assert_eq!(
            UpstreamUrl::parse("http://[::1]").unwrap().authority(),
            "[::1]:80"
        );
        let tls = UpstreamUrl::parse("https://records.custodian.svc:8083/").unwrap();
        assert_eq!(tls.base(), "https://records.custodian.svc:8083");
        assert_eq!(
            UpstreamUrl::parse("https://records").unwrap().authority(),
            "records:443"
        );
    }

    #[test]
    fn upstream_urls_are_refused() {
        assert!(UpstreamUrl::parse("ftp://records:8083").is_err());
        assert!(UpstreamUrl::parse("records:8083").is_err());
        assert!(UpstreamUrl::parse("http://records:8083/fhir").is_err());
        assert!(UpstreamUrl::parse("http://").is_err());
    }
}
