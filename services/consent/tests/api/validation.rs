//! What the service refuses to store.

use actix_web::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{alice_consent, spawn_app};

#[actix_web::test]
async fn an_invalid_consent_is_422_with_an_operation_outcome() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");

    let mut bad_status = alice_consent();
    bad_status["status"] = "maybe".into();
    bad_status["colour"] = "blue".into();
    let response = app.post_consent(&alice, &bad_status).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    response.outcome();
    let issues = response.body["issue"].as_array().unwrap();
    assert!(
        issues
            .iter()
            .any(|i| i["expression"][0] == "Consent.status"),
        "{}",
        response.body
    );

    let mut no_scope = alice_consent();
    no_scope.as_object_mut().unwrap().remove("scope");
    assert_eq!(
        app.post_consent(&alice, &no_scope).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let mut no_patient = alice_consent();
    no_patient.as_object_mut().unwrap().remove("patient");
    let response = app.post_consent(&alice, &no_patient).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.outcome().contains("patient"));

    let mut group = alice_consent();
    group["patient"]["reference"] = "Group/g1".into();
    assert_eq!(
        app.post_consent(&alice, &group).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    assert_eq!(
        app.consent_changes(1).await.len(),
        0,
        "nothing invalid is published"
    );
    app.finish().await;
}

#[actix_web::test]
async fn malformed_requests_are_400_and_non_json_is_415() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");

    let patient = app
        .post_consent(&alice, &json!({"resourceType": "Patient", "id": "x"}))
        .await;
    assert_eq!(patient.status, StatusCode::BAD_REQUEST);
    assert!(patient.outcome().contains("Consent"));
    let mut untyped = alice_consent();
    untyped.as_object_mut().unwrap().remove("resourceType");
    assert_eq!(
        app.post_consent(&alice, &untyped).await.status,
        StatusCode::BAD_REQUEST
    );
    let broken = app
        .send_raw(
            Method::POST,
            "/fhir/Consent",
            &alice,
            "application/fhir+json",
            "{\"resourceType\": ",
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    broken.outcome();
    let xml = app
        .send_raw(
            Method::POST,
            "/fhir/Consent",
            &alice,
            "application/fhir+xml",
            "<Consent/>",
        )
        .await;
    assert_eq!(xml.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    xml.outcome();
    let plain_json = app
        .send_raw(
            Method::POST,
            "/consent/Consent",
            &alice,
            "application/json; charset=utf-8",
            &alice_consent().to_string(),
        )
        .await;
    assert_eq!(
        plain_json.status,
        StatusCode::CREATED,
        "{}",
        plain_json.body
    );
    app.finish().await;
}
