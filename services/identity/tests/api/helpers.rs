//! `spawn_app`: the real application on a free port, with its own fresh database and its own
//! stream prefix, against the local PostgreSQL and Redis. One method per endpoint on `TestApp`.

use std::time::Duration;

use awc::http::StatusCode;
use base64::Engine as _;
use custodian_access::settings::AccessSettings;
use custodian_events::Streams;
use custodian_telemetry::config::Secret;
use identity::{
    configuration::{
        AdminSettings, DatabaseSettings, LoginSettings, RedisSettings, Settings, TokenSettings,
    },
    startup::Application,
};
use redis::AsyncCommands;
use serde_json::{json, Value};
use uuid::Uuid;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub struct TestApp {
    pub address: String,
    pub issuer: String,
    pub database_url: String,
    pub prefix: String,
    pub streams: Streams,
    pub redis: redis::aio::ConnectionManager,
    pub client: awc::Client,
}

/// A response: status, headers we look at, and the JSON body (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

fn settings(database_url: &str, prefix: &str, admin_password: &str) -> Settings {
    Settings {
        host: "127.0.0.1".into(),
        port: 0,
        tls: None,
        database: DatabaseSettings {
            url: Secret::new(database_url),
            auto_create: true,
            pool_size: 4,
        },
        redis: RedisSettings {
            url: Secret::new(REDIS_URL),
            stream_prefix: prefix.to_string(),
            claim: Default::default(),
        },
        tokens: TokenSettings {
            issuer: "http://identity.test".into(),
            ttl_seconds: 900,
        },
        admin: Some(AdminSettings {
            username: ADMIN_USERNAME.into(),
            password: Secret::new(admin_password),
        }),
        consumer_name: format!("test-{}", Uuid::new_v4().simple()),
        // Loopback is a trusted proxy by default: tests speak for other addresses with
        // `X-Forwarded-For`, as the gateway does.
        access: AccessSettings::default(),
        login: LoginSettings::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// An application with its settings changed by `configure` first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database_url = format!(
        "postgres://postgres@127.0.0.1:5432/identity_test_{}",
        Uuid::new_v4().simple()
    );
    let prefix = format!("test-{}", Uuid::new_v4().simple());
    spawn_app_on_with(&database_url, &prefix, ADMIN_PASSWORD, configure).await
}

/// An application on an existing database and prefix (a restart), with the given admin password.
pub async fn spawn_app_on(database_url: &str, prefix: &str, admin_password: &str) -> TestApp {
    spawn_app_on_with(database_url, prefix, admin_password, |_| {}).await
}

pub async fn spawn_app_on_with(
    database_url: &str,
    prefix: &str,
    admin_password: &str,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        custodian_telemetry::logging::init("identity-test");
    }
    let mut settings = settings(database_url, prefix, admin_password);
    configure(&mut settings);
    let issuer = settings.tokens.issuer.clone();
    let application = Application::build(settings)
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    actix_web::rt::spawn(application.run_until_stopped());
    let redis = custodian_events::streams::connect(REDIS_URL)
        .await
        .expect("redis");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    TestApp {
        address,
        issuer,
        database_url: database_url.to_string(),
        prefix: prefix.to_string(),
        streams: Streams::new(prefix),
        redis,
        client,
    }
}

async fn answer(mut response: awc::ClientResponse) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.body().limit(1 << 20).await.expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer {
        status,
        headers,
        body,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.expect("GET is answered")).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        let mut request = self.client.post(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send_json(body).await.expect("POST is answered")).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &'static str,
    ) -> Answer {
        let mut request = self.client.post(self.url(path)).content_type(content_type);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send_body(body).await.expect("POST is answered")).await
    }

    /// `POST /auth/token` with a form.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> Answer {
        answer(
            self.client
                .post(self.url("/auth/token"))
                .send_form(&form)
                .await
                .expect("token endpoint answers"),
        )
        .await
    }

    /// `POST /auth/token` with HTTP Basic client authentication.
    pub async fn token_request_basic(
        &self,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> Answer {
        let request = self
            .client
            .post(self.url("/auth/token"))
            .basic_auth(client_id, secret);
        answer(
            request
                .send_form(&form)
                .await
                .expect("token endpoint answers"),
        )
        .await
    }

    /// A password login that the gateway (a trusted proxy) says came from `address`.
    pub async fn login_from(&self, address: &str, username: &str, password: &str) -> Answer {
        answer(
            self.client
                .post(self.url("/auth/token"))
                .insert_header(("X-Forwarded-For", address))
                .send_form(&[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                ])
                .await
                .expect("token endpoint answers"),
        )
        .await
    }

    /// A password login asking for `scope`.
    pub async fn login_with_scope(&self, username: &str, password: &str, scope: &str) -> Answer {
        self.token_request(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("scope", scope),
        ])
        .await
    }

    /// Creates a user with `role` (an organisation is created for practitioners); its id.
    pub async fn user_with_role(
        &self,
        admin: &str,
        username: &str,
        password: &str,
        role: &str,
    ) -> String {
        let mut body = json!({ "username": username, "password": password, "role": role });
        if role == "practitioner" {
            let org = self
                .create_organization(admin, &format!("Hospital of {username}"))
                .await;
            body["organization"] = org["reference"].clone();
        }
        let created = self.create_user(admin, &body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["id"].as_str().expect("an id").to_string()
    }

    /// Waits up to five seconds until the outbox relay has published every event enqueued.
    pub async fn outbox_drained(&self) {
        use diesel::{sql_query, sql_types::BigInt, QueryableByName};
        use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.database_url)
            .await
            .expect("the test database");
        for _ in 0..100 {
            let left: Vec<Count> =
                sql_query("SELECT count(*) AS n FROM event_outbox WHERE published_at IS NULL")
                    .load(&mut conn)
                    .await
                    .expect("the outbox");
            if left.iter().map(|c| c.n).next() == Some(0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the outbox was not drained in five seconds");
    }

    /// Every access event this app has published (after the outbox is drained).
    pub async fn access_events(&self) -> Vec<Value> {
        self.outbox_drained().await;
        self.events(&self.streams.access()).await
    }

    /// Access events of this app whose decision basis is `basis`.
    pub async fn login_events(&self, basis: &str) -> Vec<Value> {
        self.access_events()
            .await
            .into_iter()
            .filter(|e| e["action"] == "login" && e["decision"]["basis"] == basis)
            .collect()
    }

    pub async fn login(&self, username: &str, password: &str) -> Answer {
        self.token_request(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .await
    }

    /// A token for `username`, failing the test if none is issued.
    pub async fn token_for(&self, username: &str, password: &str) -> String {
        let answer = self.login(username, password).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "login of {username}: {}",
            answer.body
        );
        answer.body["access_token"]
            .as_str()
            .expect("an access token")
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.token_for(ADMIN_USERNAME, ADMIN_PASSWORD).await
    }

    pub async fn revoke(&self, token: &str) -> Answer {
        answer(
            self.client
                .post(self.url("/auth/revoke"))
                .send_form(&[("token", token)])
                .await
                .expect("revoke answers"),
        )
        .await
    }

    pub async fn create_organization(&self, admin: &str, name: &str) -> Value {
        let answer = self
            .post_json(
                "/auth/admin/organizations",
                Some(admin),
                &json!({ "name": name }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }

    pub async fn create_user(&self, admin: &str, body: &Value) -> Answer {
        self.post_json("/auth/admin/users", Some(admin), body).await
    }

    /// Every message of one of this app's streams, as the JSON of its `event` field.
    pub async fn events(&self, stream: &str) -> Vec<Value> {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamRangeReply =
            redis.xrange_all(stream).await.expect("XRANGE");
        reply
            .ids
            .iter()
            .filter_map(|entry| entry.get::<String>("event"))
            .map(|raw| serde_json::from_str(&raw).expect("events are JSON"))
            .collect()
    }

    /// Waits up to five seconds for an event matching `wanted` on `stream`.
    pub async fn wait_for_event(&self, stream: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            if let Some(event) = self.events(stream).await.into_iter().find(|e| wanted(e)) {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no matching event on {stream}; saw {:?}",
            self.events(stream).await
        );
    }

    /// Publishes an event as a producer's outbox relay would.
    pub async fn publish(&self, stream: &str, id: Uuid, event: &Value) {
        let mut redis = self.redis.clone();
        // Signed as the stream's producer would (alerts by anomaly).
        let fields =
            custodian_events::signing::test_fields(stream, &id.to_string(), &event.to_string());
        let _: String = redis.xadd(stream, "*", &fields).await.expect("XADD");
    }

    /// Messages of `stream` delivered to `group` and not yet acknowledged.
    pub async fn pending(&self, stream: &str, group: &str) -> i64 {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamPendingReply =
            redis.xpending(stream, group).await.expect("XPENDING");
        reply.count() as i64
    }

    /// Drops the database and the streams (a test that fails earlier leaves them behind).
    pub async fn cleanup(self) {
        let mut redis = self.redis.clone();
        for stream in [
            self.streams.access(),
            self.streams.identity(),
            self.streams.alerts(),
            self.streams.consent(),
        ] {
            let _: Result<i64, _> = redis.del(&stream).await;
            let _: Result<i64, _> = redis.del(format!("{stream}:dead")).await;
        }
        let _ = custodian_database::drop_database(&self.database_url).await;
    }
}

/// The scope string a token of `role` carries when no scope is requested: whatever the access
/// kernel grants the role.
pub fn default_scope(role: custodian_auth::Role) -> String {
    custodian_access::scope::grant(role, None)
        .expect("every role has scopes")
        .to_scope_string()
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// A JWT's header, unverified (tests verify with `TokenVerifier` separately).
pub fn jwt_header(token: &str) -> Value {
    decode_part(token, 0)
}

/// A JWT's claims, unverified.
pub fn jwt_claims(token: &str) -> Value {
    decode_part(token, 1)
}
