use crate::helpers::spawn_app;

#[actix_web::test]
async fn capability_statement_is_public() {
    let app = spawn_app().await;
    let resp = app.get_public("/fhir/metadata").await;
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+json"));
    let cs = resp.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["status"], "active");
    assert_eq!(cs["kind"], "instance");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert!(cs["format"].as_array().unwrap().iter().any(|f| f == "json"));
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    assert_eq!(
        rest["security"]["service"][0]["coding"][0]["code"],
        "SMART-on-FHIR"
    );
    let uris = rest["security"]["extension"][0]["extension"]
        .as_array()
        .unwrap();
    assert!(uris
        .iter()
        .any(|u| u["url"] == "token" && u["valueUri"] == "http://gateway.test/auth/token"));
    assert!(uris
        .iter()
        .any(|u| u["url"] == "revoke" && u["valueUri"] == "http://gateway.test/auth/revoke"));
    let patient = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    assert!(patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "birthdate" && p["type"] == "date"));
    assert!(patient["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["code"] == "search-type"));

    // Health and metrics.
    assert_eq!(app.get_public("/healthz").await.status, 200);
    let metrics = app.get_public("/metrics").await.text();
    assert!(metrics.contains("fhir_operations_total"), "{metrics}");
    assert!(metrics.contains("events_published_total") || metrics.contains("outbox_backlog"));
    app.cleanup().await;
}

#[test]
fn openapi_documents_the_interactions() {
    let doc = records::openapi();
    let json = serde_json::to_value(&doc).unwrap();
    for path in [
        "/fhir/metadata",
        "/fhir/{type}",
        "/fhir/{type}/{id}",
        "/fhir/{type}/{id}/_history/{vid}",
        "/fhir/{type}/_search",
    ] {
        assert!(json["paths"].get(path).is_some(), "{path}");
    }
}
