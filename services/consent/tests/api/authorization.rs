//! Who may do what.

use actix_web::http::StatusCode;
use custodian_auth::Role;

use crate::helpers::{alice_consent, consent_for, spawn_app};

#[actix_web::test]
async fn another_patient_gets_403_for_everything_about_alices_consent() {
    let app = spawn_app().await;
    let bob = app.patient_token("Patient/bob");
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();

    let create = app.post_consent(&bob, &alice_consent()).await;
    assert_eq!(create.status, StatusCode::FORBIDDEN);
    create.outcome();
    assert_eq!(create.body["issue"][0]["code"], "forbidden");
    assert_eq!(
        app.get_consent(&bob, &id).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&format!("/fhir/Consent/{id}/_history/1"), Some(&bob))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let mut revoked = created.clone();
    revoked["status"] = "inactive".into();
    assert_eq!(
        app.put_consent(&bob, &id, &revoked, None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete_consent(&bob, &id).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/fhir/Consent?patient=Patient/alice", Some(&bob))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Searching without a patient finds only Bob's own (none).
    let own = app.get("/fhir/Consent", Some(&bob)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["total"], 0);

    // Alice's consent is untouched and only her creation was published.
    assert_eq!(
        app.get_consent(&app.patient_token("Patient/alice"), &id)
            .await
            .body["status"],
        "active"
    );
    assert_eq!(app.consent_changes(2).await.len(), 1);
    // Refusals are audited.
    let events = app.access_events(8).await;
    assert!(
        events
            .iter()
            .filter(|e| e.outcome == custodian_events::AccessOutcome::Deny)
            .count()
            >= 5
    );
    app.finish().await;
}

#[actix_web::test]
async fn practitioners_auditors_and_services_read_but_cannot_write() {
    let app = spawn_app().await;
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut revoked = created.clone();
    revoked["status"] = "inactive".into();

    for token in [
        app.practitioner_token("Organization/h1"),
        app.token(Role::Auditor),
        app.token(Role::Service),
    ] {
        assert_eq!(
            app.post_consent(&token, &alice_consent()).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.put_consent(&token, &id, &revoked, None).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.delete_consent(&token, &id).await.status,
            StatusCode::FORBIDDEN
        );
        let read = app.get_consent(&token, &id).await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.body["status"], "active");
        let search = app.get("/fhir/Consent?patient=alice", Some(&token)).await;
        assert_eq!(search.body["total"], 1);
    }
    assert_eq!(
        app.consent_changes(2).await.len(),
        1,
        "refused writes publish nothing"
    );
    app.finish().await;
}

#[actix_web::test]
async fn admin_records_consents_for_any_patient() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let created = app
        .post_consent(&admin, &consent_for("Patient/carol"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["patient"]["reference"], "Patient/carol");
    app.finish().await;
}

#[actix_web::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let no_token = app.get("/fhir/Consent", None).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    no_token.outcome();
    let forged = app.get("/fhir/Consent", Some("not.a.jwt")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}
