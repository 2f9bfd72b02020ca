//! `POST /consent/decide` over stored consents.

use actix_web::http::{Method, StatusCode};
use custodian_auth::Role;
use serde_json::json;

use crate::helpers::spawn_app;

fn question(actor: &str, purpose: &str) -> serde_json::Value {
    json!({"patient": "Patient/alice", "actors": [actor], "purpose": purpose, "resource_type": "Observation"})
}

#[actix_web::test]
async fn decide_permits_h1_for_treatment_and_denies_h2() {
    let app = spawn_app().await;
    let service = app.token(Role::Service);
    let before = app
        .decide(&service, &question("Organization/h1", "TREAT"))
        .await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(before.body["permit"], false, "no consent, no access");
    assert_eq!(before.body["reason"], "no_consent");

    let created = app.create_alice_consent().await;
    let consent = format!("Consent/{}", created["id"].as_str().unwrap());

    let h1 = app
        .decide(&service, &question("Organization/h1", "TREAT"))
        .await;
    assert_eq!(h1.body["permit"], true, "{}", h1.body);
    assert_eq!(h1.body["reason"]["permitted_by"], consent);
    let h2 = app
        .decide(&service, &question("Organization/h2", "TREAT"))
        .await;
    assert_eq!(h2.body["permit"], false);
    let research = app
        .decide(&service, &question("Organization/h1", "HRESCH"))
        .await;
    assert_eq!(research.body["permit"], false);
    let practitioner = app.practitioner_token("Organization/h1");
    let bare_patient = json!({"patient": "alice", "actors": ["Organization/h1"], "purpose": "TREAT", "resource_type": "Condition", "action": "access"});
    assert_eq!(
        app.decide(&practitioner, &bare_patient).await.body["permit"],
        true
    );
    let expired = json!({"patient": "alice", "actors": ["Organization/h1"], "purpose": "TREAT", "resource_type": "Condition", "at": "2100-01-01T00:00:00Z"});
    assert_eq!(
        app.decide(&practitioner, &expired).await.body["permit"],
        false
    );

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

    // Patients may not ask; malformed questions are 400.
    assert_eq!(
        app.decide(
            &app.patient_token("Patient/alice"),
            &question("Organization/h1", "TREAT")
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.decide(&service, &json!({"patient": "alice"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // Revoked: denied from then on.
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
        text.contains("consent_decisions_total{decision=\"deny\",service=\"consent\"} 5"),
        "{text}"
    );
    app.finish().await;
}
