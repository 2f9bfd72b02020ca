use serde_json::json;

use crate::helpers::{spawn_app, weight};

#[actix_web::test]
async fn schema_invalid_resources_are_422_with_every_issue() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let bad =
        json!({"resourceType": "Patient", "gender": 3, "birthDate": "yesterday", "colour": "blue"});
    let resp = app.post("/fhir/Patient", &token, &bad).await;
    assert_eq!(resp.status, 422, "{}", resp.text());
    let outcome = resp.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let issues = outcome["issue"].as_array().unwrap();
    assert!(issues.len() >= 3, "{outcome}");
    assert!(
        issues
            .iter()
            .any(|i| i["expression"][0] == "Patient.gender"),
        "{outcome}"
    );
    assert!(
        issues
            .iter()
            .any(|i| i["expression"][0] == "Patient.birthDate"),
        "{outcome}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn malformed_and_mismatched_bodies_are_400() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let malformed = app
        .send_json(
            "POST",
            "/fhir/Patient",
            &token,
            "{\"resourceType\": \"Patient\",",
            &[],
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["resourceType"], "OperationOutcome");
    let mismatched = app
        .send_json(
            "POST",
            "/fhir/Patient",
            &token,
            &weight("Patient/a", "1"),
            &[],
        )
        .await;
    assert_eq!(mismatched.status, 400, "{}", mismatched.text());
    let no_type = app
        .post("/fhir/Patient", &token, &json!({"active": true}))
        .await;
    assert_eq!(no_type.status, 400);
    let wrong_id = app
        .put(
            "/fhir/Patient/a",
            &token,
            &json!({"resourceType": "Patient", "id": "b"}),
            &[],
        )
        .await;
    assert_eq!(wrong_id.status, 400);
    let no_id = app
        .put(
            "/fhir/Patient/a",
            &token,
            &json!({"resourceType": "Patient"}),
            &[],
        )
        .await;
    assert_eq!(no_id.status, 400);
    let bad_id = app.get("/fhir/Patient/a_b", &token, &[]).await;
    assert_eq!(bad_id.status, 400);
    assert_eq!(app.get("/fhir/Banana/1", &token, &[]).await.status, 404);
    assert_eq!(
        app.post("/fhir/Consent", &token, &json!({"resourceType": "Consent"}))
            .await
            .status,
        404
    );
    let xml = app
        .client
        .post(format!("{}/fhir/Patient", app.address))
        .bearer_auth(&token)
        .insert_header(("Content-Type", "application/fhir+xml"))
        .send_body("<Patient/>")
        .await
        .unwrap();
    assert_eq!(xml.status(), 415);
    let anonymous = app
        .client
        .get(format!("{}/fhir/Patient/a", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.cleanup().await;
}

#[actix_web::test]
async fn validate_operation_reports_without_storing() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let ok = app
        .post(
            "/fhir/Patient/$validate",
            &token,
            &json!({"resourceType": "Patient", "gender": "female"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["issue"][0]["severity"], "information");
    let bad = app
        .post(
            "/fhir/Patient/$validate",
            &token,
            &json!({"resourceType": "Patient", "gender": 1}),
        )
        .await;
    assert_eq!(bad.status, 200);
    assert_eq!(bad.json()["issue"][0]["severity"], "error");
    assert_eq!(bad.json()["issue"][0]["expression"][0], "Patient.gender");
    let wrapped = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]});
    assert_eq!(
        app.post("/fhir/Patient/$validate", &token, &wrapped)
            .await
            .json()["issue"][0]["severity"],
        "information"
    );
    assert_eq!(
        app.post(
            "/fhir/Observation/$validate",
            &token,
            &json!({"resourceType": "Patient"})
        )
        .await
        .status,
        400
    );
    let (_, bg) = app.practitioner("Organization/h1");
    assert_eq!(
        app.get("/fhir/Patient", &bg, &[]).await.json()["total"],
        0,
        "nothing stored"
    );
    app.cleanup().await;
}
