use std::{future::Future, sync::Arc, time::Duration};

use anomaly::{
    configuration::{AnomalySettings, AuthSettings, DatabaseSettings, RedisSettings, Settings},
    startup::{Application, CONSUMER_GROUP},
};
use chrono::{DateTime, TimeZone, Utc};
use custodian_auth::{
    deny::DenySnapshot,
    testing::{TestIdentity, TestIssuer},
    Role,
};
use custodian_database::Pool;
use custodian_events::{AccessAction, AccessEvent, AccessOutcome, Actor, Alert, Source, Streams};
use custodian_telemetry::config::Listen;
use redis::{aio::ConnectionManager, AsyncCommands};
use uuid::Uuid;

/// A fixed weekday morning, so no event gets the off-hours bump whenever the tests run.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
        .single()
        .expect("valid time")
}

pub fn access_event(
    actor: &str,
    seconds: i64,
    patient: Option<&str>,
    outcome: AccessOutcome,
) -> AccessEvent {
    AccessEvent {
        id: Uuid::new_v4(),
        time: base_time() + chrono::Duration::seconds(seconds),
        actor: Actor {
            id: actor.to_string(),
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
        outcome,
        break_glass: false,
        confidentiality: None,
        source: Source::default(),
        decision: None,
        request_id: None,
        account: None,
    }
}

/// 20 reads of 20 patients in 40 seconds, 15 of them denied (no consent); the ids in no order
/// (a sweep through b0, b1, b2 ... is a signal of its own).
pub fn burst(actor: &str) -> Vec<AccessEvent> {
    (0..20)
        .map(|i| {
            let outcome = if i % 4 == 0 {
                AccessOutcome::Permit
            } else {
                AccessOutcome::Deny
            };
            access_event(
                actor,
                i * 2,
                Some(&format!("Patient/b{}", i * 7 % 20)),
                outcome,
            )
        })
        .collect()
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub streams: Streams,
    pub redis: ConnectionManager,
    pub issuer: Arc<TestIssuer>,
    pub pool: Pool,
    pub client: awc::Client,
    /// The live detector (to look at what it learned).
    pub detector: anomaly::consumer::SharedDetector,
    server: actix_web::dev::ServerHandle,
    running: tokio::task::JoinHandle<()>,
}

pub async fn spawn_app() -> TestApp {
    let database_url = format!(
        "postgres://postgres@127.0.0.1:5432/anomaly_test_{}",
        Uuid::new_v4().simple()
    );
    let prefix = format!("anomaly-test-{}", Uuid::new_v4().simple());
    spawn_on(database_url, prefix, Arc::new(TestIssuer::start().await)).await
}

/// Starts the service against a given database and stream prefix (a restart uses the same).
pub async fn spawn_on(database_url: String, prefix: String, issuer: Arc<TestIssuer>) -> TestApp {
    spawn_with_snapshot(database_url, prefix, issuer, DenySnapshot::default()).await
}

/// The service started while identity's snapshot holds `snapshot`.
pub async fn spawn_with_snapshot(
    database_url: String,
    prefix: String,
    issuer: Arc<TestIssuer>,
    snapshot: DenySnapshot,
) -> TestApp {
    spawn_configured(database_url, prefix, issuer, snapshot, |_| {}).await
}

/// A fresh service whose settings `configure` adjusts (a webhook, another threshold).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database_url = format!(
        "postgres://postgres@127.0.0.1:5432/anomaly_test_{}",
        Uuid::new_v4().simple()
    );
    let prefix = format!("anomaly-test-{}", Uuid::new_v4().simple());
    let issuer = Arc::new(TestIssuer::start().await);
    spawn_configured(
        database_url,
        prefix,
        issuer,
        DenySnapshot::default(),
        configure,
    )
    .await
}

/// The service with settings adjusted by `configure`.
pub async fn spawn_configured(
    database_url: String,
    prefix: String,
    issuer: Arc<TestIssuer>,
    snapshot: DenySnapshot,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let identity = TestIdentity::start(snapshot).await;
    // Logs only when asked for: `TEST_LOG=1 cargo test -p anomaly`.
    if std::env::var_os("TEST_LOG").is_some() {
        custodian_telemetry::logging::init("anomaly-test");
    }
    let mut settings = Settings {
        listen: Listen {
            host: "127.0.0.1".into(),
            port: 0,
            tls: None,
        },
        database: DatabaseSettings {
            url: custodian_telemetry::config::Secret::new(database_url.clone()),
            auto_create: true,
            pool_size: 4,
        },
        redis: RedisSettings {
            url: custodian_telemetry::config::Secret::new("redis://127.0.0.1:6379"),
            stream_prefix: prefix.clone(),
            claim: Default::default(),
        },
        auth: AuthSettings {
            issuer: issuer.issuer.clone(),
            jwks_url: issuer.jwks_url.clone(),
        },
        consumer_name: format!("test-{}", Uuid::new_v4().simple()),
        anomaly: AnomalySettings {
            alert_threshold: 0.8,
            suspend: true,
            suspend_confidence: 0.92,
            // Alerts that wait for an explanation come of age after a second of quiet.
            model: anomaly::model::ModelConfig {
                grace_seconds: 1,
                ..Default::default()
            },
            // Saved only where a test asks (each save is one more write per batch).
            snapshot_every: None,
        },
        identity_url: identity.url.clone(),
        internal_token: identity.credential.clone(),
        signing_key_file: std::env::temp_dir()
            .join(format!("anomaly-test-keys-{}", Uuid::new_v4().simple()))
            .join("anomaly-stream.pem"),
        access: Default::default(),
        webhook: None,
    };
    configure(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = app.server_handle();
    let pool = app.pool();
    let detector = app.detector();
    let running = actix_web::rt::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    let redis = custodian_events::streams::connect("redis://127.0.0.1:6379")
        .await
        .expect("redis");
    TestApp {
        address,
        database_url,
        streams: Streams::new(prefix),
        redis,
        issuer,
        pool,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish(),
        detector,
        server,
        running,
    }
}

/// Polls `check` every 50 ms for up to 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

impl TestApp {
    pub fn token(&self, role: Role) -> String {
        self.issuer.token(&self.issuer.claims(role))
    }

    /// Publishes an access event as the producers' relays do.
    pub async fn publish(&self, event: &AccessEvent) {
        let json = serde_json::to_string(event).expect("json");
        self.publish_raw(&event.id.to_string(), &json).await;
    }

    /// XADDs a payload as a producer's relay would: signed by a key trusted for the stream.
    pub async fn publish_raw(&self, id: &str, payload: &str) {
        let mut redis = self.redis.clone();
        let stream = self.streams.access();
        let fields = custodian_events::signing::test_fields(&stream, id, payload);
        let _: String = redis.xadd(&stream, "*", &fields).await.expect("XADD");
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let body = response.body().await.expect("body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn alerts(&self, query: &str) -> Vec<serde_json::Value> {
        let token = self.token(Role::Auditor);
        let (status, body) = self
            .get(&format!("/anomaly/alerts{query}"), Some(&token))
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().expect("an array of alerts")
    }

    pub async fn metrics(&self) -> String {
        let mut response = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("metrics");
        assert_eq!(response.status().as_u16(), 200);
        String::from_utf8(response.body().await.expect("body").to_vec()).expect("utf-8")
    }

    /// The value of a counter or gauge, summed over its labels.
    pub async fn metric(&self, name: &str) -> f64 {
        self.metric_with(name, &[]).await
    }

    /// The sum of a metric's series that carry all of `labels`.
    pub async fn metric_with(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// POSTs `body` (FHIR JSON) with a bearer token.
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let request = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .insert_header(("content-type", "application/fhir+json"));
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("request sent");
        let status = response.status().as_u16();
        let body = response.body().await.expect("body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Access events on the access stream (what the service itself recorded: reviews).
    pub async fn access_events(&self) -> Vec<AccessEvent> {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamRangeReply = redis
            .xrange_all(self.streams.access())
            .await
            .expect("XRANGE");
        reply
            .ids
            .iter()
            .filter_map(|entry| {
                let json: String = entry.get("event")?;
                serde_json::from_str(&json).ok()
            })
            .collect()
    }

    /// Waits until the consumer has handled `scored` new events and `duplicates` redeliveries.
    pub async fn wait_for_scored(&self, scored: f64, duplicates: f64) {
        eventually("events scored", || async {
            let s = self.metric("custodian_anomaly_events_scored_total").await;
            let d = self
                .metric("custodian_anomaly_events_duplicate_total")
                .await;
            (s >= scored && d >= duplicates).then_some(())
        })
        .await;
    }

    /// XADDs fields to the identity stream, as identity's relay (or anyone reaching Redis) would.
    pub async fn publish_identity(&self, fields: &[(&'static str, String)]) {
        let mut redis = self.redis.clone();
        let _: String = redis
            .xadd(self.streams.identity(), "*", fields)
            .await
            .expect("XADD");
    }

    /// The raw entries of the alerts stream.
    pub async fn alert_entries(&self) -> Vec<redis::streams::StreamId> {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamRangeReply = redis
            .xrange_all(self.streams.alerts())
            .await
            .expect("XRANGE");
        reply.ids
    }

    /// Alerts published on the alerts stream.
    pub async fn alerts_on_stream(&self) -> Vec<Alert> {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamRangeReply = redis
            .xrange_all(self.streams.alerts())
            .await
            .expect("XRANGE");
        reply
            .ids
            .iter()
            .map(|entry| {
                let json: String = entry.get("event").expect("event field");
                serde_json::from_str(&json).expect("an Alert")
            })
            .collect()
    }

    pub async fn count(&self, sql_table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.expect("connection");
        let rows: Vec<Count> = diesel_async::RunQueryDsl::load(
            diesel::sql_query(format!("SELECT count(*) AS n FROM {sql_table}")),
            &mut conn,
        )
        .await
        .expect("count");
        rows[0].n
    }

    /// Messages delivered to the `anomaly` group and not acknowledged.
    pub async fn pending(&self) -> usize {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamPendingReply = redis
            .xpending(self.streams.access(), CONSUMER_GROUP)
            .await
            .expect("XPENDING");
        reply.count()
    }

    /// Stops the server and background tasks; fails when messages stay unacknowledged.
    pub async fn stop(self) -> (String, String, Arc<TestIssuer>) {
        eventually("every delivered message acknowledged", || async {
            (self.pending().await == 0).then_some(())
        })
        .await;
        self.server.stop(true).await;
        let _ = self.running.await;
        let prefix = self
            .streams
            .access()
            .trim_end_matches(":access")
            .to_string();
        (self.database_url, prefix, self.issuer)
    }

    /// Stops the app, drops its database and its streams.
    pub async fn cleanup(self) {
        let mut redis = self.redis.clone();
        let keys = [
            self.streams.access(),
            format!("{}:dead", self.streams.access()),
            self.streams.alerts(),
            self.streams.identity(),
            self.streams.relationships(),
            format!("{}:dead", self.streams.relationships()),
        ];
        let (database_url, _, _) = self.stop().await;
        let _: Result<i64, _> = redis.del(&keys).await;
        let _ = custodian_database::drop_database(&database_url).await;
    }
}
