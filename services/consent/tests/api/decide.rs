//! `POST /consent/decide` over stored consents: who may ask, what it answers, and that every
//! call is an access event.

use actix_web::http::{Method, StatusCode};
use custodian_auth::Role;
use custodian_events::{AccessAction, AccessOutcome};
use serde_json::json;

use crate::helpers::{alice_consent, spawn_app};

fn question(actor: &str, purpose: &str) -> serde_json::Value {
    json!({"patient": "Patient/alice", "actors": [actor], "purpose": purpose, "resource_type": "Observation"})
}

#[actix_web::test]
async fn decide_permits_h1_for_treatment_and_nobody_else() {
    let app = spawn_app().await;
    let service = app.token(Role::Service);
    let before = app
        .decide(&service, &question("Organization/h1", "TREAT"))
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(
        before.body["decision"], "not-applicable",
        "no consent says anything"
    );
    assert_eq!(before.body["permit"], false);

    let created = app.create_alice_consent().await;
    let consent = format!("Consent/{}", created["id"].as_str().unwrap());

    let h1 = app
        .decide(&service, &question("Organization/h1", "TREAT"))
        .await;
    assert_eq!(h1.body["decision"], "permit", "{}", h1.body);
    assert_eq!(h1.body["permit"], true);
    assert_eq!(h1.body["consents"], json!([consent]));
    let h2 = app
        .decide(&service, &question("Organization/h2", "TREAT"))
        .await;
    assert_eq!(h2.body["decision"], "not-applicable");
    assert_eq!(h2.body["permit"], false);
    // Research on observations: the nested deny applies, and deeper wins.
    let research = app
        .decide(&service, &question("Organization/h1", "HRESCH"))
        .await;
    assert_eq!(
        research.body["decision"], "not-applicable",
        "the root is for TREAT only"
    );
    let bare_patient = json!({"patient": "alice", "actors": ["Organization/h1"], "purpose": "TREAT", "resource_type": "Condition", "action": "access"});
    assert_eq!(
        app.decide(&service, &bare_patient).await.body["decision"],
        "permit"
    );
    let correct = json!({"patient": "alice", "actors": ["Organization/h1"], "purpose": "TREAT", "resource_type": "Condition", "action": "correct"});
    assert_eq!(
        app.decide(&service, &correct).await.body["decision"],
        "not-applicable"
    );
    let expired = json!({"patient": "alice", "actors": ["Organization/h1"], "purpose": "TREAT", "resource_type": "Condition", "at": "2100-01-01T00:00:00Z"});
    assert_eq!(app.decide(&service, &expired).await.body["permit"], false);

    let as_fhir_json = app
        .send_raw(
            Method::POST,
            "/consent/decide",
            &service,
            "application/fhir+json",
            &question("Organization/h1", "TREAT").to_string(),
        )
        .await;
    assert_eq!(as_fhir_json.body["permit"], true, "{}", as_fhir_json.body);

    // Malformed questions are 400.
    for bad in [
        json!({"patient": "alice"}),
        json!({"patient": "Group/g1", "purpose": "TREAT", "resource_type": "Observation"}),
        json!({"patient": "alice", "purpose": "TREAT", "resource_type": "Widget"}),
        json!({"patient": "alice", "purpose": "TREAT", "resource_type": "Observation", "action": "sell"}),
    ] {
        assert_eq!(
            app.decide(&service, &bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }

    // Revoked: nothing permits any more.
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.delete_consent(&app.patient_token("Patient/alice"), id)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.decide(&service, &question("Organization/h1", "TREAT"))
            .await
            .body["permit"],
        false
    );

    let metrics = app.get("/metrics", None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("consent_decisions_total{decision=\"permit\",service=\"consent\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("consent_decisions_total{decision=\"not-applicable\",service=\"consent\"} 6"),
        "{text}"
    );
    app.finish().await;
}

#[actix_web::test]
async fn instance_facts_decide_what_the_type_alone_cannot() {
    let app = spawn_app().await;
    let mut consent = alice_consent();
    consent["provision"]["provision"] = json!([{
        "type": "deny",
        "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
    }]);
    let created = app
        .post_consent(&app.patient_token("Patient/alice"), &consent)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let service = app.service_token(Some("Organization/records"));
    let unknown = app
        .decide(&service, &question("Organization/h1", "TREAT"))
        .await;
    assert_eq!(unknown.body["decision"], "undetermined", "{}", unknown.body);
    let mut normal = question("Organization/h1", "TREAT");
    normal["security_labels"] = json!([]);
    assert_eq!(
        app.decide(&service, &normal).await.body["decision"],
        "permit"
    );
    let mut restricted = question("Organization/h1", "TREAT");
    restricted["security_labels"] = json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]);
    assert_eq!(
        app.decide(&service, &restricted).await.body["decision"],
        "deny"
    );
    app.finish().await;
}

#[actix_web::test]
async fn only_services_and_the_patient_herself_may_ask_and_every_call_is_recorded() {
    let app = spawn_app().await;
    app.create_alice_consent().await;
    let alice = app.patient_token("Patient/alice");
    let own = app
        .decide(&alice, &question("Organization/h1", "TREAT"))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["decision"], "permit");

    let mut about_bob = question("Organization/h1", "TREAT");
    about_bob["patient"] = json!("Patient/bob");
    assert_eq!(
        app.decide(&alice, &about_bob).await.status,
        StatusCode::FORBIDDEN
    );
    for token in [
        app.practitioner_token("Organization/h1"),
        app.token(Role::Admin),
        app.token(Role::Auditor),
    ] {
        let refused = app
            .decide(&token, &question("Organization/h1", "TREAT"))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        refused.outcome();
    }
    let service = app.token(Role::Service);
    assert_eq!(
        app.decide(&service, &question("Organization/h2", "TREAT"))
            .await
            .status,
        StatusCode::OK
    );

    // Alice's creation, then six decide calls: each an access event on the asked patient.
    let events = app.access_events(7).await;
    let decides: Vec<_> = events
        .iter()
        .filter(|e| e.action == AccessAction::Read && e.resource_type.as_deref() == Some("Consent"))
        .collect();
    assert_eq!(decides.len(), 6, "{events:?}");
    let outcome_of = |patient: &str, outcome: AccessOutcome| {
        decides
            .iter()
            .filter(|e| e.patient.as_deref() == Some(patient) && e.outcome == outcome)
            .count()
    };
    assert_eq!(outcome_of("Patient/alice", AccessOutcome::Permit), 2);
    assert_eq!(outcome_of("Patient/bob", AccessOutcome::Deny), 1);
    assert_eq!(outcome_of("Patient/alice", AccessOutcome::Deny), 3);
    app.finish().await;
}
