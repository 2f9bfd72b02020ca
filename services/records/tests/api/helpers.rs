//! `spawn_app` and a `TestApp` with one method per interaction.

use std::{sync::Arc, time::Duration};

use actix_web::{web, App, HttpResponse, HttpServer};
use awc::http::StatusCode;
use custodian_auth::testing::TestIssuer;
use custodian_events::AccessEvent;
use custodian_policy::{parse::Consent, ConsentChange};
use custodian_telemetry::config::{Listen, Secret};
use records::{
    configuration::{KeySource, Settings},
    startup::Application,
};
use redis::AsyncCommands;
use serde_json::Value;

pub const PUBLIC_URL: &str = "http://gateway.test";

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub prefix: String,
    /// The record key, hex (for tests that work on the database directly).
    pub key_hex: String,
    pub issuer: Arc<TestIssuer>,
    pub client: awc::Client,
    pub redis: redis::aio::ConnectionManager,
}

/// A FHIR Consent of `patient`'s, in force: `provision` is its root provision.
pub fn consent_change(
    consent: &str,
    patient: &str,
    version: i64,
    provision: Value,
) -> ConsentChange {
    let json = serde_json::json!({
        "resourceType": "Consent",
        "id": consent.trim_start_matches("Consent/"),
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "provision": provision,
    });
    let parsed = Consent::parse(&json).unwrap_or_else(|e| panic!("test consent refused: {e:?}"));
    ConsentChange {
        consent: consent.into(),
        patient: patient.into(),
        version,
        consent_policy: Some(parsed),
    }
}

fn actor(reference: &str) -> Value {
    serde_json::json!({
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
        "reference": {"reference": reference}
    })
}

/// A consent: `actor` may do anything for treatment on `patient`'s data.
pub fn permit(consent: &str, patient: &str, actor_ref: &str, version: i64) -> ConsentChange {
    consent_change(
        consent,
        patient,
        version,
        serde_json::json!({
            "type": "permit",
            "actor": [actor(actor_ref)],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]
        }),
    )
}

/// A consent: `actor` (or, with None, everyone) may not see `patient`'s data.
pub fn deny(consent: &str, patient: &str, actor_ref: Option<&str>, version: i64) -> ConsentChange {
    let mut provision = serde_json::json!({"type": "deny"});
    if let Some(a) = actor_ref {
        provision["actor"] = serde_json::json!([actor(a)]);
    }
    consent_change(consent, patient, version, provision)
}

/// The change that revokes a consent.
pub fn revoke(consent: &str, patient: &str, version: i64) -> ConsentChange {
    ConsentChange {
        consent: consent.into(),
        patient: patient.into(),
        version,
        consent_policy: None,
    }
}

/// Serves `GET /internal/consents` with a fixed snapshot, like the consent service.
async fn fake_consent(snapshot: Vec<ConsentChange>) -> String {
    let body = serde_json::to_string(&snapshot).unwrap();
    let server = HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/internal/consents",
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

/// Serves `GET /internal/suspended` (nobody suspended), like identity.
async fn fake_identity() -> String {
    let server = HttpServer::new(|| {
        App::new().route(
            "/internal/suspended",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(r#"{"suspended":[],"revoked":[]}"#)
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(vec![]).await
}

/// Spawns the app with a consent snapshot served by a stand-in consent service.
pub async fn spawn_app_with(snapshot: Vec<ConsentChange>) -> TestApp {
    spawn_ready(snapshot, DEFAULT_EXPORT_RETENTION).await
}

/// Spawns the app with `$export` jobs expiring `retention` after they finish.
pub async fn spawn_app_with_export_retention(retention: Duration) -> TestApp {
    spawn_ready(vec![], retention).await
}

const DEFAULT_EXPORT_RETENTION: Duration = Duration::from_secs(86_400);

async fn spawn_ready(snapshot: Vec<ConsentChange>, export_retention: Duration) -> TestApp {
    let consent_url = fake_consent(snapshot).await;
    let app = build(consent_url, export_retention).await;
    // Ready once the consent snapshot is loaded.
    let mut ready = false;
    for _ in 0..100 {
        if app.get_public("/readyz").await.status == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "records never became ready");
    app
}

/// Spawns the app with no consent service answering (its snapshot never loads).
pub async fn spawn_app_without_consent() -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    build(format!("http://127.0.0.1:{port}"), DEFAULT_EXPORT_RETENTION).await
}

async fn build(consent_url: String, export_retention: Duration) -> TestApp {
    custodian_telemetry::logging::init("records-test");
    let issuer = TestIssuer::start().await;
    let database_url = format!(
        "postgres://postgres@127.0.0.1:5432/records_test_{}",
        uuid::Uuid::new_v4().simple()
    );
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let mut key = [0u8; 32];
    openssl::rand::rand_bytes(&mut key).unwrap();
    let settings = Settings {
        listen: Listen {
            host: "127.0.0.1".into(),
            port: 0,
            tls: None,
        },
        database_url: Secret::new(database_url.clone()),
        database_auto_create: true,
        database_pool_size: 8,
        redis_url: "redis://127.0.0.1:6379".into(),
        stream_prefix: prefix.clone(),
        token_issuer: issuer.issuer.clone(),
        jwks_url: issuer.jwks_url.clone(),
        consent_url,
        identity_url: fake_identity().await,
        key: KeySource::Hex(Secret::new(hex::encode(key))),
        public_url: PUBLIC_URL.into(),
        access: custodian_access::AccessSettings::default(),
        export_retention,
    };
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    let redis = custodian_events::streams::connect("redis://127.0.0.1:6379")
        .await
        .unwrap();
    TestApp {
        address,
        database_url,
        prefix,
        key_hex: hex::encode(key),
        issuer: Arc::new(issuer),
        client: awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish(),
        redis,
    }
}

impl TestApp {
    async fn finish(
        &self,
        mut resp: awc::ClientResponse<
            impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
                + Unpin,
        >,
    ) -> TestResponse {
        let body = resp.body().limit(256 << 20).await.unwrap().to_vec();
        TestResponse {
            status: resp.status(),
            headers: resp.headers().clone(),
            body,
        }
    }

    pub async fn get_public(&self, path: &str) -> TestResponse {
        let resp = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    pub async fn get(&self, path: &str, token: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut req = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    pub async fn send_json(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let url = format!("{}{path}", self.address);
        let mut req = match method {
            "POST" => self.client.post(url),
            "PUT" => self.client.put(url),
            other => panic!("method {other}"),
        }
        .bearer_auth(token)
        .insert_header(("Content-Type", "application/fhir+json"));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let resp = req.send_body(body.to_string()).await.unwrap();
        self.finish(resp).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> TestResponse {
        self.send_json("POST", path, token, &body.to_string(), &[])
            .await
    }

    pub async fn put(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.send_json("PUT", path, token, &body.to_string(), headers)
            .await
    }

    pub async fn delete(&self, path: &str, token: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut req = self
            .client
            .delete(format!("{}{path}", self.address))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    pub async fn post_form(&self, path: &str, token: &str, form: &str) -> TestResponse {
        let resp = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .send_body(form.to_string())
            .await
            .unwrap();
        self.finish(resp).await
    }

    /// Publishes a consent change on the consent stream, as the consent service's relay does.
    pub async fn publish_consent(&self, change: &ConsentChange) {
        let mut redis = self.redis.clone();
        let stream = format!("{}:consent", self.prefix);
        // Signed as consent's relay signs (records obeys nothing else).
        let fields = custodian_events::signing::test_fields(
            &stream,
            &uuid::Uuid::new_v4().to_string(),
            &serde_json::to_string(change).unwrap(),
        );
        let _: String = redis.xadd(&stream, "*", &fields).await.unwrap();
    }

    /// Every access event on the access stream so far.
    pub async fn access_events_raw(&self) -> Vec<Value> {
        let mut redis = self.redis.clone();
        let reply: redis::streams::StreamRangeReply = redis
            .xrange_all(format!("{}:access", self.prefix))
            .await
            .unwrap();
        reply
            .ids
            .iter()
            .filter_map(|e| e.get::<String>("event"))
            .map(|s| serde_json::from_str(&s).unwrap())
            .collect()
    }

    /// Waits until the access stream holds events matching `pred` (at least `n`).
    pub async fn wait_for_events(
        &self,
        n: usize,
        pred: impl Fn(&AccessEvent) -> bool,
    ) -> Vec<AccessEvent> {
        for _ in 0..100 {
            let events: Vec<AccessEvent> = self
                .access_events_raw()
                .await
                .into_iter()
                .map(|v| serde_json::from_value(v).unwrap())
                .filter(|e| pred(e))
                .collect();
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} matching access events arrived");
    }

    pub fn practitioner(&self, organization: &str) -> (custodian_auth::Claims, String) {
        self.issuer.practitioner(organization)
    }

    pub fn patient(&self, patient: &str) -> (custodian_auth::Claims, String) {
        self.issuer.patient(patient)
    }

    /// A patient's token that also asks for `patient/Patient.d`: the one scope that lets her
    /// erase her record, never in a default grant.
    pub fn patient_erasing(&self, patient: &str) -> (custodian_auth::Claims, String) {
        let (mut claims, _) = self.issuer.patient(patient);
        claims.scope = format!("{} patient/Patient.d", claims.scope);
        let token = self.issuer.token(&claims);
        (claims, token)
    }

    pub fn token_for(&self, role: custodian_auth::Role) -> String {
        let claims = self.issuer.claims(role);
        self.issuer.token(&claims)
    }

    /// Ends the test; dropping the app drops its database.
    pub async fn cleanup(self) {
        drop(self);
    }
}

/// A Patient with a name.
pub fn patient_resource(id: &str, family: &str, given: &str) -> Value {
    serde_json::json!({
        "resourceType": "Patient", "id": id, "active": true,
        "name": [{"family": family, "given": [given]}],
        "gender": "female", "birthDate": "1980-02-01"
    })
}

/// An Observation of body weight for a patient.
pub fn weight(patient: &str, kg: &str) -> String {
    format!(
        r#"{{"resourceType":"Observation","status":"final",
        "code":{{"coding":[{{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}}]}},
        "subject":{{"reference":"{patient}"}},"effectiveDateTime":"2020-03-04T10:00:00Z",
        "valueQuantity":{{"value":{kg},"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}}}"#
    )
}

/// A Condition with a SNOMED code.
pub fn condition(patient: &str, code: &str) -> Value {
    serde_json::json!({
        "resourceType": "Condition",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
        "subject": {"reference": patient},
        "onsetDateTime": "2019-05-01"
    })
}

impl Drop for TestApp {
    /// Drops the test database and streams, also when the test panicked (best effort).
    fn drop(&mut self) {
        let url = self.database_url.clone();
        let prefix = self.prefix.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let _ = rt.block_on(custodian_database::drop_database(&url));
            let _: Result<(), redis::RedisError> = rt.block_on(async {
                let mut redis =
                    custodian_events::streams::connect("redis://127.0.0.1:6379").await?;
                let keys: Vec<String> = ["access", "consent", "identity", "relationships"]
                    .iter()
                    .map(|s| format!("{prefix}:{s}"))
                    .collect();
                redis.del(keys).await
            });
        })
        .join();
    }
}

/// Registers `Patient/<id>` with `token`, whose organisation then holds her record.
pub async fn register(app: &TestApp, token: &str, id: &str) {
    let r = app
        .put(
            &format!("/fhir/Patient/{id}"),
            token,
            &patient_resource(id, "Doe", id),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// A consent: `actor` may see `patient`'s resources of `types` only.
pub fn permit_types(
    consent: &str,
    patient: &str,
    actor_ref: &str,
    types: &[&str],
) -> ConsentChange {
    let class: Vec<Value> = types
        .iter()
        .map(|t| serde_json::json!({"system": "http://hl7.org/fhir/resource-types", "code": t}))
        .collect();
    consent_change(
        consent,
        patient,
        1,
        serde_json::json!({"type": "permit", "actor": [actor(actor_ref)], "class": class}),
    )
}

/// Ids of a searchset's entries of search mode `mode`.
pub fn entry_ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["search"]["mode"] == mode)
                .filter_map(|x| x["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl TestApp {
    /// Any method (PATCH included), with an optional body of `content_type`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let resp = match body {
            Some((content_type, body)) => req
                .insert_header(("Content-Type", content_type))
                .send_body(body.to_string())
                .await
                .unwrap(),
            None => req.send().await.unwrap(),
        };
        self.finish(resp).await
    }
}
