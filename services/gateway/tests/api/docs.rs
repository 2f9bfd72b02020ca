//! The gateway's own endpoints: documentation and probes.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn openapi_json_is_the_committed_document() {
    let app = spawn_app().await;
    let answer = app.get("/openapi.json", None).await;
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../../../openapi/openapi.json")).unwrap();
    assert_eq!(answer.json(), committed);
    assert!(answer.json()["openapi"].as_str().unwrap().starts_with("3."));
}

#[actix_web::test]
async fn docs_serve_swagger_ui_without_a_cdn() {
    let app = spawn_app().await;
    let redirect = app.get("/docs", None).await;
    assert_eq!(redirect.status, 308);
    assert_eq!(redirect.header("location").as_deref(), Some("/docs/"));

    let page = app.get("/docs/", None).await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.to_lowercase().contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads something from elsewhere: {html}"
    );

    let initializer = app.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(initializer.status, 200);
    assert!(String::from_utf8(initializer.body)
        .unwrap()
        .contains("/openapi.json"));
    let bundle = app.get("/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(bundle.status, 200);
    assert!(bundle.body.len() > 100_000);
}

#[actix_web::test]
async fn probes_answer() {
    let app = spawn_app().await;
    let health = app.get("/healthz", None).await.json();
    assert_eq!(health["status"], "ok");
    // The probes name the service: whoever probes a port knows which process answered.
    assert_eq!(health["service"], "gateway");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.json()["service"], "gateway");
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    let checks = ready.json()["checks"].clone();
    for name in [
        "redis", "identity", "consent", "records", "ledger", "anomaly",
    ] {
        assert_eq!(checks[name], "ok", "{checks}");
    }
    let metrics = app.get("/metrics", None).await;
    assert!(String::from_utf8(metrics.body)
        .unwrap()
        .contains("http_requests_total"));
}

#[test]
fn the_gateway_documents_its_own_endpoints() {
    let doc = serde_json::to_value(gateway::openapi()).unwrap();
    for path in ["/openapi.json", "/docs", "/healthz", "/readyz", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
}
