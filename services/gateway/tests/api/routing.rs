//! Each prefix reaches its service with path and query unchanged; internal and unknown paths
//! do not.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn each_prefix_reaches_its_service_with_path_and_query_unchanged() {
    let app = spawn_app().await;
    let token = app.token();
    let cases = [
        ("/auth/admin/organizations?name=x", "identity"),
        ("/.well-known/jwks.json", "identity"),
        ("/fhir/.well-known/smart-configuration", "identity"),
        ("/fhir/Consent", "consent"),
        ("/fhir/Consent?patient=Patient%2F7&status=active", "consent"),
        ("/fhir/Consent/abc/_history/2", "consent"),
        ("/consent/decisions?purpose=TREAT", "consent"),
        ("/fhir/_history", "records"),
        ("/fhir/metadata", "records"),
        ("/fhir/Patient?name=J%C3%B6rg&_count=5&_count=6", "records"),
        ("/fhir/Observation/9f2/_history", "records"),
        ("/ledger/entries?from=3", "ledger"),
        ("/anomaly/alerts", "anomaly"),
    ];
    for (target, expected) in cases {
        let answer = app.get(target, Some(&token)).await;
        assert_eq!(
            answer.status,
            201,
            "{target}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let echo = answer.json();
        assert_eq!(echo["upstream"], expected, "{target}");
        assert_eq!(echo["method"], "GET", "{target}");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        assert_eq!(echo["path"], path, "{target}");
        assert_eq!(echo["query"], query, "{target}");
        assert_eq!(
            answer.header("x-upstream").as_deref(),
            Some(expected),
            "{target}"
        );
    }

    // Metrics name the prefix pattern and the upstream, never the path.
    let metrics = String::from_utf8(app.get("/metrics", None).await.body).unwrap();
    assert!(metrics.contains(r#"route="/fhir/{tail:.*}""#), "{metrics}");
    assert!(metrics.contains(r#"upstream="consent""#), "{metrics}");
    for leaked in ["Patient", "abc", "9f2", "alerts"] {
        assert!(!metrics.contains(leaked), "{leaked} in metrics: {metrics}");
    }
}

#[actix_web::test]
async fn methods_and_bodies_are_forwarded() {
    let app = spawn_app().await;
    let token = app.token();
    let body = r#"{"resourceType":"Patient","name":[{"family":"Müller"}]}"#;
    // Each to a path that declares it (others are refused: below).
    for (method, path) in [
        (awc::http::Method::POST, "/fhir/Patient?_format=json"),
        (awc::http::Method::PUT, "/fhir/Patient/1?_format=json"),
        (awc::http::Method::PATCH, "/fhir/Patient/1?_format=json"),
    ] {
        let request = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&token)
            .content_type("application/fhir+json");
        let answer = app.send_body(request, body).await;
        assert_eq!(answer.status, 201);
        let echo = answer.json();
        assert_eq!(echo["method"], method.as_str());
        assert_eq!(echo["body"], body);
        assert_eq!(echo["headers"]["content-type"][0], "application/fhir+json");
        assert_eq!(echo["headers"]["content-length"][0], body.len().to_string());
    }
    let delete = app
        .send(
            app.client
                .delete(app.url("/fhir/Patient/1"))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(delete.json()["method"], "DELETE");
}

#[actix_web::test]
async fn internal_paths_are_never_forwarded() {
    let app = spawn_app().await;
    let token = app.token();
    let before = app.hits("identity");
    for path in ["/internal/suspended", "/internal/consents", "/internal"] {
        app.get(path, Some(&token)).await.assert_outcome(404);
        app.get(path, None).await.assert_outcome(404);
    }
    // Dot segments cannot smuggle a request to an internal path either.
    app.get("/auth/../internal/suspended", Some(&token))
        .await
        .assert_outcome(400);
    app.get("/auth/%2e%2e/internal/suspended", Some(&token))
        .await
        .assert_outcome(400);
    assert_eq!(app.hits("identity"), before, "identity was called");
}

#[actix_web::test]
async fn unknown_paths_are_404_operation_outcomes() {
    let app = spawn_app().await;
    let token = app.token();
    for path in ["/", "/nothing", "/fhirx/Patient", "/ledgers", "/authority"] {
        let answer = app.get(path, Some(&token)).await;
        let outcome = answer.assert_outcome(404);
        assert_eq!(outcome["issue"][0]["code"], "not-found");
        assert!(answer
            .header("content-type")
            .unwrap()
            .starts_with("application/fhir+json"));
    }
}

#[actix_web::test]
async fn undeclared_methods_are_405_with_allow_and_not_forwarded() {
    let app = spawn_app().await;
    let token = app.token();
    let before = app.hits("records") + app.hits("identity") + app.hits("ledger");
    let cases = [
        ("TRACE", "/fhir/Observation/1", "GET, PUT, PATCH, DELETE"),
        ("POST", "/fhir/Observation/1", "GET, PUT, PATCH, DELETE"),
        ("GET", "/fhir", "POST"),
        ("DELETE", "/fhir/Patient/$everything", "GET"),
        ("PUT", "/fhir/Patient/%24everything", "GET"),
        ("OPTIONS", "/auth/token", "POST"),
        ("TRACE", "/ledger/checkpoint", "GET"),
        ("QUERY", "/fhir/metadata", "GET"),
    ];
    for (method, path, allow) in cases {
        let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        for token in [Some(&token), None] {
            let mut request = app.client.request(method.clone(), app.url(path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let answer = app.send(request).await;
            let outcome = answer.assert_outcome(405);
            assert_eq!(
                outcome["issue"][0]["code"], "not-supported",
                "{method} {path}"
            );
            assert_eq!(
                answer.header("allow").as_deref(),
                Some(allow),
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        app.hits("records") + app.hits("identity") + app.hits("ledger"),
        before,
        "a refused method was forwarded"
    );
    // The gateway's own endpoints answer the same way.
    for path in ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"] {
        let answer = app
            .send(app.client.request(awc::http::Method::TRACE, app.url(path)))
            .await;
        assert_eq!(answer.status, 405, "{path}");
        assert_eq!(answer.header("allow").as_deref(), Some("GET"), "{path}");
    }
}
