//! Consents naming CareTeams, Groups and PractitionerRoles reach exactly their members, as
//! records reads them from the CareTeams, Groups and PractitionerRoles it holds.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{deny, patient_resource, permit, register, spawn_app, weight, TestApp};

/// Hospital1 registers Alice and writes an Observation for her; its path.
async fn alice_at_h1(app: &TestApp, h1: &str) -> String {
    register(app, h1, "alice").await;
    let obs = app
        .send_json(
            "POST",
            "/fhir/Observation",
            h1,
            &weight("Patient/alice", "60.5"),
            &[],
        )
        .await;
    assert_eq!(obs.status, 201, "{}", obs.text());
    format!("/fhir/Observation/{}", obs.json()["id"].as_str().unwrap())
}

/// A CareTeam of Hospital1 (outside any compartment a team needs a managing organisation, and
/// only its staff change it).
fn care_team(id: &str, members: &[&str]) -> Value {
    care_team_of("Organization/h1", id, members)
}

fn care_team_of(organization: &str, id: &str, members: &[&str]) -> Value {
    json!({
        "resourceType": "CareTeam", "id": id, "status": "active",
        "managingOrganization": [{"reference": organization}],
        "participant": members.iter().map(|m| json!({"member": {"reference": m}})).collect::<Vec<_>>()
    })
}

async fn put(app: &TestApp, token: &str, resource: &Value) {
    let path = format!(
        "/fhir/{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let r = app.put(&path, token, resource, &[]).await;
    assert!(r.status == 200 || r.status == 201, "{path}: {}", r.text());
}

/// Waits (up to 5 s) until `token` reads `path` with `status`.
async fn until_read(app: &TestApp, path: &str, token: &str, status: u16) {
    let started = Instant::now();
    loop {
        let r = app.get(path, token, &[]).await;
        if r.status == status {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} still answers {} (expected {status})",
            r.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn total(app_answer: &crate::helpers::TestResponse) -> u64 {
    app_answer.json()["total"].as_u64().unwrap()
}

#[actix_web::test]
async fn a_deny_naming_a_care_team_blocks_its_members_until_they_leave() {
    let app = spawn_app().await;
    let (claims, h1) = app.practitioner("Organization/h1");
    let me = claims.practitioner.unwrap();
    let (_, colleague) = app.practitioner("Organization/h1");
    let path = alice_at_h1(&app, &h1).await;
    let version = format!("{path}/_history/1");
    put(&app, &h1, &care_team("ct1", &[&me])).await;
    app.publish_consent(&deny(
        "Consent/c1",
        "Patient/alice",
        Some("CareTeam/ct1"),
        1,
    ))
    .await;
    until_read(&app, &path, &h1, 404).await;
    assert_eq!(app.get(&version, &h1, &[]).await.status, 404, "vread");
    let search = app.get("/fhir/Observation", &h1, &[]).await;
    assert_eq!(search.status, 200, "{}", search.text());
    assert_eq!(total(&search), 0, "{}", search.text());
    let named = app
        .get("/fhir/Observation?patient=Patient/alice", &h1, &[])
        .await;
    assert_eq!(total(&named), 0, "{}", named.text());
    // Her deny names the team, not the hospital: a colleague outside it treats her.
    assert_eq!(app.get(&path, &colleague, &[]).await.status, 200);
    assert_eq!(
        total(&app.get("/fhir/Observation", &colleague, &[]).await),
        1
    );

    // He leaves the team: the writer's own replica follows the commit at once.
    put(&app, &h1, &care_team("ct1", &[])).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 200);
    assert_eq!(app.get(&version, &h1, &[]).await.status, 200);
    assert_eq!(total(&app.get("/fhir/Observation", &h1, &[]).await), 1);
    // Back in the team; then the team is deleted (a deleted team has no members).
    put(&app, &h1, &care_team("ct1", &[&me])).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 404);
    assert_eq!(app.delete("/fhir/CareTeam/ct1", &h1, &[]).await.status, 200);
    assert_eq!(app.get(&path, &h1, &[]).await.status, 200);
}

#[actix_web::test]
async fn a_permit_naming_a_hospital2_team_or_role_admits_its_members_only() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (doctor, h2) = app.practitioner("Organization/h2");
    let doctor = doctor.practitioner.unwrap();
    let (_, colleague) = app.practitioner("Organization/h2");
    let path = alice_at_h1(&app, &h1).await;
    put(
        &app,
        &h2,
        &json!({"resourceType": "PractitionerRole", "id": "r2", "active": true,
                "practitioner": {"reference": doctor}, "organization": {"reference": "Organization/h2"}}),
    )
    .await;
    put(
        &app,
        &h2,
        &care_team_of("Organization/h2", "h2team", &["PractitionerRole/r2"]),
    )
    .await;

    app.publish_consent(&permit(
        "Consent/c1",
        "Patient/alice",
        "PractitionerRole/r2",
        1,
    ))
    .await;
    until_read(&app, &path, &h2, 200).await;
    assert_eq!(app.get(&path, &colleague, &[]).await.status, 404);
    assert_eq!(total(&app.get("/fhir/Observation", &h2, &[]).await), 1);
    assert_eq!(
        total(&app.get("/fhir/Observation", &colleague, &[]).await),
        0
    );

    // The team instead of the role: a member through his role.
    app.publish_consent(&permit("Consent/c1", "Patient/alice", "CareTeam/h2team", 2))
        .await;
    until_read(&app, &path, &colleague, 404).await;
    assert_eq!(app.get(&path, &h2, &[]).await.status, 200);
    // The same doctor acting for another organisation holds no role at Hospital2.
    let mut elsewhere = app.issuer.claims(custodian_auth::Role::Practitioner);
    elsewhere.organization = Some("Organization/h3".into());
    elsewhere.practitioner = Some(doctor.clone());
    let elsewhere = app.issuer.token(&elsewhere);
    assert_eq!(app.get(&path, &elsewhere, &[]).await.status, 404);

    // Only Hospital2's staff change who holds its role or is in its team: an outsider can
    // neither join nor write a role of Hospital2's for himself.
    let (outsider, h3) = app.practitioner("Organization/h3");
    let outsider = outsider.practitioner.unwrap();
    let joined = json!({"resourceType": "PractitionerRole", "id": "r2", "active": true,
        "practitioner": {"reference": outsider}, "organization": {"reference": "Organization/h2"}});
    let r = app
        .put("/fhir/PractitionerRole/r2", &h3, &joined, &[])
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let mut own_role = joined.clone();
    own_role["id"] = json!("r3");
    let r = app
        .put("/fhir/PractitionerRole/r3", &h3, &own_role, &[])
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let mut moved = joined;
    moved["organization"] = json!({"reference": "Organization/h3"});
    let r = app.put("/fhir/PractitionerRole/r2", &h3, &moved, &[]).await;
    assert_eq!(r.status, 403, "the role is Hospital2's: {}", r.text());
    assert_eq!(
        app.delete("/fhir/PractitionerRole/r2", &h3, &[])
            .await
            .status,
        403
    );
    let managed = care_team_of("Organization/h2", "h2team", &["PractitionerRole/r2"]);
    put(&app, &h2, &managed).await;
    let mut with_outsider = managed.clone();
    with_outsider["participant"] = json!([{"member": {"reference": outsider}}]);
    let r = app
        .put("/fhir/CareTeam/h2team", &h3, &with_outsider, &[])
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // A team naming no manager is no one's to join (nor to create before a consent names it):
    // an administrator's only.
    let mut unmanaged = with_outsider.clone();
    unmanaged["id"] = json!("loose");
    unmanaged
        .as_object_mut()
        .unwrap()
        .remove("managingOrganization");
    let r = app.put("/fhir/CareTeam/loose", &h3, &unmanaged, &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let admin = app.token_for(custodian_auth::Role::Admin);
    let r = app
        .put("/fhir/CareTeam/loose", &admin, &unmanaged, &[])
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = app.put("/fhir/CareTeam/loose", &h3, &unmanaged, &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(app.get(&path, &h3, &[]).await.status, 404);

    // A permit naming a team records has never seen admits no one, and leaves the custodian
    // its rule.
    app.publish_consent(&permit(
        "Consent/c1",
        "Patient/alice",
        "CareTeam/unknown",
        3,
    ))
    .await;
    until_read(&app, &path, &h2, 404).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 200);
}

#[actix_web::test]
async fn a_deny_naming_a_descriptive_group_fails_closed_and_teams_nest() {
    let app = spawn_app().await;
    let (claims, h1) = app.practitioner("Organization/h1");
    let me = claims.practitioner.unwrap();
    let path = alice_at_h1(&app, &h1).await;
    // A Group with actual = false describes members; it does not list them.
    put(
        &app,
        &h1,
        &json!({"resourceType": "Group", "id": "g1", "type": "practitioner", "actual": false,
                "managingEntity": {"reference": "Organization/h1"}}),
    )
    .await;
    app.publish_consent(&deny("Consent/c1", "Patient/alice", Some("Group/g1"), 1))
        .await;
    until_read(&app, &path, &h1, 404).await;
    assert_eq!(total(&app.get("/fhir/Observation", &h1, &[]).await), 0);
    // Listing its members (actual = true) without him: she is his patient again.
    put(
        &app,
        &h1,
        &json!({"resourceType": "Group", "id": "g1", "type": "practitioner", "actual": true,
                "managingEntity": {"reference": "Organization/h1"},
                "member": [{"entity": {"reference": "Practitioner/someone-else"}}]}),
    )
    .await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 200);

    // Nested teams, written in one transaction Bundle: outer holds inner holds him.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": care_team("inner", &[&me]), "request": {"method": "PUT", "url": "CareTeam/inner"}},
        {"resource": care_team("outer", &["CareTeam/inner"]), "request": {"method": "PUT", "url": "CareTeam/outer"}}
    ]});
    let r = app.post("/fhir", &h1, &bundle).await;
    assert_eq!(r.status, 200, "{}", r.text());
    app.publish_consent(&deny(
        "Consent/c1",
        "Patient/alice",
        Some("CareTeam/outer"),
        2,
    ))
    .await;
    until_read(&app, &path, &h1, 404).await;
    // A team nested in itself is harmless.
    put(&app, &h1, &care_team("inner", &[&me, "CareTeam/outer"])).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 404);
    put(&app, &h1, &care_team("inner", &["CareTeam/outer"])).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 200);
}

#[actix_web::test]
async fn memberships_and_care_facts_go_out_signed_and_the_snapshot_needs_the_credential() {
    let app = spawn_app().await;
    let (claims, h1) = app.practitioner("Organization/h1");
    let me = claims.practitioner.unwrap();
    register(&app, &h1, "alice").await;
    // Bob is a member of staff: his record says so.
    let mut bob = patient_resource("bob", "Doe", "bob");
    bob["meta"] = json!({"security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMP"}]});
    let r = app.put("/fhir/Patient/bob", &h1, &bob, &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    put(&app, &h1, &care_team("ct1", &[&me])).await;
    let encounter = json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/alice"},
        "participant": [{"individual": {"reference": me}}],
        "serviceProvider": {"reference": "Organization/h1"}});
    let r = app.post("/fhir/Encounter", &h1, &encounter).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let encounter = format!("Encounter/{}", r.json()["id"].as_str().unwrap());

    let stream = format!("{}:relationships", app.prefix);
    let mut events: Vec<(Value, Option<String>)> = Vec::new();
    for _ in 0..100 {
        let mut redis = app.redis.clone();
        let reply: redis::streams::StreamRangeReply =
            redis::AsyncCommands::xrange_all(&mut redis, &stream)
                .await
                .unwrap();
        events = reply
            .ids
            .iter()
            .map(|e| {
                (
                    serde_json::from_str(&e.get::<String>("event").unwrap()).unwrap(),
                    e.get::<String>("producer"),
                )
            })
            .collect();
        if events
            .iter()
            .any(|(e, _)| e["source"] == encounter.as_str())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(events
        .iter()
        .all(|(_, producer)| producer.as_deref() == Some("records")));
    let membership = events
        .iter()
        .find(|(e, _)| e["kind"] == "membership")
        .unwrap();
    assert_eq!(membership.0["container"], "CareTeam/ct1");
    assert_eq!(membership.0["members"][0]["member"], me.as_str());
    let care = events
        .iter()
        .find(|(e, _)| e["kind"] == "care" && e["source"] == encounter.as_str())
        .unwrap();
    let actors: Vec<&str> = care.0["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, vec![me.as_str(), "Organization/h1"]);
    assert_eq!(care.0["facts"][0]["patient"], "Patient/alice");
    // Each Patient's labels, for the anomaly detector.
    let labels = |patient: &str| {
        events
            .iter()
            .find(|(e, _)| e["kind"] == "labels" && e["patient"] == patient)
            .map(|(e, _)| e["labels"].clone())
    };
    assert_eq!(labels("Patient/bob"), Some(json!(["EMP"])));
    assert_eq!(labels("Patient/alice"), Some(json!([])));

    // The consent service's snapshot: only with the service credential.
    assert_eq!(app.get_public("/internal/memberships").await.status, 401);
    let token = custodian_auth::InternalToken::shared().unwrap();
    let snapshot = app.get("/internal/memberships", token.expose(), &[]).await;
    assert_eq!(snapshot.status, 200, "{}", snapshot.text());
    assert_eq!(snapshot.json()[0]["container"], "CareTeam/ct1");
}

#[actix_web::test]
async fn another_instances_membership_reaches_this_one_through_the_stream() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let path = alice_at_h1(&app, &h1).await;
    app.publish_consent(&deny(
        "Consent/c1",
        "Patient/alice",
        Some("CareTeam/elsewhere"),
        1,
    ))
    .await;
    // Unknown here: fails closed.
    until_read(&app, &path, &h1, 404).await;
    // Another records instance wrote the team (without him): signed by records.
    let mut redis = app.redis.clone();
    let stream = format!("{}:relationships", app.prefix);
    let event = json!({"kind": "membership", "container": "CareTeam/elsewhere", "version": 1,
                       "known": true, "members": [{"member": "Practitioner/not-me"}]});
    let fields = custodian_events::signing::test_fields(
        &stream,
        &uuid::Uuid::new_v4().to_string(),
        &event.to_string(),
    );
    let _: String = redis::AsyncCommands::xadd(&mut redis, &stream, "*", &fields)
        .await
        .unwrap();
    until_read(&app, &path, &h1, 200).await;
}
