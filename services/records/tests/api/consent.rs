use std::time::{Duration, Instant};

use crate::helpers::{patient_resource, permit, revoke, spawn_app, weight};

#[actix_web::test]
async fn consent_permits_one_organisation_and_revocation_takes_effect_within_a_second() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    // Creating (collecting) needs no consent.
    let created = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "60.5"),
            &[],
        )
        .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let path = format!("/fhir/Observation/{id}");

    // No consent yet: denied.
    assert_eq!(app.get(&path, &h1, &[]).await.status, 403);

    app.publish_consent(&permit("Consent/c1", "Patient/alice", "Organization/h1", 1))
        .await;
    let started = Instant::now();
    loop {
        let r = app.get(&path, &h1, &[]).await;
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
    let denied = app.get(&path, &h2, &[]).await;
    assert_eq!(denied.status, 403);
    let outcome = denied.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "forbidden");
    // Another purpose is not covered by the consent.
    assert_eq!(
        app.get(&path, &h1, &[("X-Purpose-Of-Use", "HMARKT")])
            .await
            .status,
        403
    );

    // Revocation: a newer change with no rules.
    app.publish_consent(&revoke("Consent/c1", "Patient/alice", 2))
        .await;
    let started = Instant::now();
    loop {
        if app.get(&path, &h1, &[]).await.status == 403 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "revocation not applied within 1s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A stale change does not bring it back.
    app.publish_consent(&permit("Consent/c1", "Patient/alice", "Organization/h1", 1))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 403);
    // Updates and deletes need consent too.
    let mut body = app
        .get(&path, &h1, &[("X-Break-Glass", "check")])
        .await
        .json();
    body["status"] = "amended".into();
    assert_eq!(app.put(&path, &h2, &body, &[]).await.status, 403);
    assert_eq!(app.delete(&path, &h2, &[]).await.status, 403);
    app.cleanup().await;
}

#[actix_web::test]
async fn patients_read_their_own_record_only() {
    let app = spawn_app().await;
    let (_, practitioner) = app.practitioner("Organization/h1");
    assert_eq!(
        app.put(
            "/fhir/Patient/alice",
            &practitioner,
            &patient_resource("alice", "Smith", "Alice"),
            &[]
        )
        .await
        .status,
        201
    );
    assert_eq!(
        app.put(
            "/fhir/Patient/bob",
            &practitioner,
            &patient_resource("bob", "Jones", "Bob"),
            &[]
        )
        .await
        .status,
        201
    );
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
    assert_eq!(app.get("/fhir/Patient/bob", &alice, &[]).await.status, 403);
    assert_eq!(
        app.get(&format!("/fhir/Observation/{bob_obs}"), &alice, &[])
            .await
            .status,
        403
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
    // Searches return only their own.
    let found = app.get("/fhir/Patient", &alice, &[]).await.json();
    assert_eq!(found["total"], 1);
    assert_eq!(found["entry"][0]["resource"]["id"], "alice");
    // Admins and auditors see no PHI.
    for role in [custodian_auth::Role::Admin, custodian_auth::Role::Auditor] {
        let t = app.token_for(role);
        assert_eq!(app.get("/fhir/Patient/alice", &t, &[]).await.status, 403);
        assert_eq!(app.get("/fhir/Patient", &t, &[]).await.json()["total"], 0);
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn break_glass_permits_practitioners_only() {
    let app = spawn_app().await;
    let (_, h2) = app.practitioner("Organization/h2");
    let created = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h2,
            &weight("Patient/carol", "70"),
            &[],
        )
        .await;
    let path = format!(
        "/fhir/Observation/{}",
        created.json()["id"].as_str().unwrap()
    );
    assert_eq!(app.get(&path, &h2, &[]).await.status, 403);
    assert_eq!(
        app.get(&path, &h2, &[("X-Break-Glass", "patient unconscious")])
            .await
            .status,
        200
    );
    let service = app.token_for(custodian_auth::Role::Service);
    assert_eq!(
        app.get(&path, &service, &[("X-Break-Glass", "batch")])
            .await
            .status,
        403
    );
    let (_, carol) = app.patient("Patient/carol");
    assert_eq!(
        app.get(&path, &carol, &[("X-Break-Glass", "me")])
            .await
            .status,
        403
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
    let created = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "1"),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "collecting needs no consent decision");
    let path = format!(
        "/fhir/Observation/{}",
        created.json()["id"].as_str().unwrap()
    );
    // Deciding on a replica that is not loaded would be guessing: 503, not 403.
    assert_eq!(app.get(&path, &h1, &[]).await.status, 503);
    // Consent changes from the stream still apply; the snapshot is what is missing.
    app.publish_consent(&permit("Consent/c1", "Patient/alice", "Organization/h1", 1))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get(&path, &h1, &[]).await.status, 503);
    // Unsupported methods on a known route.
    let patch = app
        .client
        .patch(format!("{}{path}", app.address))
        .bearer_auth(&h1)
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 405);
    app.cleanup().await;
}
