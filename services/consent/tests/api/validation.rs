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

/// Posts `consent` as Alice and returns the 422's issues as (expression, location, diagnostics).
async fn refused(
    app: &crate::helpers::TestApp,
    consent: &serde_json::Value,
) -> Vec<(String, String, String)> {
    let response = app
        .post_consent(&app.patient_token("Patient/alice"), consent)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.body
    );
    response.outcome();
    response.body["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["expression"][0].as_str().unwrap_or_default().to_string(),
                i["location"][0].as_str().unwrap_or_default().to_string(),
                i["diagnostics"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn what_the_engine_cannot_enforce_exactly_is_422_with_the_element_path() {
    let app = spawn_app().await;
    // (case, change to the fixture, expected path, a word of the message)
    type Change = fn(&mut serde_json::Value);
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "an actor named by identifier only",
            |c| {
                c["provision"]["actor"][0]["reference"] = json!({"identifier": {"system": "urn:oid:2.16.840.1.113883.4.7", "value": "h2"}});
            },
            "Consent.provision.actor[0].reference",
            "identifier",
        ),
        (
            "a nested actor named by identifier only",
            |c| {
                c["provision"]["provision"] = json!([
                    {"type": "deny", "class": [{"code": "Observation"}]},
                    {"type": "permit", "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"identifier": {"value": "h2"}}}]}
                ]);
            },
            "Consent.provision.provision[1].actor[0].reference",
            "identifier",
        ),
        (
            "an actor of another type",
            |c| {
                c["provision"]["actor"][0]["reference"] = json!({"reference": "Location/ward-3"});
            },
            "Consent.provision.actor[0].reference",
            "Location",
        ),
        (
            "data related by identifier only",
            |c| {
                c["provision"]["provision"][0]["data"] =
                    json!([{"meaning": "related", "reference": {"identifier": {"value": "e1"}}}]);
            },
            "Consent.provision.provision[0].data[0].reference",
            "literal",
        ),
        (
            "data authored by",
            |c| {
                c["provision"]["data"] = json!([{"meaning": "authoredby", "reference": {"reference": "Practitioner/p1"}}]);
            },
            "Consent.provision.data[0].meaning",
            "authorship",
        ),
        (
            "an unparseable date",
            |c| {
                c["provision"]["period"]["end"] = json!("2099-02-30");
            },
            "Consent.provision.period.end",
            "dateTime",
        ),
        (
            "a class that is no resource type",
            |c| {
                c["provision"]["provision"][0]["class"] =
                    json!([{"system": "urn:ietf:bcp:13", "code": "application/pdf"}]);
            },
            "Consent.provision.provision[0].class[0].system",
            "resource types",
        ),
        (
            "an unknown action",
            |c| {
                c["provision"]["action"][0]["coding"][0]["code"] = json!("sell");
            },
            "Consent.provision.action[0].coding[0].code",
            "consentaction",
        ),
        (
            "a modifier extension",
            |c| {
                c["provision"]["modifierExtension"] =
                    json!([{"url": "http://example.org/x", "valueBoolean": true}]);
            },
            "Consent.provision.modifierExtension",
            "modifier",
        ),
        (
            "an unknown scope",
            |c| {
                c["scope"]["coding"][0]["code"] = json!("marketing");
            },
            "Consent.scope.coding[0].code",
            "consentscope",
        ),
    ];
    for (case, change, path, word) in cases {
        let mut consent = alice_consent();
        change(&mut consent);
        let issues = refused(&app, &consent).await;
        assert!(
            issues
                .iter()
                .any(|(expression, location, message)| expression == path
                    && location == path
                    && message.contains(word)),
            "{case}: expected {path} ({word}) in {issues:?}"
        );
    }
    assert_eq!(
        app.consent_changes(1).await.len(),
        0,
        "nothing refused is published"
    );

    // An update is held to the same rules.
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap();
    let mut widened = created.clone();
    widened["provision"]["actor"][0]["reference"] = json!({"display": "Hospital Two"});
    let response = app
        .put_consent(&app.patient_token("Patient/alice"), id, &widened, None)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.body
    );
    assert_eq!(
        response.body["issue"][0]["expression"][0],
        "Consent.provision.actor[0].reference"
    );
    app.finish().await;
}

#[actix_web::test]
async fn treatment_consents_and_consents_naming_care_teams_are_accepted() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let mut treatment = alice_consent();
    treatment["scope"]["coding"][0]["code"] = json!("treatment");
    let created = app.post_consent(&alice, &treatment).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let mut care_team = alice_consent();
    care_team["provision"]["actor"][0]["reference"]["reference"] = json!("CareTeam/ct1");
    let created = app.post_consent(&alice, &care_team).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // Denies too: their members are known from records, or the answer fails closed.
    let mut deny = alice_consent();
    deny["provision"]["provision"][0]["actor"] = json!([{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "CareTeam/ct1"}}]);
    let created = app.post_consent(&alice, &deny).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    app.finish().await;
}

/// `$validate` tells what a create would refuse, without storing anything.
#[actix_web::test]
async fn validate_answers_what_a_create_would_refuse_without_storing() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let validate = |body: serde_json::Value| {
        let request = app
            .request(Method::POST, "/fhir/Consent/$validate", Some(&alice))
            .insert_header(("Content-Type", "application/fhir+json"));
        app.send(request, Some(body.to_string()))
    };
    let fine = validate(alice_consent()).await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.body);
    assert_eq!(fine.body["issue"][0]["severity"], "information");
    let mut bad = alice_consent();
    bad["status"] = "maybe".into();
    let wrapped =
        json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": bad}]});
    let refused = validate(wrapped).await;
    assert_eq!(refused.status, StatusCode::OK, "{}", refused.body);
    assert_eq!(
        refused.body["issue"][0]["severity"], "error",
        "{}",
        refused.body
    );
    let not_consent = validate(json!({"resourceType": "Patient"})).await;
    assert_eq!(not_consent.status, StatusCode::BAD_REQUEST);
    // Nothing was stored.
    let own = app.get("/fhir/Consent?_summary=count", Some(&alice)).await;
    assert_eq!(own.body["total"], 0, "{}", own.body);
    app.finish().await;
}
