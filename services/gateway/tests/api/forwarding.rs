//! What the services behind learn about the client: a client cannot choose the address the
//! ledger records, nor the scheme and host the services build links from.

use gateway::forwarding::TrustedProxies;

use crate::helpers::{spawn_app, spawn_app_with, Options};

#[actix_web::test]
async fn a_forged_forwarded_for_is_replaced_by_the_real_peer() {
    let app = spawn_app().await;
    let request = app
        .client
        .get(app.url("/fhir/Patient"))
        .bearer_auth(app.token())
        .insert_header(("X-Forwarded-For", "6.6.6.6"))
        .insert_header(("X-Forwarded-For", "7.7.7.7, 8.8.8.8"))
        .insert_header(("X-Forwarded-Proto", "https"))
        .insert_header(("X-Forwarded-Host", "evil.example"))
        .insert_header(("Forwarded", "for=6.6.6.6;proto=https"));
    let echo = app.send(request).await.json();
    let headers = &echo["headers"];
    assert_eq!(headers["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(headers["x-forwarded-proto"], serde_json::json!(["http"]));
    assert_eq!(
        headers["x-forwarded-host"],
        serde_json::json!([app.address.trim_start_matches("http://")])
    );
    assert!(headers.get("forwarded").is_none(), "{headers}");
    // Public paths (the token endpoint, where logins are recorded) alike.
    let request = app
        .client
        .post(app.url("/auth/token"))
        .insert_header(("X-Forwarded-For", "6.6.6.6"))
        .content_type("application/x-www-form-urlencoded");
    let echo = app.send_body(request, "grant_type=password").await.json();
    assert_eq!(
        echo["headers"]["x-forwarded-for"],
        serde_json::json!(["127.0.0.1"])
    );
}

#[actix_web::test]
async fn a_trusted_proxy_keeps_its_chain_and_the_peer_is_appended() {
    let app = spawn_app_with(Options {
        trusted_proxies: TrustedProxies::parse("127.0.0.1/32, ::1").unwrap(),
        ..Options::default()
    })
    .await;
    let request = app
        .client
        .get(app.url("/fhir/Patient"))
        .bearer_auth(app.token())
        .insert_header(("X-Forwarded-For", "203.0.113.9"))
        .insert_header(("X-Forwarded-Proto", "https"))
        .insert_header(("X-Forwarded-Host", "custodian.example"));
    let echo = app.send(request).await.json();
    let headers = &echo["headers"];
    assert_eq!(
        headers["x-forwarded-for"],
        serde_json::json!(["203.0.113.9, 127.0.0.1"])
    );
    assert_eq!(headers["x-forwarded-proto"], serde_json::json!(["https"]));
    assert_eq!(
        headers["x-forwarded-host"],
        serde_json::json!(["custodian.example"])
    );
}

#[actix_web::test]
async fn invented_methods_share_one_metric_label() {
    let app = spawn_app().await;
    let token = app.token();
    for method in ["FROBNICATE", "XYZZY", "PROPFIND"] {
        let request = app
            .client
            .request(
                awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/fhir/Patient"),
            )
            .bearer_auth(&token);
        app.send(request).await;
    }
    let metrics = String::from_utf8(app.get("/metrics", None).await.body).unwrap();
    for method in ["FROBNICATE", "XYZZY", "PROPFIND"] {
        assert!(
            !metrics.contains(method),
            "{method} became a label:\n{metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("http_requests_total") && l.contains(r#"method="other""#)),
        "{metrics}"
    );
}
