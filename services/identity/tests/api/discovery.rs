use awc::http::StatusCode;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn discovery_documents_describe_what_is_supported() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ] {
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        let doc = answer.body;
        assert_eq!(doc["issuer"], "http://identity.test");
        assert_eq!(doc["token_endpoint"], "http://identity.test/auth/token");
        assert_eq!(
            doc["revocation_endpoint"],
            "http://identity.test/auth/revoke"
        );
        assert_eq!(
            doc["jwks_uri"],
            "http://identity.test/.well-known/jwks.json"
        );
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!(["client_credentials", "password"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!([]));
        let capabilities = doc["capabilities"].as_array().unwrap();
        assert!(capabilities
            .iter()
            .any(|c| c == "client-confidential-symmetric"));
        assert!(
            capabilities.iter().all(|c| c != "launch-ehr"),
            "no launch is supported"
        );
        let scopes = doc["scopes_supported"].as_array().unwrap();
        for wanted in [
            "patient/*.rs",
            "user/*.cruds",
            "system/*.cruds",
            "openid",
            "fhirUser",
            "launch/patient",
            "offline_access",
        ] {
            assert!(scopes.iter().any(|s| s == wanted), "{wanted} in {scopes:?}");
        }
        assert!(
            scopes
                .iter()
                .all(|s| !s.as_str().unwrap().ends_with(".read")),
            "scopes are listed in the v2 spelling: {scopes:?}"
        );
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["checks"]["postgres"], "ok");
    assert_eq!(ready.body["checks"]["redis"], "ok");
    app.admin_token().await;
    let metrics = app
        .get("/metrics", None)
        .await
        .body
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        metrics.contains("custodian_tokens_issued_total"),
        "{metrics}"
    );
    assert!(metrics.contains("custodian_http_requests_total"));
    assert!(
        metrics.contains("custodian_events_published_total")
            || metrics.contains("custodian_outbox_backlog")
    );
    app.cleanup().await;
}

#[test]
fn the_openapi_document_lists_every_public_endpoint() {
    let doc = identity::openapi();
    let json = serde_json::to_value(&doc).unwrap();
    let paths = json["paths"].as_object().unwrap();
    for path in [
        "/auth/token",
        "/auth/revoke",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
        "/auth/admin/organizations",
        "/auth/admin/users",
        "/auth/admin/users/{id}",
        "/auth/admin/users/{id}/suspend",
        "/auth/admin/users/{id}/reinstate",
        "/auth/admin/users/{id}/unlock",
        "/auth/admin/clients/{id}/unlock",
        "/auth/admin/clients",
        "/auth/admin/keys/rotate",
        "/internal/suspended",
    ] {
        assert!(paths.contains_key(path), "{path} is undocumented");
    }
    assert!(
        paths["/auth/admin/organizations"].get("get").is_some()
            && paths["/auth/admin/organizations"].get("post").is_some()
    );
    assert!(json["components"]["schemas"].get("TokenResponse").is_some());
}
