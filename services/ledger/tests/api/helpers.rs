//! `spawn_app`: the real ledger on port 0, with a fresh database and a random stream prefix,
//! against the local PostgreSQL and Redis; a test token issuer; one method per endpoint.

use std::{sync::Arc, time::Duration};

use custodian_auth::{
    deny::DenySnapshot,
    testing::{TestIdentity, TestIssuer},
};
use custodian_events::{AccessAction, AccessEvent, AccessOutcome, Actor, Source};
use custodian_telemetry::config::{Listen, Secret};
use ledger::{
    configuration::{AuthSettings, DatabaseSettings, RedisSettings, Settings},
    startup::{Application, StopHandle},
};
use serde_json::Value;
use uuid::Uuid;

pub const ORIGIN: &str = "custodian.local/ledger";
/// The base of the links in FHIR answers.
pub const PUBLIC_URL: &str = "https://gateway.test";

pub struct TestApp {
    pub address: String,
    pub db_url: String,
    pub prefix: String,
    pub issuer: Arc<TestIssuer>,
    /// Stands in for identity's `/internal/suspended`.
    pub identity: Arc<TestIdentity>,
    pub client: awc::Client,
    pub redis: redis::aio::MultiplexedConnection,
    stop: StopHandle,
    interval: Duration,
}

/// The ledger signing a checkpoint every 100 ms.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_interval(Duration::from_millis(100)).await
}

pub async fn spawn_app_with_interval(interval: Duration) -> TestApp {
    let issuer = Arc::new(TestIssuer::start().await);
    let db_url = format!(
        "postgres://postgres@127.0.0.1:5432/ledger_test_{}",
        Uuid::new_v4().simple()
    );
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let identity = Arc::new(TestIdentity::start(DenySnapshot::default()).await);
    start(issuer, identity, db_url, prefix, interval).await
}

/// The ledger started while identity's snapshot already holds `snapshot`.
pub async fn spawn_app_with_snapshot(snapshot: DenySnapshot) -> TestApp {
    let issuer = Arc::new(TestIssuer::start().await);
    let db_url = format!(
        "postgres://postgres@127.0.0.1:5432/ledger_test_{}",
        Uuid::new_v4().simple()
    );
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let identity = Arc::new(TestIdentity::start(snapshot).await);
    start(issuer, identity, db_url, prefix, Duration::from_millis(100)).await
}

/// The ledger with settings changed by `configure` (signing key file, witnesses).
pub async fn spawn_app_configured(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let issuer = Arc::new(TestIssuer::start().await);
    let db_url = format!(
        "postgres://postgres@127.0.0.1:5432/ledger_test_{}",
        Uuid::new_v4().simple()
    );
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let identity = Arc::new(TestIdentity::start(DenySnapshot::default()).await);
    start_with(
        issuer,
        identity,
        db_url,
        prefix,
        Duration::from_millis(100),
        configure,
    )
    .await
}

async fn start(
    issuer: Arc<TestIssuer>,
    identity: Arc<TestIdentity>,
    db_url: String,
    prefix: String,
    interval: Duration,
) -> TestApp {
    start_with(issuer, identity, db_url, prefix, interval, |_| {}).await
}

async fn start_with(
    issuer: Arc<TestIssuer>,
    identity: Arc<TestIdentity>,
    db_url: String,
    prefix: String,
    interval: Duration,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings {
        listen: Listen {
            host: "127.0.0.1".into(),
            port: 0,
            tls: None,
        },
        database: DatabaseSettings {
            url: Secret::new(db_url.clone()),
            auto_create: true,
            pool_size: 4,
        },
        redis: RedisSettings {
            url: Secret::new("redis://127.0.0.1:6379"),
            stream_prefix: prefix.clone(),
            claim: Default::default(),
        },
        auth: AuthSettings {
            issuer: issuer.issuer.clone(),
            jwks_url: issuer.jwks_url.clone(),
        },
        consumer_name: format!("test-{}", Uuid::new_v4().simple()),
        origin: ORIGIN.into(),
        checkpoint_interval: interval,
        identity_url: identity.url.clone(),
        internal_token: identity.credential.clone(),
        access: custodian_access::AccessSettings::default(),
        signing_key_file: None,
        witnessing: Default::default(),
        public_url: PUBLIC_URL.into(),
    };
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let stop = app.stop_handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let redis = redis::Client::open("redis://127.0.0.1:6379")
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connects");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    TestApp {
        address,
        db_url,
        prefix,
        issuer,
        identity,
        client,
        redis,
        stop,
        interval,
    }
}

pub fn event(patient: Option<&str>, actor: &str) -> AccessEvent {
    AccessEvent {
        id: Uuid::new_v4(),
        time: chrono::Utc::now(),
        actor: Actor {
            id: actor.into(),
            role: "practitioner".into(),
            organization: Some("Organization/h1".into()),
            department: None,
            practitioner: None,
        },
        patient: patient.map(str::to_string),
        action: AccessAction::Read,
        resource_type: Some("Observation".into()),
        count: 1,
        purpose: "TREAT".into(),
        outcome: AccessOutcome::Permit,
        break_glass: false,
        confidentiality: Some("N".into()),
        source: Source {
            ip: Some("127.0.0.1".into()),
            user_agent: None,
        },
        decision: None,
        request_id: None,
        account: None,
    }
}

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl TestApp {
    /// Restarts the ledger on the same database and stream prefix (the old one is stopped).
    pub async fn restart(self) -> TestApp {
        self.stop.stop().await;
        start(
            self.issuer.clone(),
            self.identity.clone(),
            self.db_url.clone(),
            self.prefix.clone(),
            self.interval,
        )
        .await
    }

    /// Restarts the ledger on the same database with settings changed by `configure`.
    pub async fn restart_with(self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        self.stop.stop().await;
        start_with(
            self.issuer.clone(),
            self.identity.clone(),
            self.db_url.clone(),
            self.prefix.clone(),
            self.interval,
            configure,
        )
        .await
    }

    /// XADDs an event the way a producer's outbox relay does (fields `id` and `event`, signed
    /// by a key the process trusts for that stream).
    pub async fn publish_raw(&mut self, id: &str, payload: &str) {
        let stream = format!("{}:access", self.prefix);
        let mut command = redis::cmd("XADD");
        command.arg(&stream).arg("*");
        for (name, value) in custodian_events::signing::test_fields(&stream, id, payload) {
            command.arg(name).arg(value);
        }
        let _: String = command.query_async(&mut self.redis).await.expect("XADD");
    }

    /// XADDs fields to the identity stream, as identity's relay (or anyone reaching Redis) would.
    pub async fn publish_identity(&mut self, fields: &[(&'static str, String)]) {
        let mut command = redis::cmd("XADD");
        command.arg(format!("{}:identity", self.prefix)).arg("*");
        for (name, value) in fields {
            command.arg(*name).arg(value);
        }
        let _: String = command.query_async(&mut self.redis).await.expect("XADD");
    }

    /// Publishes an event; returns the exact JSON sent.
    pub async fn publish(&mut self, event: &AccessEvent) -> String {
        let payload = serde_json::to_string(event).expect("event json");
        self.publish_raw(&event.id.to_string(), &payload).await;
        payload
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(format!("{}{}", self.address, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut res = req.send().await.expect("request sent");
        let body = res.body().limit(16 * 1024 * 1024).await.expect("body");
        Response {
            status: res.status().as_u16(),
            content_type: res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: String::from_utf8(body.to_vec()).expect("utf-8 body"),
        }
    }

    pub async fn checkpoint(&self) -> String {
        let res = self.get("/ledger/checkpoint", None).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert!(
            res.content_type.starts_with("text/plain"),
            "{}",
            res.content_type
        );
        res.body
    }

    pub async fn verifier_key(&self) -> String {
        let res = self.get("/ledger/key", None).await;
        assert_eq!(res.status, 200);
        let json = res.json();
        assert_eq!(json["origin"], ORIGIN);
        assert_eq!(json["algorithm"], "ed25519");
        json["verifier_key"]
            .as_str()
            .expect("verifier_key")
            .to_string()
    }

    /// The latest checkpoint, verified with the key the ledger publishes.
    pub async fn verified_checkpoint(&self) -> (String, ledger::Checkpoint) {
        let note = self.checkpoint().await;
        let checkpoint = ledger::verify_note(&note, &self.verifier_key().await)
            .expect("the checkpoint verifies");
        (note, checkpoint)
    }

    /// Waits until a signed checkpoint covers at least `size` leaves.
    pub async fn wait_for_checkpoint(&self, size: u64) -> (String, ledger::Checkpoint) {
        for _ in 0..200 {
            let (note, cp) = self.verified_checkpoint().await;
            if cp.tree_size >= size {
                return (note, cp);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no checkpoint of size {size} within 10 s");
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics", None).await.body
    }

    /// The value of a metric of the ledger's registry.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let full = format!("custodian_{name}");
        self.metrics().await.lines().find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let bare = key.split('{').next()?;
            (bare == full).then(|| value.parse().ok()).flatten()
        })
    }

    pub async fn wait_for_metric(&self, name: &str, at_least: f64) {
        for _ in 0..200 {
            if self.metric(name).await.unwrap_or(0.0) >= at_least {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name} did not reach {at_least} within 10 s");
    }

    pub fn auditor(&self) -> String {
        self.issuer
            .token(&self.issuer.claims(custodian_auth::Role::Auditor))
    }

    /// Messages of the access stream delivered to the ledger group and not acknowledged.
    pub async fn pending(&mut self) -> i64 {
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(format!("{}:access", self.prefix))
            .arg("ledger")
            .query_async(&mut self.redis)
            .await
            .expect("XPENDING");
        match reply {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n,
                other => panic!("unexpected XPENDING reply {other:?}"),
            },
            other => panic!("unexpected XPENDING reply {other:?}"),
        }
    }

    /// Stops the app, checks nothing was left unacknowledged, drops the database and streams.
    pub async fn finish(mut self) {
        assert_eq!(
            self.pending().await,
            0,
            "the ledger left stream messages unacknowledged"
        );
        self.stop.stop().await;
        let _: Result<i64, _> = redis::cmd("DEL")
            .arg(format!("{}:access", self.prefix))
            .arg(format!("{}:access:dead", self.prefix))
            .arg(format!("{}:identity", self.prefix))
            .query_async(&mut self.redis)
            .await;
        custodian_database::drop_database(&self.db_url)
            .await
            .expect("database dropped");
    }
}
