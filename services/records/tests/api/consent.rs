//! The custodian rule, consents, break-glass and readiness, against the real service.

use std::time::{Duration, Instant};

use crate::helpers::{deny, patient_resource, permit, revoke, spawn_app, weight, TestApp};

/// Hospital1 registers Alice (so holds her record) and writes an Observation for her.
async fn alice_at_h1(app: &TestApp, h1: &str) -> String {
    let created = app
        .put(
            "/fhir/Patient/alice",
            h1,
            &patient_resource("alice", "Smith", "Alice"),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        created.json()["managingOrganization"]["reference"],
        "Organization/h1",
        "the writer's organisation becomes the custodian"
    );
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

#[actix_web::test]
async fn the_custodian_treats_others_need_a_permit_and_revocation_shuts_them_out() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let path = alice_at_h1(&app, &h1).await;

    // The custodian reads for treatment without a permit; for marketing it needs one.
    assert_eq!(app.get(&path, &h1, &[]).await.status, 200);
    assert_eq!(
        app.get(&path, &h1, &[("X-Purpose-Of-Use", "HMARKT")])
            .await
            .status,
        404
    );
    // Another hospital learns nothing more than for an id that does not exist.
    let hidden = app.get(&path, &h2, &[]).await;
    let absent = app.get("/fhir/Observation/does-not-exist", &h2, &[]).await;
    assert_eq!(hidden.status, 404);
    assert_eq!(absent.status, 404);
    assert_eq!(
        hidden.json()["issue"][0]["code"],
        absent.json()["issue"][0]["code"]
    );
    // Nor can it write into her record.
    let foreign = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h2,
            &weight("Patient/alice", "99"),
            &[],
        )
        .await;
    assert_eq!(foreign.status, 403, "{}", foreign.text());

    // Her permit admits Hospital2 within moments.
    app.publish_consent(&permit("Consent/c1", "Patient/alice", "Organization/h2", 1))
        .await;
    let started = Instant::now();
    loop {
        let r = app.get(&path, &h2, &[]).await;
        if r.status == 200 {
            assert_eq!(r.json()["subject"]["reference"], "Patient/alice");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "consent never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // For the purpose she named only.
    assert_eq!(
        app.get(&path, &h2, &[("X-Purpose-Of-Use", "HMARKT")])
            .await
            .status,
        404
    );

    // Revocation: in force within a second.
    app.publish_consent(&revoke("Consent/c1", "Patient/alice", 2))
        .await;
    let started = Instant::now();
    loop {
        if app.get(&path, &h2, &[]).await.status == 404 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "revocation not applied within 1s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A stale change does not bring it back.
    app.publish_consent(&permit("Consent/c1", "Patient/alice", "Organization/h2", 1))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get(&path, &h2, &[]).await.status, 404);
    // Updates and deletes by someone who may not see it: the same 404.
    let mut body = app.get(&path, &h1, &[]).await.json();
    body["status"] = "amended".into();
    assert_eq!(app.put(&path, &h2, &body, &[]).await.status, 404);
    assert_eq!(app.delete(&path, &h2, &[]).await.status, 404);
    // The custodian still may.
    assert_eq!(app.put(&path, &h1, &body, &[]).await.status, 200);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_patient_can_deny_her_own_custodian() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let path = alice_at_h1(&app, &h1).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 200);
    app.publish_consent(&deny("Consent/no", "Patient/alice", None, 1))
        .await;
    let started = Instant::now();
    while app.get(&path, &h1, &[]).await.status != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "deny never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Searches leave her out, counts included.
    let found = app.get("/fhir/Observation", &h1, &[]).await.json();
    assert_eq!(found["total"], 0, "{found}");
    // And writes into her record are refused too.
    let more = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "61"),
            &[],
        )
        .await;
    assert_eq!(more.status, 403);
    app.cleanup().await;
}

#[actix_web::test]
async fn patients_read_their_own_record_only() {
    let app = spawn_app().await;
    let (_, practitioner) = app.practitioner("Organization/h1");
    for (id, family, given) in [("alice", "Smith", "Alice"), ("bob", "Jones", "Bob")] {
        assert_eq!(
            app.put(
                &format!("/fhir/Patient/{id}"),
                &practitioner,
                &patient_resource(id, family, given),
                &[]
            )
            .await
            .status,
            201
        );
    }
    let obs = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &practitioner,
            &weight("Patient/bob", "80"),
            &[],
        )
        .await;
    let bob_obs = obs.json()["id"].as_str().unwrap().to_string();

    let (_, alice) = app.patient("Patient/alice");
    assert_eq!(
        app.get("/fhir/Patient/alice", &alice, &[]).await.status,
        200
    );
    assert_eq!(app.get("/fhir/Patient/bob", &alice, &[]).await.status, 404);
    assert_eq!(
        app.get(&format!("/fhir/Observation/{bob_obs}"), &alice, &[])
            .await
            .status,
        404
    );
    let (_, bob) = app.patient("Patient/bob");
    assert_eq!(
        app.get(&format!("/fhir/Observation/{bob_obs}"), &bob, &[])
            .await
            .status,
        200
    );
    // Patients write nothing here.
    let own = app.get("/fhir/Patient/alice", &alice, &[]).await.json();
    assert_eq!(
        app.put("/fhir/Patient/alice", &alice, &own, &[])
            .await
            .status,
        403
    );
    // Searches return only their own, whatever they ask for.
    let found = app.get("/fhir/Patient", &alice, &[]).await.json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], "alice");
    let other = app
        .get("/fhir/Observation?patient=bob", &alice, &[])
        .await
        .json();
    assert_eq!(other["total"], 0, "{other}");
    // Admins and auditors see no PHI.
    for role in [custodian_auth::Role::Admin, custodian_auth::Role::Auditor] {
        let t = app.token_for(role);
        assert_eq!(app.get("/fhir/Patient/alice", &t, &[]).await.status, 404);
    }
    let admin = app.token_for(custodian_auth::Role::Admin);
    assert_eq!(
        app.get("/fhir/Patient", &admin, &[]).await.json()["total"],
        0
    );
    // An auditor's token has no scope for Patient at all.
    let auditor = app.token_for(custodian_auth::Role::Auditor);
    assert_eq!(app.get("/fhir/Patient", &auditor, &[]).await.status, 403);
    app.cleanup().await;
}

#[actix_web::test]
async fn break_glass_is_for_a_practitioner_and_one_patient() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let path = alice_at_h1(&app, &h1).await;
    assert_eq!(app.get(&path, &h2, &[]).await.status, 404);
    assert_eq!(
        app.get(&path, &h2, &[("X-Break-Glass", "patient unconscious")])
            .await
            .status,
        200
    );
    // A reason is required.
    assert_eq!(
        app.get(&path, &h2, &[("X-Break-Glass", "  ")]).await.status,
        400
    );
    // One patient at a time: a search naming her, never a broad one.
    let named = app
        .get(
            "/fhir/Observation?patient=alice",
            &h2,
            &[("X-Break-Glass", "patient unconscious")],
        )
        .await;
    assert_eq!(named.status, 200);
    assert_eq!(named.json()["total"], 1);
    let broad = app
        .get(
            "/fhir/Observation?_count=500",
            &h2,
            &[("X-Break-Glass", "everyone")],
        )
        .await;
    assert_eq!(broad.status, 403, "{}", broad.text());
    // Not for services, nor for patients.
    let mut service = app.issuer.claims(custodian_auth::Role::Service);
    service.organization = Some("Organization/h2".into());
    let service = app.issuer.token(&service);
    assert_eq!(
        app.get(&path, &service, &[("X-Break-Glass", "batch")])
            .await
            .status,
        404
    );
    let (_, alice) = app.patient("Patient/alice");
    assert_eq!(
        app.get(&path, &alice, &[("X-Break-Glass", "me")])
            .await
            .status,
        404
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn not_ready_until_the_consent_snapshot_is_loaded() {
    let app = crate::helpers::spawn_app_without_consent().await;
    let readyz = app.get_public("/readyz").await;
    assert_eq!(readyz.status, 503);
    assert!(
        readyz.text().contains("consent_replica"),
        "{}",
        readyz.text()
    );
    let (_, h1) = app.practitioner("Organization/h1");
    // Deciding on consents that are not loaded would be guessing: 503, never 403 or 201.
    let created = app
        .put(
            "/fhir/Patient/alice",
            &h1,
            &patient_resource("alice", "Smith", "Alice"),
            &[],
        )
        .await;
    assert_eq!(created.status, 503, "{}", created.text());
    // Consent changes from the stream still apply; the snapshot is what is missing.
    app.publish_consent(&permit("Consent/c1", "Patient/alice", "Organization/h1", 1))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let search = app.get("/fhir/Observation", &h1, &[]).await;
    assert_eq!(search.status, 503);
    // Resources in no compartment do not depend on consents.
    let org = app
        .post(
            "/fhir/Organization",
            &h1,
            &serde_json::json!({"resourceType": "Organization", "name": "Ward 3"}),
        )
        .await;
    assert_eq!(org.status, 201, "{}", org.text());
    // Unsupported methods on a known route (PATCH is supported: see interactions.rs): 405,
    // answered as FHIR.
    for path in [
        "/fhir/Patient/alice",
        "/fhir/Patient",
        "/fhir/metadata",
        "/fhir",
    ] {
        let trace = app.request("TRACE", path, &h1, None, &[]).await;
        assert_eq!(trace.status, 405, "{path}");
        assert_eq!(trace.json()["resourceType"], "OperationOutcome", "{path}");
    }
    app.cleanup().await;
}
