//! HTTPS on the gateway's port and mutual TLS on both sides of it, with certificates made
//! here: clients must trust the CA and, with `TLS_CLIENT_CA_FILE`, present a certificate it
//! signed; the gateway reaches an `https://` upstream that requires a client certificate with
//! `UPSTREAM_CA_FILE` and `UPSTREAM_CLIENT_CERT_FILE` (the deny-list snapshot and a proxied
//! request both go that way). Its own binary: the upstream settings are the process's
//! environment, read once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{net::TcpListener, path::PathBuf, time::Duration};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use custodian_auth::{testing::TestIssuer, InternalToken};
use custodian_telemetry::{
    config::{Listen, Secret},
    tls::{testing::TestCa, ClientTls, ListenTls, ServerTls},
};
use gateway::{
    configuration::{Settings, UpstreamUrl, Upstreams},
    forwarding::TrustedProxies,
    startup::Application,
};
use serde_json::json;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An upstream standing in for all five services: identity's empty deny-list snapshot, and
/// an echo of the path for everything else. Serves HTTPS and requires client certificates.
fn start_upstream(tls: &ServerTls) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/internal/suspended",
                web::get().to(|| async {
                    HttpResponse::Ok().json(json!({"suspended": [], "revoked": []}))
                }),
            )
            .default_service(web::to(|req: HttpRequest| async move {
                HttpResponse::Ok().json(json!({"upstream": "tls-echo", "path": req.path()}))
            }))
    })
    .workers(1)
    .listen_tls(listener, Some(tls))
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    port
}

async fn start_gateway(tls: ServerTls, upstream: &UpstreamUrl, issuer: &TestIssuer) -> u16 {
    let settings = Settings {
        listen: Listen {
            host: "127.0.0.1".into(),
            port: 0,
            tls: Some(tls),
        },
        redis_url: Secret::new(
            std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        ),
        stream_prefix: format!("test-gateway-tls-{}", uuid::Uuid::new_v4()),
        token_issuer: issuer.issuer.clone(),
        jwks_url: issuer.jwks_url.clone(),
        upstreams: Upstreams {
            identity: upstream.clone(),
            consent: upstream.clone(),
            records: upstream.clone(),
            ledger: upstream.clone(),
            anomaly: upstream.clone(),
        },
        public_url: "https://gateway.test".into(),
        max_body_bytes: 64 * 1024,
        upstream_timeout: Duration::from_secs(10),
        trusted_proxies: TrustedProxies::none(),
        internal_token: InternalToken::generate(),
    };
    let app = Application::build(settings).await.expect("gateway starts");
    let port = app.port();
    actix_web::rt::spawn(app.run_until_stopped());
    port
}

/// A client trusting `ca`, presenting `cert` when given.
fn client(
    ca: &std::path::Path,
    cert: Option<&custodian_telemetry::tls::testing::Issued>,
) -> awc::Client {
    let tls = ClientTls {
        ca_file: Some(ca.to_path_buf()),
        client_cert: cert.map(|c| (c.cert_file.clone(), c.key_file.clone())),
    };
    awc::Client::builder()
        .connector(awc::Connector::new().openssl(tls.connector().unwrap()))
        .timeout(Duration::from_secs(10))
        .finish()
}

async fn status(client: &awc::Client, url: &str, token: Option<&str>) -> Result<u16, String> {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[actix_web::test]
async fn https_listener_with_mutual_tls_and_https_upstreams() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("custodian-gw-tls-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let ca = TestCa::new(&dir.0, "ca").unwrap();
    let other_ca = TestCa::new(&dir.0, "other-ca").unwrap();
    let gateway_cert = ca
        .server("gateway", &["localhost"], &["127.0.0.1"])
        .unwrap();
    let upstream_cert = ca
        .server("upstream", &["localhost"], &["127.0.0.1"])
        .unwrap();
    let gateway_as_client = ca.client("gateway-client").unwrap();
    let caller = ca.client("caller").unwrap();
    let stranger = other_ca.client("stranger").unwrap();

    // What the gateway trusts and presents upstream: read once, at its first use.
    std::env::set_var("UPSTREAM_CA_FILE", ca.cert_file());
    std::env::set_var("UPSTREAM_CLIENT_CERT_FILE", &gateway_as_client.cert_file);
    std::env::set_var("UPSTREAM_CLIENT_KEY_FILE", &gateway_as_client.key_file);

    let upstream_port = start_upstream(&ServerTls {
        cert_file: upstream_cert.cert_file.clone(),
        key_file: upstream_cert.key_file.clone(),
        client_ca_file: Some(ca.cert_file().to_path_buf()),
    });
    let upstream = UpstreamUrl::parse(&format!("https://127.0.0.1:{upstream_port}")).unwrap();
    let issuer = TestIssuer::start().await;
    let token = issuer.practitioner("Organization/1").1;

    // HTTPS without client certificates.
    let port = start_gateway(
        ServerTls {
            cert_file: gateway_cert.cert_file.clone(),
            key_file: gateway_cert.key_file.clone(),
            client_ca_file: None,
        },
        &upstream,
        &issuer,
    )
    .await;
    let healthz = format!("https://127.0.0.1:{port}/healthz");
    assert_eq!(
        status(&client(ca.cert_file(), None), &healthz, None).await,
        Ok(200)
    );
    // A client that does not trust the CA refuses the gateway.
    let err = status(&client(other_ca.cert_file(), None), &healthz, None)
        .await
        .unwrap_err();
    assert!(
        err.to_lowercase().contains("certificate verify failed"),
        "{err}"
    );
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let answer = status(&plain, &format!("http://127.0.0.1:{port}/healthz"), None).await;
    assert!(answer != Ok(200), "{answer:?}");

    // Mutual TLS: TLS_CLIENT_CA_FILE set.
    let port = start_gateway(
        ServerTls {
            cert_file: gateway_cert.cert_file.clone(),
            key_file: gateway_cert.key_file.clone(),
            client_ca_file: Some(ca.cert_file().to_path_buf()),
        },
        &upstream,
        &issuer,
    )
    .await;
    let base = format!("https://127.0.0.1:{port}");
    let healthz = format!("{base}/healthz");
    assert!(status(&client(ca.cert_file(), None), &healthz, None)
        .await
        .is_err());
    assert!(
        status(&client(ca.cert_file(), Some(&stranger)), &healthz, None)
            .await
            .is_err()
    );
    let trusted = client(ca.cert_file(), Some(&caller));
    assert_eq!(status(&trusted, &healthz, None).await, Ok(200));

    // Through the gateway to the upstream over mutual TLS (the gateway's deny list was loaded
    // from the same upstream, over the same connector, before it listened).
    let mut response = trusted
        .get(format!("{base}/fhir/Patient"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["upstream"], "tls-echo", "{body}");
    assert_eq!(body["path"], "/fhir/Patient", "{body}");
}
