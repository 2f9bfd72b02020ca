//! `spawn_app`: echo upstreams, a token issuer, a fresh stream prefix, the gateway on port 0.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use custodian_auth::{
    deny::{DenySnapshot, RevokedToken},
    testing::TestIssuer,
    InternalCaller, InternalToken,
};
use custodian_events::{signing::StreamSigner, IdentityEvent};
use custodian_telemetry::config::{Listen, Secret};
use gateway::{
    configuration::{Settings, UpstreamUrl, Upstreams},
    forwarding::TrustedProxies,
    routing::Upstream,
    startup::Application,
};
use redis::AsyncCommands;
use serde_json::{json, Value};

/// The local Redis the tests use (`TEST_REDIS_URL`, default the unauthenticated one on 6379).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// How a test wants its gateway.
pub struct Options {
    /// Users identity's `/internal/suspended` names.
    pub suspended: Vec<String>,
    /// Token ids identity's `/internal/suspended` names as revoked.
    pub revoked: Vec<String>,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
    pub max_body_bytes: usize,
    pub upstream_timeout: Duration,
    /// This upstream points at a port nobody listens on.
    pub down: Option<Upstream>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            suspended: Vec::new(),
            revoked: Vec::new(),
            trusted_proxies: TrustedProxies::none(),
            max_body_bytes: 64 * 1024,
            upstream_timeout: Duration::from_secs(10),
            down: None,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub issuer: TestIssuer,
    pub client: awc::Client,
    pub stream_prefix: String,
    pub redis: redis::aio::ConnectionManager,
    /// Signs identity events as identity's relay does (trusted by this process).
    pub signer: StreamSigner,
    /// Requests each echo upstream received (by name).
    pub hits: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

/// A response as the tests look at it.
pub struct Answer {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The upstream that answered (echo servers say who they are).
    pub fn upstream(&self) -> String {
        self.json()["upstream"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Asserts an `OperationOutcome` with this status.
    pub fn assert_outcome(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
        assert!(body["issue"][0]["code"].is_string(), "{body}");
        body
    }
}

struct EchoState {
    name: &'static str,
    snapshot: DenySnapshot,
    hits: Arc<Mutex<BTreeMap<&'static str, usize>>>,
}

/// Identity's snapshot, only for callers with the service credential (the echo's app data).
async fn suspended(_: InternalCaller, state: web::Data<EchoState>) -> HttpResponse {
    HttpResponse::Ok().json(&state.snapshot)
}

/// Answers with what it received, as JSON.
async fn echo(req: HttpRequest, body: web::Bytes, state: web::Data<EchoState>) -> HttpResponse {
    *state.hits.lock().unwrap().entry(state.name).or_default() += 1;
    match req.path() {
        "/healthz" => return HttpResponse::Ok().json(json!({"status": "ok"})),
        "/ledger/slow" => actix_web::rt::time::sleep(Duration::from_secs(3)).await,
        "/ledger/empty" => {
            return HttpResponse::NoContent()
                .insert_header(("x-upstream", state.name))
                .finish()
        }
        _ => {}
    }
    let mut headers = BTreeMap::<String, Vec<String>>::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.to_string())
            .or_default()
            .push(value.to_str().unwrap_or("<binary>").to_string());
    }
    HttpResponse::Created()
        .insert_header(("x-upstream", state.name))
        .insert_header(("keep-alive", "timeout=99"))
        .insert_header(("proxy-authenticate", "Basic"))
        .json(json!({
            "upstream": state.name,
            "method": req.method().as_str(),
            "path": req.path(),
            "query": req.query_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }))
}

async fn start_echo(
    name: &'static str,
    snapshot: DenySnapshot,
    credential: InternalToken,
    hits: Arc<Mutex<BTreeMap<&'static str, usize>>>,
) -> String {
    let state = web::Data::new(EchoState {
        name,
        snapshot,
        hits,
    });
    let credential = web::Data::new(credential);
    let server = HttpServer::new(move || {
        let app = App::new()
            .app_data(state.clone())
            .app_data(credential.clone())
            .app_data(web::PayloadConfig::new(64 << 20));
        if name == "identity" {
            app.route("/internal/suspended", web::get().to(suspended))
                .default_service(web::to(echo))
        } else {
            app.default_service(web::to(echo))
        }
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    custodian_telemetry::logging::init("gateway-test");
    let issuer = TestIssuer::start().await;
    let hits = Arc::new(Mutex::new(BTreeMap::new()));
    let credential = InternalToken::generate();
    let snapshot = DenySnapshot {
        suspended: options.suspended.clone(),
        revoked: options
            .revoked
            .iter()
            .map(|jti| RevokedToken {
                jti: jti.clone(),
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
            })
            .collect(),
    };
    let mut urls = BTreeMap::new();
    for upstream in Upstream::ALL {
        let url = if options.down == Some(upstream) {
            format!("http://127.0.0.1:{}", closed_port())
        } else {
            start_echo(
                upstream.name(),
                snapshot.clone(),
                credential.clone(),
                hits.clone(),
            )
            .await
        };
        urls.insert(upstream.name(), UpstreamUrl::parse(&url).unwrap());
    }
    let stream_prefix = format!("test-gateway-{}", uuid::Uuid::new_v4());
    let settings = Settings {
        listen: Listen {
            host: "127.0.0.1".into(),
            port: 0,
            tls: None,
        },
        redis_url: Secret::new(redis_url()),
        stream_prefix: stream_prefix.clone(),
        token_issuer: issuer.issuer.clone(),
        jwks_url: issuer.jwks_url.clone(),
        upstreams: Upstreams {
            identity: urls["identity"].clone(),
            consent: urls["consent"].clone(),
            records: urls["records"].clone(),
            ledger: urls["ledger"].clone(),
            anomaly: urls["anomaly"].clone(),
        },
        public_url: "http://gateway.test".into(),
        max_body_bytes: options.max_body_bytes,
        upstream_timeout: options.upstream_timeout,
        trusted_proxies: options.trusted_proxies,
        internal_token: credential,
    };
    let app = Application::build(settings).await.expect("gateway starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    let redis = custodian_events::streams::connect(&redis_url())
        .await
        .unwrap();
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(20))
        .finish();
    TestApp {
        address,
        issuer,
        client,
        stream_prefix,
        redis,
        signer: StreamSigner::ephemeral("identity").unwrap(),
        hits,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A practitioner's token.
    pub fn token(&self) -> String {
        self.issuer.practitioner("Organization/1").1
    }

    pub async fn send(&self, request: awc::ClientRequest) -> Answer {
        self.answer(request.send().await.expect("gateway answers"))
            .await
    }

    pub async fn send_body(&self, request: awc::ClientRequest, body: impl Into<Vec<u8>>) -> Answer {
        let body: Vec<u8> = body.into();
        self.answer(request.send_body(body).await.expect("gateway answers"))
            .await
    }

    async fn answer(
        &self,
        mut response: awc::ClientResponse<
            impl futures_util::Stream<Item = Result<web::Bytes, awc::error::PayloadError>> + Unpin,
        >,
    ) -> Answer {
        let body = response
            .body()
            .limit(64 << 20)
            .await
            .expect("body")
            .to_vec();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// Publishes an identity event as identity's relay would (signed).
    pub async fn publish(&self, event: &IdentityEvent) {
        let stream = format!("{}:identity", self.stream_prefix);
        let payload = serde_json::to_string(event).unwrap();
        let id = uuid::Uuid::new_v4().to_string();
        let fields = self.signer.fields(&stream, &id, &payload).unwrap();
        self.xadd(&fields).await;
    }

    /// XADDs raw fields to the identity stream, as anyone who can reach Redis could.
    pub async fn xadd(&self, fields: &[(&str, String)]) {
        let mut redis = self.redis.clone();
        let stream = format!("{}:identity", self.stream_prefix);
        let _: String = redis.xadd(&stream, "*", fields).await.unwrap();
    }

    /// The value of a metric line containing every one of `parts` (0 when absent).
    pub async fn metric(&self, name: &str, parts: &[&str]) -> u64 {
        let metrics = String::from_utf8(self.get("/metrics", None).await.body).unwrap();
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("custodian_{name}")) || l.starts_with(name))
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<f64>().ok())
            .map(|n| n as u64)
            .unwrap_or(0)
    }

    /// How many requests an echo upstream received.
    pub fn hits(&self, upstream: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .get(upstream)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Streams of a test run are not kept.
        if let Ok(client) = redis::Client::open(redis_url()) {
            if let Ok(mut conn) = client.get_connection() {
                let _: Result<i64, _> = redis::cmd("DEL")
                    .arg(format!("{}:identity", self.stream_prefix))
                    .query(&mut conn);
            }
        }
    }
}
