use custodian_events::{AccessAction, AccessOutcome};
use serde_json::Value;

use crate::helpers::{condition, permit, register, spawn_app_with, weight};

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
    let app = spawn_app_with(vec![]).await;
    let (h1_claims, h1) = app.practitioner("Organization/h1");
    let (h2_claims, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
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
    // Through a trusted proxy (loopback): the entry it appended is the client; what the client
    // wrote in front of it is not believed.
    assert_eq!(
        app.client
            .get(format!("{}{path}", app.address))
            .bearer_auth(&h1)
            .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.7"))
            .insert_header(("User-Agent", "test-agent/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.get(&path, &h2, &[]).await.status, 404);

    let create = app
        .wait_for_events(2, |e| e.action == AccessAction::Create)
        .await;
    assert!(create.iter().all(|e| e.actor.id == h1_claims.sub
        && e.outcome == AccessOutcome::Permit
        && e.count == 1
        && e.decision.as_ref().map(|d| d.basis.as_str()) == Some("custodian")));
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
    assert_eq!(
        denied[0].decision.as_ref().map(|d| d.basis.as_str()),
        Some("no-permit"),
        "the ledger carries the reason the caller was not told"
    );
    assert!(denied[0].source.ip.is_some());
    for raw in app.access_events_raw().await {
        assert_schema_shape(&raw);
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn break_glass_is_flagged_with_its_reason() {
    let app = spawn_app_with(vec![]).await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (claims, token) = app.practitioner("Organization/h2");
    register(&app, &h1, "dave").await;
    let created = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
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
    let decision = events[0].decision.clone().unwrap();
    assert_eq!(decision.basis, "break-glass");
    assert_eq!(
        decision.break_glass_reason.as_deref(),
        Some("cardiac arrest")
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn searches_yield_one_event_per_patient_returned() {
    // Bob's record is at Hospital2; his consent admits Hospital1. Carol's is at Hospital2 only.
    let app = spawn_app_with(vec![permit(
        "Consent/b",
        "Patient/bob",
        "Organization/h1",
        1,
    )])
    .await;
    let (claims, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    register(&app, &h2, "bob").await;
    register(&app, &h2, "carol").await;
    for (p, token) in [
        ("Patient/alice", &h1),
        ("Patient/alice", &h1),
        ("Patient/bob", &h2),
        ("Patient/carol", &h2),
    ] {
        let r = app
            .post("/fhir/Condition", token, &condition(p, "44054006"))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let bundle = app
        .get("/fhir/Condition?code=44054006", &h1, &[])
        .await
        .json();
    assert_eq!(bundle["total"], 3, "{bundle}");
    let events = app
        .wait_for_events(2, |e| {
            e.action == AccessAction::Search && e.actor.id == claims.sub
        })
        .await;
    let alice = events
        .iter()
        .find(|e| e.patient.as_deref() == Some("Patient/alice"))
        .unwrap();
    assert_eq!((alice.count, alice.outcome), (2, AccessOutcome::Permit));
    assert_eq!(alice.decision.as_ref().unwrap().basis, "custodian");
    let bob = events
        .iter()
        .find(|e| e.patient.as_deref() == Some("Patient/bob"))
        .unwrap();
    assert_eq!((bob.count, bob.outcome), (1, AccessOutcome::Permit));
    assert_eq!(bob.decision.as_ref().unwrap().consents, vec!["Consent/b"]);
    assert!(
        events
            .iter()
            .all(|e| e.patient.as_deref() != Some("Patient/carol")),
        "Carol's record was never touched: no event names her"
    );
    assert_eq!(events.len(), 2);

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
