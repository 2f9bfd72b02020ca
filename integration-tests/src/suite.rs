//! The whole suite as real processes: six binaries on free ports, fresh databases, a fresh
//! stream prefix, the local PostgreSQL and Redis. Dropping a [`Suite`] stops the services
//! (SIGTERM, then SIGKILL after a grace period) and drops its databases.
//!
//! Each suite has its own key directory (`<log dir>/keys`): the `/internal/*` credential
//! (`INTERNAL_TOKEN_FILE`) and every producer's stream signing key (`STREAM_SIGNING_KEY_FILE`),
//! which the services create there when they first start, and which every consumer trusts
//! (`STREAM_TRUSTED_KEYS_DIR`). Keys of another suite, or of `make run`, are never trusted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code (end-to-end harness)

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const SERVICES: [&str; 6] = [
    "identity", "consent", "records", "ledger", "anomaly", "gateway",
];

/// Where the service binaries are: the target directory of the running test or binary.
pub fn binary_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CUSTODIAN_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    reserve_port().1
}

/// A free port, held by a listener until the caller drops it: while held, no other process's
/// `bind(0)` is given it (a suite starts its services one by one, over seconds).
fn reserve_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free local port");
    let port = listener.local_addr().expect("a bound address").port();
    (listener, port)
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// A service's `REDIS_URL`: `E2E_REDIS_URL_<SERVICE>` (its own ACL user on the project's
/// Redis; `make test` sets them), else `E2E_REDIS_URL`, else the local Redis on 6379.
fn redis_url(service: &str) -> String {
    std::env::var(format!("E2E_REDIS_URL_{}", service.to_ascii_uppercase()))
        .or_else(|_| std::env::var("E2E_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct Suite {
    pub prefix: String,
    pub admin_password: String,
    pub ports: BTreeMap<&'static str, u16>,
    /// The ports of services not started yet, held until each is spawned (see [`reserve_port`]).
    reserved: BTreeMap<&'static str, TcpListener>,
    pub log_dir: PathBuf,
    /// The suite's credential and stream keys (see the module doc).
    pub key_dir: PathBuf,
    database_base: String,
    /// One `REDIS_URL` for every service, or each its own (see [`redis_url`]).
    redis: Option<String>,
    /// Settings given to every service after the defaults (see [`Suite::start_with`]).
    settings: Vec<(String, String)>,
    children: Vec<(&'static str, Child)>,
    /// Starts so far, per service: with [`Backing::new_consumer_names`], a restarted service
    /// joins its consumer groups under a new name, as a new pod would.
    starts: BTreeMap<&'static str, u32>,
    new_consumer_names: bool,
    /// Records' encryption key: the same across restarts, or what it stored is unreadable.
    records_key: String,
}

/// Where a suite keeps its data, when not on the local servers (the fault harness brings its
/// own PostgreSQL and Redis, to restart them).
#[derive(Debug, Clone)]
pub struct Backing {
    /// `postgres://user@host:port`, without a database name.
    pub database_base: String,
    pub redis_url: String,
    /// A restarted service takes a new consumer name (hostname-pid, a Deployment's new pod)
    /// instead of its old one (a StatefulSet's): what it left pending must then be claimed.
    pub new_consumer_names: bool,
}

impl Suite {
    pub fn url(&self, service: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[service])
    }

    pub fn gateway_url(&self) -> String {
        self.url("gateway")
    }

    pub fn database_url(&self, service: &str) -> String {
        format!("{}/e2e_{}_{}", self.database_base, service, self.prefix)
    }

    /// Starts every service with the default access policy (the custodian rule, hidden denials
    /// as 404) and waits until each answers `/readyz`.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`Suite::start`] with settings given to every service over the defaults, e.g.
    /// `[("ACCESS_POLICY", "opt-in")]` or `[("ACCESS_EXPLAIN_DENIALS", "true")]`.
    pub async fn start_with(settings: &[(&str, &str)]) -> Self {
        let database_base = std::env::var("E2E_DATABASE_BASE")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        Self::start_on(
            Backing {
                database_base,
                redis_url: String::new(),
                new_consumer_names: false,
            },
            settings,
        )
        .await
    }

    /// [`Suite::start_with`] on another PostgreSQL and Redis (an empty `redis_url`: the usual
    /// ones, see [`redis_url`]).
    pub async fn start_on(backing: Backing, settings: &[(&str, &str)]) -> Self {
        let prefix = format!("s{}", random_hex(6));
        let database_base = backing.database_base;
        let log_dir = binary_dir().join("e2e-logs").join(&prefix);
        std::fs::create_dir_all(&log_dir).expect("log directory");
        let key_dir = log_dir.join("keys");
        std::fs::create_dir_all(&key_dir).expect("key directory");
        let (reserved, ports) = SERVICES
            .iter()
            .map(|s| {
                let (listener, port) = reserve_port();
                ((*s, listener), (*s, port))
            })
            .unzip();
        let mut suite = Self {
            prefix,
            admin_password: random_hex(16),
            ports,
            reserved,
            log_dir,
            key_dir,
            database_base,
            redis: Some(backing.redis_url).filter(|u| !u.is_empty()),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            children: Vec::new(),
            starts: BTreeMap::new(),
            new_consumer_names: backing.new_consumer_names,
            records_key: random_hex(32),
        };
        for service in SERVICES {
            suite.spawn(service);
            suite.wait_ready(service).await;
        }
        suite
    }

    fn env_for(&self, service: &'static str) -> Vec<(String, String)> {
        let mut env: Vec<(&str, String)> = vec![
            ("HOST", "127.0.0.1".into()),
            ("PORT", self.ports[service].to_string()),
            (
                "REDIS_URL",
                self.redis.clone().unwrap_or_else(|| redis_url(service)),
            ),
            // Every service that verifies tokens loads identity's deny-list snapshot.
            ("IDENTITY_URL", self.url("identity")),
            ("REDIS_STREAM_PREFIX", self.prefix.clone()),
            ("TOKEN_ISSUER", self.gateway_url()),
            (
                "JWKS_URL",
                format!("{}/.well-known/jwks.json", self.url("identity")),
            ),
            ("PUBLIC_URL", self.gateway_url()),
            ("CONSUMER_NAME", self.consumer_name(service)),
            ("RUST_LOG", "info".into()),
            ("DATABASE_POOL_SIZE", "8".into()),
            (
                "INTERNAL_TOKEN_FILE",
                self.key_dir.join("internal.token").display().to_string(),
            ),
            (
                "STREAM_SIGNING_KEY_FILE",
                self.key_dir
                    .join(format!("{service}-stream.pem"))
                    .display()
                    .to_string(),
            ),
            (
                "STREAM_TRUSTED_KEYS_DIR",
                self.key_dir.display().to_string(),
            ),
        ];
        if service != "gateway" {
            env.push(("DATABASE_URL", self.database_url(service)));
        }
        match service {
            "identity" => {
                env.push(("ADMIN_USERNAME", "admin".into()));
                env.push(("ADMIN_PASSWORD", self.admin_password.clone()));
            }
            "records" => {
                env.push(("CONSENT_URL", self.url("consent")));
                env.push(("RECORDS_ENCRYPTION_KEY", self.records_key.clone()));
            }
            "ledger" => env.push(("CHECKPOINT_INTERVAL_MS", "200".into())),
            "gateway" => {
                for upstream in ["identity", "consent", "records", "ledger", "anomaly"] {
                    let key = match upstream {
                        "identity" => "IDENTITY_URL",
                        "consent" => "CONSENT_URL",
                        "records" => "RECORDS_URL",
                        "ledger" => "LEDGER_URL",
                        _ => "ANOMALY_URL",
                    };
                    env.push((key, self.url(upstream)));
                }
            }
            _ => {}
        }
        // The access policy is the test's, never inherited from the caller's environment.
        env.push(("ACCESS_POLICY", "custodian".into()));
        env.push(("ACCESS_EXPLAIN_DENIALS", "false".into()));
        let mut env: Vec<(String, String)> =
            env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        env.extend(self.settings.iter().cloned());
        env
    }

    fn consumer_name(&self, service: &'static str) -> String {
        let starts = self.starts.get(service).copied().unwrap_or(0);
        if self.new_consumer_names && starts > 1 {
            format!("{service}-{}-{starts}", self.prefix)
        } else {
            format!("{service}-{}", self.prefix)
        }
    }

    fn spawn(&mut self, service: &'static str) {
        let binary = binary_dir().join(service);
        assert!(
            binary.exists(),
            "{} is missing: build the services first (`cargo build --workspace --bins`; `make test` does)",
            binary.display()
        );
        *self.starts.entry(service).or_default() += 1;
        // Let go of the port just before the service binds it.
        drop(self.reserved.remove(service));
        // A restart appends: what the service said before it died stays readable.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{service}.log")))
            .expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new(&binary)
            .envs(self.env_for(service))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {service}: {e}"));
        self.children.push((service, child));
    }

    /// The last lines of a service's log, for failure messages.
    pub fn log_tail(&self, service: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_dir.join(format!("{service}.log")))
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Waits until the service answers `/readyz` as ready, and as itself: a process that took
    /// its port (the service then exits, unable to bind) answers for another service.
    async fn wait_ready(&mut self, service: &'static str) {
        let url = format!("{}/readyz", self.url(service));
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(2))
            .finish();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(mut response) = client.get(&url).send().await {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if response.status().is_success() && body["service"] == service {
                    return;
                }
            }
            if let Some((_, child)) = self.children.iter_mut().find(|(s, _)| *s == service) {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{service} exited with {status} during start:\n{}",
                        self.log_tail(service, 40)
                    );
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{service} was not ready within 90 s:\n{}",
                    self.log_tail(service, 40)
                );
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops one service gracefully (used to test crash and restart behaviour).
    pub fn stop(&mut self, service: &str) {
        if let Some(index) = self.children.iter().position(|(s, _)| *s == service) {
            let (_, mut child) = self.children.remove(index);
            terminate(&mut child);
        }
    }

    /// Starts a stopped service again with the same configuration.
    pub async fn restart(&mut self, service: &'static str) {
        self.stop(service);
        self.spawn(service);
        self.wait_ready(service).await;
    }

    /// SIGKILL: the service dies at once, whatever it was doing.
    pub fn kill(&mut self, service: &str) {
        if let Some(index) = self.children.iter().position(|(s, _)| *s == service) {
            let (_, mut child) = self.children.remove(index);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a service that is not running (after [`Suite::kill`]) and waits until ready.
    pub async fn start_again(&mut self, service: &'static str) {
        self.spawn(service);
        self.wait_ready(service).await;
    }

    /// The suite's stream prefix: its streams are `<prefix>:access`, ...
    pub fn stream_prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis the suite's streams are on (the ledger's connection: it may read the access
    /// stream's groups).
    pub fn redis_url(&self) -> String {
        self.redis.clone().unwrap_or_else(|| redis_url("ledger"))
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Suite {
    fn drop(&mut self) {
        // Stop the gateway first, the services it calls after it.
        while let Some((_, mut child)) = self.children.pop() {
            terminate(&mut child);
        }
        if std::env::var("E2E_KEEP_DATABASES").is_err() {
            for service in SERVICES.iter().filter(|s| **s != "gateway") {
                let name = format!("e2e_{}_{}", service, self.prefix);
                let _ = Command::new("psql")
                    .arg(format!("{}/postgres", self.database_base))
                    .arg("-qc")
                    .arg(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
