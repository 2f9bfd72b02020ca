use serde_json::json;

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

/// The operations the CapabilityStatement lists are the ones routed (`routes/operations.rs`
/// is the table of both): each listed one answers something other than 404 or 405 on a
/// resource that exists, each routed `$` path is listed or says why not, and the OpenAPI
/// document names no `$` path the table lacks.
#[actix_web::test]
async fn listed_operations_are_the_routed_ones() {
    use records::routes::operations::{Listed, Verb, OPERATIONS};
    use std::collections::BTreeSet;

    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    crate::helpers::register(&app, &token, "opsp").await;
    let group = json!({"resourceType": "Group", "id": "opsg", "type": "person", "actual": true,
                       "member": [{"entity": {"reference": "Patient/opsp"}}]});
    let r = app.put("/fhir/Group/opsg", &token, &group, &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());

    let cs = app.get_public("/fhir/metadata").await.json();
    let rest = &cs["rest"][0];
    // (level, name, definition) as listed.
    let mut listed: BTreeSet<(String, String, String)> = BTreeSet::new();
    for o in rest["operation"].as_array().unwrap() {
        listed.insert((
            "rest".into(),
            o["name"].as_str().unwrap().into(),
            o["definition"].as_str().unwrap().into(),
        ));
    }
    // Consent's and AuditEvent's are their services' own (not records' routes).
    for r in rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] != "Consent" && r["type"] != "AuditEvent")
    {
        for o in r["operation"].as_array().into_iter().flatten() {
            listed.insert((
                r["type"].as_str().unwrap().into(),
                o["name"].as_str().unwrap().into(),
                o["definition"].as_str().unwrap().into(),
            ));
        }
    }
    let types: Vec<String> = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_string())
        // Served by the ledger and by consent, which list their own interactions.
        .filter(|t| t != "AuditEvent" && t != "Consent")
        .collect();
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    for o in OPERATIONS {
        let at: Vec<String> = match o.listed {
            Listed::Rest => vec!["rest".into()],
            Listed::EveryType => types.clone(),
            Listed::Types(ts) => ts.iter().map(|t| t.to_string()).collect(),
            Listed::Not(why) => {
                assert!(!why.is_empty(), "{}", o.name);
                continue;
            }
        };
        for level in at {
            expected.insert((level, o.name.into(), o.definition.into()));
        }
    }
    assert_eq!(listed, expected, "listed vs routed");
    assert!(listed.contains(&(
        "Patient".into(),
        "everything".into(),
        "http://hl7.org/fhir/OperationDefinition/Patient-everything".into()
    )));

    // Each listed one is served: never the 404 of an unknown path or the 405 of an unserved
    // method.
    let meta = json!({"resourceType": "Parameters", "parameter": [{"name": "meta",
                      "valueMeta": {"tag": [{"system": "urn:t", "code": "x"}]}}]});
    let mut tried = 0;
    for o in OPERATIONS
        .iter()
        .filter(|o| !matches!(o.listed, Listed::Not(_)))
    {
        for p in o.paths {
            let id = if p.path.starts_with("/fhir/Group/") {
                "opsg"
            } else {
                "opsp"
            };
            let path = p
                .path
                .replace("{type}", if id == "opsg" { "Group" } else { "Patient" })
                .replace("{id}", id)
                .replace("{vid}", "1");
            for h in p.handlers {
                let body = match (o.name, h.verb) {
                    ("meta-add" | "meta-delete", _) => Some(meta.to_string()),
                    ("validate", _) => {
                        Some(crate::helpers::patient_resource("v", "V", "V").to_string())
                    }
                    (_, Verb::Post) => Some(json!({"resourceType": "Parameters"}).to_string()),
                    _ => None,
                };
                let r = app
                    .request(
                        h.verb.as_str(),
                        &path,
                        &token,
                        body.as_deref().map(|b| ("application/fhir+json", b)),
                        &[("Prefer", "respond-async")],
                    )
                    .await;
                assert!(
                    r.status != 404 && r.status != 405,
                    "{} {path}: {} {}",
                    h.verb.as_str(),
                    r.status,
                    r.text()
                );
                tried += 1;
            }
        }
    }
    assert!(tried >= 13, "{tried}");

    // Every `$` path the OpenAPI document knows is routed from the table.
    let routed: BTreeSet<&str> = OPERATIONS
        .iter()
        .flat_map(|o| o.paths.iter().map(|p| p.path))
        .collect();
    let doc = serde_json::to_value(records::openapi()).unwrap();
    for path in doc["paths"].as_object().unwrap().keys() {
        if path.contains('$') {
            assert!(routed.contains(path.as_str()), "{path} is not in the table");
        }
    }
    app.cleanup().await;
}
