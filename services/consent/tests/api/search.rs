//! Searching consents.

use actix_web::http::StatusCode;
use custodian_auth::Role;

use crate::helpers::{consent_for, spawn_app, PUBLIC_URL};

#[actix_web::test]
async fn search_by_patient_and_status_returns_a_searchset_bundle() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let alice = app.patient_token("Patient/alice");
    // Named by every consent below: it sees all of them.
    let h1 = app.practitioner_token("Organization/h1");
    let first = app.create_alice_consent().await;
    let mut inactive = consent_for("Patient/alice");
    inactive["status"] = "inactive".into();
    let second = app.post_consent(&admin, &inactive).await;
    assert_eq!(second.status, StatusCode::CREATED);
    let bobs = app.post_consent(&admin, &consent_for("Patient/bob")).await;
    assert_eq!(bobs.status, StatusCode::CREATED);

    let all_alice = app
        .get("/fhir/Consent?patient=Patient/alice", Some(&h1))
        .await;
    assert_eq!(all_alice.status, StatusCode::OK);
    let bundle = &all_alice.body;
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 2);
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["search"]["mode"], "match");
        assert_eq!(entry["resource"]["patient"]["reference"], "Patient/alice");
        let id = entry["resource"]["id"].as_str().unwrap();
        assert_eq!(entry["fullUrl"], format!("{PUBLIC_URL}/fhir/Consent/{id}"));
    }
    let self_link = bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "self")
        .expect("a self link");
    assert!(self_link["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{PUBLIC_URL}/fhir/Consent?patient=Patient/alice")));

    let active = app
        .get("/consent/Consent?patient=alice&status=active", Some(&alice))
        .await;
    assert_eq!(active.body["total"], 1);
    assert_eq!(active.body["entry"][0]["resource"]["id"], first["id"]);

    // Alice herself finds her two, never Bob's.
    let own = app.get("/fhir/Consent", Some(&alice)).await;
    assert_eq!(own.body["total"], 2);

    // Paging over what h1 may see.
    let page = app.get("/fhir/Consent?_count=1", Some(&h1)).await;
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["entry"].as_array().unwrap().len(), 1);
    assert!(page.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "next"));

    // Deleted consents are not found.
    let id = bobs.body["id"].as_str().unwrap();
    assert_eq!(app.delete_consent(&admin, id).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/fhir/Consent?patient=bob", Some(&h1)).await.body["total"],
        0
    );

    // Unknown parameters: ignored and reported by default (real clients send their own),
    // refused under `Prefer: handling=strict`.
    let lenient = app.get("/fhir/Consent?colour=blue", Some(&alice)).await;
    assert_eq!(lenient.status, StatusCode::OK, "{}", lenient.body);
    let entries = lenient.body["entry"].as_array().unwrap();
    let outcome = entries
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert!(outcome["resource"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("colour"));
    assert!(entries.iter().any(|e| e["search"]["mode"] == "match"));
    assert!(!lenient.body["link"][0]["url"]
        .as_str()
        .unwrap()
        .contains("colour"));
    let strict = app
        .send(
            app.request(
                actix_web::http::Method::GET,
                "/fhir/Consent?colour=blue",
                Some(&alice),
            )
            .insert_header(("Prefer", "handling=strict")),
            None,
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    strict.outcome();
    // Only JSON is served: XML, asked for either way, is a 406 before anything else.
    let by_accept = app
        .request(actix_web::http::Method::GET, "/fhir/Consent", Some(&alice))
        .insert_header(("Accept", "application/fhir+xml"));
    let by_format = app.request(
        actix_web::http::Method::GET,
        "/fhir/Consent?_format=xml",
        Some(&alice),
    );
    for request in [by_accept, by_format] {
        let refused = app.send(request, None).await;
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
        refused.outcome();
    }
    let bad_patient = app.get("/fhir/Consent?patient=x%C3%A9", Some(&alice)).await;
    assert_eq!(bad_patient.status, StatusCode::BAD_REQUEST);
    app.finish().await;
}
