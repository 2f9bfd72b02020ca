//! The internal snapshot, health, metrics, unknown paths.

use actix_web::http::StatusCode;
use custodian_auth::Role;
use custodian_policy::ConsentChange;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn internal_consents_lists_every_consent_with_its_current_typed_form() {
    let app = spawn_app().await;
    // Only with the service credential (the app's INTERNAL_TOKEN_FILE, same working directory).
    assert_eq!(
        app.get("/internal/consents", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let wrong = custodian_auth::InternalToken::generate();
    assert_eq!(
        app.get("/internal/consents", Some(wrong.expose()))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let credential = custodian_auth::InternalToken::shared().expect("internal token");
    let internal = Some(credential.expose());
    let empty = app.get("/internal/consents", internal).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body, serde_json::json!([]));

    let alice = app.patient_token("Patient/alice");
    let active = app.create_alice_consent().await;
    let revoked = app.create_alice_consent().await;
    let mut inactive = revoked.clone();
    inactive["status"] = "inactive".into();
    let id = revoked["id"].as_str().unwrap();
    assert_eq!(
        app.put_consent(&alice, id, &inactive, None).await.status,
        StatusCode::OK
    );

    let listed = app.get("/internal/consents", internal).await;
    let changes: Vec<ConsentChange> = serde_json::from_value(listed.body).expect("ConsentChanges");
    assert_eq!(changes.len(), 2);
    let active_change = changes
        .iter()
        .find(|c| c.consent == format!("Consent/{}", active["id"].as_str().unwrap()))
        .unwrap();
    assert_eq!(active_change.version, 1);
    assert_eq!(active_change.patient, "Patient/alice");
    let policy = active_change
        .consent_policy
        .as_ref()
        .expect("the typed consent");
    assert_eq!(policy.patient(), "Patient/alice");
    assert_eq!(policy.reference(), Some(active_change.consent.as_str()));
    let revoked_change = changes
        .iter()
        .find(|c| c.consent == format!("Consent/{id}"))
        .unwrap();
    assert_eq!(revoked_change.version, 2);
    assert!(revoked_change.consent_policy.is_none());
    // The snapshot agrees with the last change on the stream.
    let streamed = app.consent_changes(3).await;
    assert_eq!(streamed.last(), Some(revoked_change));
    app.finish().await;
}

#[actix_web::test]
async fn health_metrics_and_unknown_paths() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["checks"]["postgres"], "ok");
    assert_eq!(ready.body["checks"]["redis"], "ok");

    app.create_alice_consent().await;
    let metrics = app.get("/metrics", None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("consents_written_total{operation=\"create\",service=\"consent\"} 1"),
        "{text}"
    );
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("outbox_backlog"), "{text}");

    let unknown = app
        .get("/fhir/Patient/alice", Some(&app.token(Role::Admin)))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    unknown.outcome();
    app.finish().await;
}
