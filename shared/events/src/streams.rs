//! Stream keys. A prefix (`REDIS_STREAM_PREFIX`, default `custodian`) lets several deployments
//! or test runs share one Redis without reading each other's events.

#[derive(Debug, Clone)]
pub struct Streams {
    prefix: String,
}

impl Streams {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn from_env() -> Self {
        Self::new(custodian_telemetry::Env.string("REDIS_STREAM_PREFIX", "custodian"))
    }

    /// Access events: every read, search, write, login or denial (ledger and anomaly consume).
    pub fn access(&self) -> String {
        format!("{}:access", self.prefix)
    }

    /// Consent changes: records keeps its replica of the rules current from it.
    pub fn consent(&self) -> String {
        format!("{}:consent", self.prefix)
    }

    /// Identity changes: suspensions, reinstatements, revoked tokens (the gateway consumes).
    pub fn identity(&self) -> String {
        format!("{}:identity", self.prefix)
    }

    /// Relationships records reads from clinical data: who is in which CareTeam, Group and
    /// PractitionerRole (consent and every records replica follow it), and care facts.
    pub fn relationships(&self) -> String {
        format!("{}:relationships", self.prefix)
    }

    /// Alerts raised by anomaly (identity consumes them to suspend users).
    pub fn alerts(&self) -> String {
        format!("{}:alerts", self.prefix)
    }
}

/// The consumer groups that must acknowledge a stream's message before its producer's outbox
/// forgets it (`outbox::Relay::keep`): the ledger and anomaly for access events, anomaly for
/// care facts and labels, identity for alerts. Consent and identity changes are read by
/// replicas' tails (which start from a snapshot), not by groups.
pub fn groups_of(stream: &str) -> &'static [&'static str] {
    match stream.rsplit(':').next().unwrap_or(stream) {
        "access" => &["ledger", "anomaly"],
        "relationships" => &["anomaly"],
        "alerts" => &["identity"],
        _ => &[],
    }
}

/// `REDIS_URL` (or `REDIS_URL_FILE`), `REDIS_STREAM_PREFIX` and the consumer groups' claim
/// policy (`STREAM_CLAIM_IDLE_MS`, `STREAM_MAX_DELIVERIES`), read the same way by every
/// service. A `rediss://` URL connects over TLS ([`RedisTls`]).
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// May carry a password, hence a secret.
    pub url: custodian_telemetry::config::Secret,
    pub stream_prefix: String,
    pub claim: ClaimPolicy,
}

impl RedisSettings {
    pub fn from_env(
        env: &custodian_telemetry::Env,
    ) -> Result<Self, custodian_telemetry::ConfigError> {
        Ok(Self {
            url: Self::url_from_env(env)?,
            stream_prefix: env.string("REDIS_STREAM_PREFIX", "custodian"),
            claim: ClaimPolicy::from_env(env)?,
        })
    }

    /// `REDIS_URL_FILE` or `REDIS_URL` (`redis://127.0.0.1:6379`); the TLS files
    /// ([`RedisTls::from_env`]) are checked too, so a bad one stops the service at start.
    pub fn url_from_env(
        env: &custodian_telemetry::Env,
    ) -> Result<custodian_telemetry::config::Secret, custodian_telemetry::ConfigError> {
        let url = env
            .secret("REDIS_URL", "REDIS_URL_FILE")?
            .unwrap_or_else(|| custodian_telemetry::config::Secret::new("redis://127.0.0.1:6379"));
        RedisTls::from_env(env)?;
        Ok(url)
    }

    pub fn streams(&self) -> Streams {
        Streams::new(self.stream_prefix.clone())
    }
}

/// When a consumer group's messages change hands. A message delivered to a consumer that has not
/// acknowledged it for `min_idle` (it died, or hangs) is claimed by another member of the group;
/// a message delivered `max_deliveries` times without being acknowledged (it kills whoever
/// handles it) goes to the dead-letter stream instead of killing the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimPolicy {
    pub min_idle: std::time::Duration,
    pub max_deliveries: usize,
}

impl Default for ClaimPolicy {
    fn default() -> Self {
        Self {
            min_idle: std::time::Duration::from_secs(20),
            max_deliveries: 5,
        }
    }
}

impl ClaimPolicy {
    pub fn from_env(
        env: &custodian_telemetry::Env,
    ) -> Result<Self, custodian_telemetry::ConfigError> {
        let default = Self::default();
        let min_idle_ms: u64 =
            env.parse("STREAM_CLAIM_IDLE_MS", default.min_idle.as_millis() as u64)?;
        let max_deliveries: usize = env.parse("STREAM_MAX_DELIVERIES", default.max_deliveries)?;
        if min_idle_ms < 100 {
            return Err(custodian_telemetry::ConfigError::Invalid {
                name: "STREAM_CLAIM_IDLE_MS".into(),
                reason: "must be at least 100 (a live consumer must not lose its messages)".into(),
            });
        }
        if max_deliveries < 2 {
            return Err(custodian_telemetry::ConfigError::Invalid {
                name: "STREAM_MAX_DELIVERIES".into(),
                reason: "must be at least 2 (one crash must not dead-letter a message)".into(),
            });
        }
        Ok(Self {
            min_idle: std::time::Duration::from_millis(min_idle_ms),
            max_deliveries,
        })
    }
}

/// This instance's name in consumer groups: `CONSUMER_NAME`, else `hostname-pid` (unique per
/// process, stable for its lifetime; the pod name in Kubernetes).
pub fn consumer_name_from_env(env: &custodian_telemetry::Env, service: &str) -> String {
    env.optional("CONSUMER_NAME").unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| service.to_string());
        format!("{host}-{}", std::process::id())
    })
}

/// What a `rediss://` connection trusts and presents: `REDIS_CA_FILE` (PEM; unset: the
/// system's roots), `REDIS_CLIENT_CERT_FILE` and `REDIS_CLIENT_KEY_FILE` (PEM, the key PKCS#8:
/// `BEGIN PRIVATE KEY`; both or neither) for a Redis that requires client certificates
/// (`tls-auth-clients yes`). The server's host name is checked against its certificate.
///
/// The redis crate's `native-tls` backend is used, which is OpenSSL on Linux: the TLS stack
/// the workspace already links, and it takes a custom CA and a client certificate.
#[derive(Clone, Default)]
pub struct RedisTls {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

impl RedisTls {
    /// From `REDIS_CA_FILE`, `REDIS_CLIENT_CERT_FILE`, `REDIS_CLIENT_KEY_FILE`; the files are
    /// read now.
    pub fn from_env(
        env: &custodian_telemetry::Env,
    ) -> Result<Self, custodian_telemetry::ConfigError> {
        let read = |name: &str| -> Result<Option<Vec<u8>>, custodian_telemetry::ConfigError> {
            let Some(path) = env.optional(name) else {
                return Ok(None);
            };
            let path = path.trim();
            std::fs::read(path)
                .map(Some)
                .map_err(|e| custodian_telemetry::ConfigError::Invalid {
                    name: name.into(),
                    reason: format!("cannot read {path}: {e}"),
                })
        };
        let ca = read("REDIS_CA_FILE")?;
        let client = match (
            read("REDIS_CLIENT_CERT_FILE")?,
            read("REDIS_CLIENT_KEY_FILE")?,
        ) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((cert, key)),
            (Some(_), None) => {
                return Err(custodian_telemetry::ConfigError::Missing(
                    "REDIS_CLIENT_KEY_FILE".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(custodian_telemetry::ConfigError::Missing(
                    "REDIS_CLIENT_CERT_FILE".into(),
                ))
            }
        };
        Ok(Self { ca, client })
    }

    /// From PEM files (tests, tools).
    pub fn from_files(
        ca: Option<&std::path::Path>,
        client: Option<(&std::path::Path, &std::path::Path)>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            ca: ca.map(std::fs::read).transpose()?,
            client: match client {
                Some((cert, key)) => Some((std::fs::read(cert)?, std::fs::read(key)?)),
                None => None,
            },
        })
    }
}

/// A Redis client for `url`: over TLS with the environment's [`RedisTls`] for `rediss://`,
/// plain for `redis://`. Every connection the services make starts here.
pub fn client(url: &str) -> Result<redis::Client, redis::RedisError> {
    if !url.starts_with("rediss://") {
        return redis::Client::open(url);
    }
    let tls = RedisTls::from_env(&custodian_telemetry::Env).map_err(|e| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "Redis TLS settings",
            e.to_string(),
        ))
    })?;
    client_with(url, &tls)
}

/// A Redis client for `url` with explicit TLS settings (used for `rediss://` only).
pub fn client_with(url: &str, tls: &RedisTls) -> Result<redis::Client, redis::RedisError> {
    if !url.starts_with("rediss://") || (tls.ca.is_none() && tls.client.is_none()) {
        return redis::Client::open(url);
    }
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: tls
                .client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: tls.ca.clone(),
        },
    )
}

/// How long a first connection to Redis is retried when Redis is slow or not up yet.
pub const CONNECT_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens a Redis connection manager (reconnects by itself after Redis restarts). Logs where
/// it connects, without the password. A first connection that times out or is refused is tried
/// again for up to [`CONNECT_WITHIN`]: a service restarted while Redis is busy or restarting
/// (seen in the fault harness on a loaded machine: "redis: timed out" after 4 s) should wait
/// for it, as it would once connected, not exit. Other errors (a wrong password) fail at once.
pub async fn connect(url: &str) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
    connect_client(url, client(url)?, manager_config()).await
}

/// [`connect`] for a connection whose commands may wait `response` for their reply (a
/// consumer's blocking reads), its first connection retried the same way.
pub async fn connect_waiting(
    url: &str,
    response: std::time::Duration,
) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
    connect_client(
        url,
        client(url)?,
        manager_config().set_response_timeout(Some(response)),
    )
    .await
}

/// [`connect`] with explicit TLS settings.
pub async fn connect_with(
    url: &str,
    tls: &RedisTls,
) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
    connect_client(url, client_with(url, tls)?, manager_config()).await
}

async fn connect_client(
    url: &str,
    client: redis::Client,
    config: redis::aio::ConnectionManagerConfig,
) -> Result<redis::aio::ConnectionManager, redis::RedisError> {
    tracing::info!(redis = %redacted(url), "connecting to Redis");
    while_unreachable("Redis not reachable yet", || {
        redis::aio::ConnectionManager::new_with_config(client.clone(), config.clone())
    })
    .await
}

/// Runs `attempt` again while it fails because Redis is slow or away (a timeout, a refused or
/// dropped connection), for up to [`CONNECT_WITHIN`], waiting 0.2 s doubling to 2 s between
/// tries: what a service does as it starts, when it cannot yet serve without Redis. Other
/// errors (a wrong password) are returned at once.
pub async fn while_unreachable<T, F, Fut>(
    waiting: &'static str,
    mut attempt: F,
) -> Result<T, redis::RedisError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, redis::RedisError>>,
{
    let deadline = tokio::time::Instant::now() + CONNECT_WITHIN;
    let mut wait = std::time::Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e)
                if (e.is_timeout()
                    || e.is_io_error()
                    || e.is_connection_refusal()
                    || e.is_connection_dropped())
                    && tokio::time::Instant::now() + wait < deadline =>
            {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "{waiting}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long one command may wait for its reply. The client's default, 500 ms, turned a Redis
/// slowed for half a second (a loaded 2-core machine: `XADD: timed out` in a fresh-clone
/// `make test`) into failed commands. A reply slower than this is an outage, and the caller's
/// retry (a relay's next pass, a consumer's next read) takes over.
pub const RESPONSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_WITHIN))
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
}

/// A Redis URL fit for logs: the password (`redis://user:password@host`, `redis://:password@host`)
/// replaced by `***`; the user name, host, port and database kept.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => userinfo.to_string(),
            };
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// A readiness probe: Redis answers PING.
pub struct RedisProbe(pub redis::aio::ConnectionManager);

impl custodian_telemetry::ReadinessProbe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn check(&self) -> custodian_telemetry::health::ProbeFuture {
        let mut conn = self.0.clone();
        Box::pin(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redacted("redis://records:s3cr3t@127.0.0.1:6380/0"),
            "redis://records:***@127.0.0.1:6380/0"
        );
        assert_eq!(
            redacted("redis://:s3cr3t@redis:6379"),
            "redis://:***@redis:6379"
        );
        assert_eq!(redacted("rediss://u:p@w@h"), "rediss://u:***@h");
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("not a url"), "not a url");
    }
}
