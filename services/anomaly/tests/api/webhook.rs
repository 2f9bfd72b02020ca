//! The alert webhook: each new alert POSTed as its `DetectedIssue`, signed, retried from the
//! durable queue (across a restart), and given up after its attempts.

use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anomaly::configuration::WebhookSettings;
use custodian_telemetry::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::{burst, eventually, spawn_app_with, spawn_configured, TestApp};

const SECRET: &str = "a-shared-webhook-secret";

#[derive(Debug, Clone)]
struct Received {
    signature: String,
    timestamp: String,
    delivery: String,
    content_type: String,
    body: Vec<u8>,
}

/// A receiver that answers 500 to its first `failures` requests, then 204.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

async fn receiver(failures: usize, listener: Option<TcpListener>) -> Receiver {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let calls = Arc::new(Mutex::new(0usize));
    let listener = listener.unwrap_or_else(|| TcpListener::bind("127.0.0.1:0").expect("bind"));
    let port = listener.local_addr().expect("address").port();
    let state = (received.clone(), calls);
    let server = HttpServer::new(move || {
        let (received, calls) = state.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let (received, calls) = (received.clone(), calls.clone());
                async move {
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let mut n = calls.lock().expect("lock");
                    *n += 1;
                    if *n <= failures {
                        return HttpResponse::InternalServerError().finish();
                    }
                    received.lock().expect("lock").push(Received {
                        signature: header("x-custodian-signature"),
                        timestamp: header("x-custodian-timestamp"),
                        delivery: header("x-custodian-delivery"),
                        content_type: header("content-type"),
                        body: body.to_vec(),
                    });
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Receiver {
        url: format!("http://127.0.0.1:{port}/hook"),
        received,
        handle,
    }
}

fn settings(url: &str, max_attempts: u32) -> WebhookSettings {
    WebhookSettings {
        url: url.to_string(),
        secret: Secret::new(SECRET),
        max_attempts,
    }
}

async fn delivery_rows(app: &TestApp, condition: &str) -> i64 {
    app.count(&format!("webhook_deliveries WHERE {condition}"))
        .await
}

#[actix_web::test]
async fn alerts_are_posted_signed_and_survive_a_restart_and_failures() {
    // A port nobody listens on yet: the first deliveries fail.
    let reserved = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = reserved.local_addr().expect("address").port();
    drop(reserved);
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = spawn_app_with(|s| s.webhook = Some(settings(&url, 50))).await;
    let actor = Uuid::new_v4().to_string();
    for event in burst(&actor) {
        app.publish(&event).await;
    }
    app.wait_for_scored(20.0, 0.0).await;
    let alerts = app.alerts("").await;
    assert!(!alerts.is_empty());
    eventually("a failed attempt", || async {
        (delivery_rows(&app, "attempts >= 1 AND last_error IS NOT NULL").await >= 1).then_some(())
    })
    .await;
    assert_eq!(
        delivery_rows(&app, "delivered_at IS NULL").await,
        alerts.len() as i64
    );
    assert!(
        app.metric_with(
            "custodian_anomaly_webhook_deliveries_total",
            &[("outcome", "retry")]
        )
        .await
            >= 1.0
    );

    // The service stops with the deliveries queued; it comes back, and so does the receiver
    // (failing once more first).
    let (database_url, prefix, issuer) = app.stop().await;
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the receiver's port");
    let receiver = receiver(1, Some(listener)).await;
    let app = spawn_configured(database_url, prefix, issuer, Default::default(), |s| {
        s.webhook = Some(settings(&receiver.url, 50))
    })
    .await;
    let received = eventually("every alert delivered", || async {
        let received = receiver.received.lock().expect("lock").clone();
        (received.len() >= alerts.len()).then_some(received)
    })
    .await;
    assert_eq!(received.len(), alerts.len());
    for delivery in &received {
        assert_eq!(delivery.content_type, "application/fhir+json");
        assert!(Uuid::parse_str(&delivery.delivery).is_ok());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(delivery.timestamp.as_bytes());
        mac.update(b".");
        mac.update(&delivery.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(delivery.signature, expected);
        let issue: serde_json::Value = serde_json::from_slice(&delivery.body).expect("json");
        assert_eq!(issue["resourceType"], "DetectedIssue");
        assert!(alerts.iter().any(|a| a["id"] == issue["id"]), "{issue}");
        assert_eq!(issue["status"], "preliminary");
    }
    eventually("the deliveries marked delivered", || async {
        (delivery_rows(&app, "delivered_at IS NOT NULL").await == alerts.len() as i64).then_some(())
    })
    .await;
    assert_eq!(
        app.metric_with(
            "custodian_anomaly_webhook_deliveries_total",
            &[("outcome", "delivered")]
        )
        .await,
        alerts.len() as f64
    );
    receiver.handle.stop(true).await;
    app.cleanup().await;
}

#[actix_web::test]
async fn a_delivery_is_given_up_after_its_attempts() {
    let receiver = receiver(usize::MAX, None).await;
    let app = spawn_app_with(|s| s.webhook = Some(settings(&receiver.url, 2))).await;
    for event in burst(&Uuid::new_v4().to_string()) {
        app.publish(&event).await;
    }
    app.wait_for_scored(20.0, 0.0).await;
    let alerts = app.alerts("").await.len() as i64;
    eventually("the deliveries given up", || async {
        (delivery_rows(&app, "failed_at IS NOT NULL AND attempts = 2").await == alerts)
            .then_some(())
    })
    .await;
    assert_eq!(
        delivery_rows(&app, "last_error = 'answered 500'").await,
        alerts
    );
    assert_eq!(
        app.metric_with(
            "custodian_anomaly_webhook_deliveries_total",
            &[("outcome", "abandoned")]
        )
        .await,
        alerts as f64
    );
    assert!(receiver.received.lock().expect("lock").is_empty());
    receiver.handle.stop(true).await;
    app.cleanup().await;
}
