//! `spawn_app`: the real application on port 0, a fresh database and a random stream prefix per
//! test, a local token issuer, and one method per endpoint.

use std::time::Duration;

use actix_web::http::{header::HeaderMap, StatusCode};
use consent::{
    configuration::{AccessSettings, AuthSettings, DatabaseSettings, RedisSettings, Settings},
    startup::Application,
};
use custodian_auth::{testing::TestIssuer, Role};
use custodian_events::{AccessEvent, MembershipChange, RelationshipEvent, Streams};
use custodian_policy::ConsentChange;
use custodian_telemetry::config::{Listen, Secret};
use serde_json::Value;
use uuid::Uuid;

pub const PUBLIC_URL: &str = "http://gateway.test";
const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The consent most tests record: Alice permits Organization/h1 to access her record for TREAT.
pub fn alice_consent() -> Value {
    serde_json::from_str(include_str!("fixtures/consent-alice-h1.json")).expect("fixture is JSON")
}

/// The same consent for another patient.
pub fn consent_for(patient: &str) -> Value {
    let mut consent = alice_consent();
    consent["patient"] = serde_json::json!({ "reference": patient });
    consent
}

/// A consent of `patient` permitting exactly `actor` (any reference) to access her record.
pub fn permitting(patient: &str, actor: &str) -> Value {
    let mut consent = consent_for(patient);
    consent["provision"]["actor"][0]["reference"]["reference"] = actor.into();
    consent
}

/// An answer, read completely.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts an `OperationOutcome` body and returns its diagnostics joined.
    pub fn outcome(&self) -> String {
        assert_eq!(
            self.body["resourceType"], "OperationOutcome",
            "body: {}",
            self.body
        );
        let issues = self.body["issue"].as_array().expect("issues");
        assert!(!issues.is_empty(), "an OperationOutcome with no issue");
        issues
            .iter()
            .map(|i| i["diagnostics"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub streams: Streams,
    pub issuer: TestIssuer,
    client: awc::Client,
    redis: redis::aio::ConnectionManager,
    handle: actix_web::dev::ServerHandle,
}

/// Serves `GET /internal/memberships` with a fixed snapshot, like records.
async fn fake_records(snapshot: Vec<MembershipChange>) -> String {
    let body = serde_json::to_string(&snapshot).expect("snapshot JSON");
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        actix_web::App::new().route(
            "/internal/memberships",
            actix_web::web::get().to(move || {
                let body = body.clone();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_memberships(vec![]).await
}

/// The app, with records' membership snapshot holding `memberships`; returns once ready.
pub async fn spawn_app_with_memberships(memberships: Vec<MembershipChange>) -> TestApp {
    let app = build(fake_records(memberships).await).await;
    // Ready once the identity and membership snapshots are loaded.
    for _ in 0..100 {
        if app.get("/readyz", None).await.status == StatusCode::OK {
            return app;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("consent never became ready");
}

/// The app with no records answering: its membership snapshot never loads.
pub async fn spawn_app_without_records() -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    build(format!("http://127.0.0.1:{port}")).await
}

async fn build(records_url: String) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        custodian_telemetry::logging::init("consent-test");
    }
    let issuer = TestIssuer::start().await;
    let database_url = format!(
        "postgres://postgres@127.0.0.1:5432/consent_test_{}",
        Uuid::new_v4().simple()
    );
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    let settings = Settings {
        listen: Listen {
            host: "127.0.0.1".into(),
            port: 0,
            tls: None,
        },
        database: DatabaseSettings {
            url: Secret::new(database_url.clone()),
            auto_create: true,
            pool_size: 4,
        },
        redis: RedisSettings {
            url: Secret::new(REDIS_URL),
            stream_prefix: prefix.clone(),
            claim: Default::default(),
        },
        auth: AuthSettings {
            issuer: issuer.issuer.clone(),
            jwks_url: issuer.jwks_url.clone(),
        },
        access: AccessSettings::default(),
        public_url: PUBLIC_URL.into(),
        identity_url: custodian_auth::testing::TestIdentity::start(Default::default())
            .await
            .url,
        records_url,
    };
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.server_handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let redis = custodian_events::streams::connect(REDIS_URL)
        .await
        .expect("redis");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    TestApp {
        address,
        database_url,
        streams: Streams::new(prefix),
        issuer,
        client,
        redis,
        handle,
    }
}

impl TestApp {
    pub fn patient_token(&self, patient: &str) -> String {
        self.issuer.patient(patient).1
    }

    pub fn practitioner_token(&self, organization: &str) -> String {
        self.issuer.practitioner(organization).1
    }

    pub fn token(&self, role: Role) -> String {
        self.issuer.token(&self.issuer.claims(role))
    }

    /// A practitioner with a known practitioner reference, of `organization`.
    pub fn practitioner_as(&self, organization: &str, practitioner: &str) -> String {
        let mut claims = self.issuer.claims(Role::Practitioner);
        claims.organization = Some(organization.to_string());
        claims.practitioner = Some(practitioner.to_string());
        self.issuer.token(&claims)
    }

    /// A backend service of `organization` (or of none).
    pub fn service_token(&self, organization: Option<&str>) -> String {
        let mut claims = self.issuer.claims(Role::Service);
        claims.organization = organization.map(str::to_string);
        self.issuer.token(&claims)
    }

    /// A token of `role` with exactly these scopes.
    pub fn scoped_token(&self, role: Role, patient: Option<&str>, scope: &str) -> String {
        let mut claims = self.issuer.claims(role);
        claims.patient = patient.map(str::to_string);
        claims.scope = scope.to_string();
        self.issuer.token(&claims)
    }

    pub async fn send(&self, request: awc::ClientRequest, body: Option<String>) -> Response {
        let sent = match body {
            Some(body) => request.send_body(body).await,
            None => request.send().await,
        };
        let mut response = sent.expect("the request is answered");
        let bytes = response
            .body()
            .limit(16 << 20)
            .await
            .expect("the body is read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Response {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        }
    }

    pub fn request(
        &self,
        method: actix_web::http::Method,
        path: &str,
        token: Option<&str>,
    ) -> awc::ClientRequest {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        request
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send(
            self.request(actix_web::http::Method::GET, path, token),
            None,
        )
        .await
    }

    /// Sends raw text with a content type.
    pub async fn send_raw(
        &self,
        method: actix_web::http::Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: &str,
    ) -> Response {
        let request = self
            .request(method, path, Some(token))
            .insert_header(("Content-Type", content_type));
        self.send(request, Some(body.to_string())).await
    }

    pub async fn post_consent(&self, token: &str, consent: &Value) -> Response {
        self.send_raw(
            actix_web::http::Method::POST,
            "/fhir/Consent",
            token,
            "application/fhir+json",
            &consent.to_string(),
        )
        .await
    }

    pub async fn put_consent(
        &self,
        token: &str,
        id: &str,
        consent: &Value,
        if_match: Option<&str>,
    ) -> Response {
        let mut request = self
            .request(
                actix_web::http::Method::PUT,
                &format!("/fhir/Consent/{id}"),
                Some(token),
            )
            .insert_header(("Content-Type", "application/fhir+json"));
        if let Some(etag) = if_match {
            request = request.insert_header(("If-Match", etag));
        }
        self.send(request, Some(consent.to_string())).await
    }

    pub async fn delete_consent(&self, token: &str, id: &str) -> Response {
        self.send(
            self.request(
                actix_web::http::Method::DELETE,
                &format!("/fhir/Consent/{id}"),
                Some(token),
            ),
            None,
        )
        .await
    }

    pub async fn get_consent(&self, token: &str, id: &str) -> Response {
        self.get(&format!("/fhir/Consent/{id}"), Some(token)).await
    }

    pub async fn decide(&self, token: &str, question: &Value) -> Response {
        self.send_raw(
            actix_web::http::Method::POST,
            "/consent/decide",
            token,
            "application/json",
            &question.to_string(),
        )
        .await
    }

    /// Records Alice's consent as Alice and returns the stored resource.
    pub async fn create_alice_consent(&self) -> Value {
        let response = self
            .post_consent(&self.patient_token("Patient/alice"), &alice_consent())
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body
    }

    async fn entries(&self, stream: &str) -> Vec<String> {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg("-")
            .arg("+")
            .query_async(&mut redis)
            .await
            .expect("XRANGE");
        reply
            .ids
            .iter()
            .filter_map(|entry| entry.get::<String>("event"))
            .collect()
    }

    /// Every change on this test's consent stream, once at least `n` arrived (5 s at most).
    pub async fn consent_changes(&self, n: usize) -> Vec<ConsentChange> {
        let stream = self.streams.consent();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let events = self.entries(&stream).await;
            if events.len() >= n || tokio::time::Instant::now() > deadline {
                return events
                    .iter()
                    .map(|e| serde_json::from_str(e).expect("a ConsentChange"))
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every access event on this test's access stream, once at least `n` arrived (5 s at most).
    pub async fn access_events(&self, n: usize) -> Vec<AccessEvent> {
        let stream = self.streams.access();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let events = self.entries(&stream).await;
            if events.len() >= n || tokio::time::Instant::now() > deadline {
                return events
                    .iter()
                    .map(|e| AccessEvent::parse(e).expect("an AccessEvent"))
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Checks the outbox drained, stops the app, and drops the database and streams.
    /// Publishes a relationship event as records' relay does (signed as records).
    pub async fn publish_relationship(&self, event: &RelationshipEvent) {
        use redis::AsyncCommands;
        let mut redis = self.redis.clone();
        let stream = self.streams.relationships();
        let fields = custodian_events::signing::test_fields(
            &stream,
            &Uuid::new_v4().to_string(),
            &serde_json::to_string(event).expect("event JSON"),
        );
        let _: String = redis.xadd(&stream, "*", &fields).await.expect("xadd");
    }

    pub async fn finish(self) {
        let backlog = self.outbox_backlog().await;
        assert_eq!(backlog, 0, "events were left in the outbox");
        self.handle.stop(true).await;
        let mut redis = self.redis.clone();
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(self.streams.consent())
            .arg(self.streams.access())
            .arg(self.streams.relationships())
            .query_async(&mut redis)
            .await;
        custodian_database::drop_database(&self.database_url)
            .await
            .expect("the test database is dropped");
    }

    async fn outbox_backlog(&self) -> i64 {
        use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.database_url)
            .await
            .expect("connect");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let count: Count = diesel::sql_query(
                "SELECT count(*) AS n FROM event_outbox WHERE published_at IS NULL",
            )
            .get_result(&mut conn)
            .await
            .expect("count");
            if count.n == 0 || tokio::time::Instant::now() > deadline {
                return count.n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
