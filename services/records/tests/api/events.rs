use custodian_events::{AccessAction, AccessOutcome};
use serde_json::Value;

use crate::helpers::{condition, permit, spawn_app_with, weight};

fn assert_schema_shape(event: &Value) {
    let schema: Value = serde_json::from_str(include_str!(
        "../../../../shared/events/access-event.schema.json"
    ))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{event} breaks the access-event schema: {errors:?}"
    );
    let obj = event.as_object().unwrap();
    for required in schema["required"].as_array().unwrap() {
        assert!(
            obj.contains_key(required.as_str().unwrap()),
            "missing {required} in {event}"
        );
    }
    for key in obj.keys() {
        assert!(schema["properties"].get(key).is_some(), "unexpected {key}");
    }
    for key in ["ip", "user_agent"] {
        assert!(event["source"].get(key).is_some());
    }
    assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).is_ok());
}

#[actix_web::test]
async fn permits_and_denials_reach_the_access_stream() {
    let app = spawn_app_with(vec![permit(
        "Consent/c1",
        "Patient/alice",
        "Organization/h1",
        1,
    )])
    .await;
    let (h1_claims, h1) = app.practitioner("Organization/h1");
    let (h2_claims, h2) = app.practitioner("Organization/h2");
    let created = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "60"),
            &[],
        )
        .await;
    let path = format!(
        "/fhir/Observation/{}",
        created.json()["id"].as_str().unwrap()
    );
    assert_eq!(
        app.client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&h1)
            .insert_header(("X-Forwarded-For", "203.0.113.7, 10.0.0.1"))
            .insert_header(("User-Agent", "test-agent/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.get(&path, &h2, &[]).await.status, 403);

    let create = app
        .wait_for_events(1, |e| e.action == AccessAction::Create)
        .await;
    assert_eq!(create[0].actor.id, h1_claims.sub);
    assert_eq!(create[0].outcome, AccessOutcome::Permit);
    assert_eq!(create[0].count, 1);
    let read = app
        .wait_for_events(1, |e| {
            e.action == AccessAction::Read && e.outcome == AccessOutcome::Permit
        })
        .await;
    let read = &read[0];
    assert_eq!(read.actor.role, "practitioner");
    assert_eq!(read.actor.organization.as_deref(), Some("Organization/h1"));
    assert_eq!(read.patient.as_deref(), Some("Patient/alice"));
    assert_eq!(read.resource_type.as_deref(), Some("Observation"));
    assert_eq!(read.count, 1);
    assert_eq!(read.purpose, "TREAT");
    assert!(!read.break_glass);
    assert_eq!(read.source.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(read.source.user_agent.as_deref(), Some("test-agent/1"));
    let denied = app
        .wait_for_events(1, |e| e.outcome == AccessOutcome::Deny)
        .await;
    assert_eq!(denied[0].actor.id, h2_claims.sub);
    assert_eq!(denied[0].patient.as_deref(), Some("Patient/alice"));
    assert_eq!(denied[0].action, AccessAction::Read);
    assert_eq!(denied[0].count, 0);
    assert!(denied[0].source.ip.is_some());
    for raw in app.access_events_raw().await {
        assert_schema_shape(&raw);
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn break_glass_is_flagged() {
    let app = spawn_app_with(vec![]).await;
    let (claims, token) = app.practitioner("Organization/h2");
    let created = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &token,
            &weight("Patient/dave", "60"),
            &[],
        )
        .await;
    let path = format!(
        "/fhir/Observation/{}",
        created.json()["id"].as_str().unwrap()
    );
    assert_eq!(
        app.get(&path, &token, &[("X-Break-Glass", "cardiac arrest")])
            .await
            .status,
        200
    );
    let events = app
        .wait_for_events(1, |e| {
            e.action == AccessAction::Read && e.actor.id == claims.sub
        })
        .await;
    assert!(events[0].break_glass);
    assert_eq!(events[0].purpose, "ETREAT");
    assert_eq!(events[0].outcome, AccessOutcome::Permit);
    assert_eq!(events[0].patient.as_deref(), Some("Patient/dave"));
    app.cleanup().await;
}

#[actix_web::test]
async fn searches_yield_one_event_per_patient() {
    let app = spawn_app_with(vec![
        permit("Consent/a", "Patient/alice", "Organization/h1", 1),
        permit("Consent/b", "Patient/bob", "Organization/h1", 1),
    ])
    .await;
    let (claims, h1) = app.practitioner("Organization/h1");
    for p in [
        "Patient/alice",
        "Patient/alice",
        "Patient/bob",
        "Patient/carol",
    ] {
        app.post("/fhir/Condition", &h1, &condition(p, "44054006"))
            .await;
    }
    let bundle = app
        .get("/fhir/Condition?code=44054006", &h1, &[])
        .await
        .json();
    assert_eq!(bundle["total"], 3);
    let events = app
        .wait_for_events(3, |e| {
            e.action == AccessAction::Search && e.actor.id == claims.sub
        })
        .await;
    let alice = events
        .iter()
        .find(|e| e.patient.as_deref() == Some("Patient/alice"))
        .unwrap();
    assert_eq!((alice.count, alice.outcome), (2, AccessOutcome::Permit));
    let bob = events
        .iter()
        .find(|e| e.patient.as_deref() == Some("Patient/bob"))
        .unwrap();
    assert_eq!((bob.count, bob.outcome), (1, AccessOutcome::Permit));
    let carol = events
        .iter()
        .find(|e| e.patient.as_deref() == Some("Patient/carol"))
        .unwrap();
    assert_eq!((carol.count, carol.outcome), (0, AccessOutcome::Deny));
    assert_eq!(events.len(), 3);

    // A search that finds nothing: one event, patient null.
    let empty = app
        .get("/fhir/Condition?code=nothing", &h1, &[])
        .await
        .json();
    assert_eq!(empty["total"], 0);
    let none = app
        .wait_for_events(1, |e| {
            e.action == AccessAction::Search && e.patient.is_none()
        })
        .await;
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].count, 0);
    app.cleanup().await;
}
