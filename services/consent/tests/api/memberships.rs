//! `POST /consent/decide` with consents naming CareTeams, Groups and PractitionerRoles: the
//! asker's actors are expanded with records' memberships (snapshot, then the signed
//! relationships stream), and a container whose members are unknown fails closed.

use std::time::Duration;

use actix_web::http::StatusCode;
use custodian_events::{Member, MembershipChange, RelationshipEvent};
use serde_json::json;

use crate::helpers::{
    alice_consent, permitting, spawn_app_with_memberships, spawn_app_without_records, TestApp,
};

fn change(container: &str, version: i64, known: bool, members: Vec<Member>) -> MembershipChange {
    MembershipChange {
        container: container.into(),
        version,
        known,
        members,
    }
}

fn member(reference: &str, organization: Option<&str>) -> Member {
    Member {
        member: reference.into(),
        start: None,
        end: None,
        organization: organization.map(str::to_string),
    }
}

async fn decide(app: &TestApp, patient: &str, actors: &[&str]) -> String {
    let service = app.service_token(Some("Organization/records"));
    let answer = app
        .decide(
            &service,
            &json!({"patient": patient, "actors": actors, "purpose": "TREAT", "resource_type": "Observation"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["decision"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn decisions_follow_the_memberships_records_publishes() {
    // Records' snapshot: Practitioner/p1 holds PractitionerRole/r1 at Hospital2; Group/g1 is
    // descriptive (actual = false): its members are unknown.
    let app = spawn_app_with_memberships(vec![
        change(
            "PractitionerRole/r1",
            1,
            true,
            vec![member("Practitioner/p1", Some("Organization/h2"))],
        ),
        change("Group/g1", 1, false, vec![]),
    ])
    .await;
    let alice = app.patient_token("Patient/alice");
    let created = app
        .post_consent(&alice, &permitting("Patient/alice", "CareTeam/ct1"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let p1_at_h2 = ["Organization/h2", "Practitioner/p1"];

    // CareTeam/ct1 was never seen: the permit admits no one.
    assert_eq!(
        decide(&app, "Patient/alice", &p1_at_h2).await,
        "undetermined"
    );

    // Records writes the team (its relay publishes the change, signed).
    app.publish_relationship(&RelationshipEvent::Membership(change(
        "CareTeam/ct1",
        1,
        true,
        vec![member("PractitionerRole/r1", None)],
    )))
    .await;
    let mut decided = String::new();
    for _ in 0..100 {
        decided = decide(&app, "Patient/alice", &p1_at_h2).await;
        if decided == "permit" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(decided, "permit", "a member through his role");
    // The same practitioner acting for another organisation does not hold the role.
    assert_eq!(
        decide(
            &app,
            "Patient/alice",
            &["Organization/h3", "Practitioner/p1"]
        )
        .await,
        "not-applicable"
    );
    assert_eq!(
        decide(
            &app,
            "Patient/alice",
            &["Organization/h2", "Practitioner/p2"]
        )
        .await,
        "not-applicable"
    );

    // A deny naming a group whose members are unknown fails closed for everyone.
    let bob = app.patient_token("Patient/bob");
    let mut deny = permitting("Patient/bob", "Group/g1");
    deny["provision"]["type"] = json!("deny");
    let created = app.post_consent(&bob, &deny).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(decide(&app, "Patient/bob", &p1_at_h2).await, "undetermined");
    app.finish().await;
}

#[actix_web::test]
async fn no_decision_before_the_memberships_are_loaded() {
    let app = spawn_app_without_records().await;
    let service = app.service_token(Some("Organization/records"));
    let question = json!({"patient": "Patient/alice", "actors": ["Organization/h1"],
                          "purpose": "TREAT", "resource_type": "Observation"});
    // Consents are still recorded; decisions wait for records' snapshot.
    let created = app
        .post_consent(&app.patient_token("Patient/alice"), &alice_consent())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let answer = app.decide(&service, &question).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    // Consent itself is ready (records waits for it, so it must not wait for records).
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
    app.finish().await;
}

/// A consent naming a care team is its members' to see (read and search), only the part that
/// names the team, and not their colleagues'.
#[actix_web::test]
async fn the_members_of_a_named_team_see_the_consent() {
    let app = spawn_app_with_memberships(vec![change(
        "CareTeam/ct1",
        1,
        true,
        vec![member("Practitioner/p1", None)],
    )])
    .await;
    let alice = app.patient_token("Patient/alice");
    let created = app
        .post_consent(&alice, &permitting("Patient/alice", "CareTeam/ct1"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();

    let token_for = |practitioner: &str| {
        let mut claims = app.issuer.claims(custodian_auth::Role::Practitioner);
        claims.organization = Some("Organization/h2".into());
        claims.practitioner = Some(practitioner.into());
        app.issuer.token(&claims)
    };
    let member = token_for("Practitioner/p1");
    let read = app.get_consent(&member, &id).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert!(read.body.to_string().contains("CareTeam/ct1"));
    let listed = app.get("/fhir/Consent?patient=alice", Some(&member)).await;
    assert_eq!(listed.body["total"], 1, "{}", listed.body);

    let colleague = token_for("Practitioner/p2");
    assert_eq!(
        app.get_consent(&colleague, &id).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = app
        .get("/fhir/Consent?patient=alice", Some(&colleague))
        .await;
    assert_eq!(listed.body["total"], 0, "{}", listed.body);
    app.finish().await;
}
