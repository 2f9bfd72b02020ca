//! Create, read, update (revoke), delete, history, and what each publishes.

use actix_web::http::StatusCode;
use custodian_events::AccessAction;
use custodian_policy::{ConsentAction, ProvisionType};

use custodian_auth::Role;

use crate::helpers::{alice_consent, consent_for, spawn_app, PUBLIC_URL};

#[actix_web::test]
async fn create_returns_201_and_the_stored_resource_reads_back_equal() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let submitted = alice_consent();

    let created = app.post_consent(&alice, &submitted).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("an id").to_string();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "the server assigns a uuid, got {id}"
    );
    assert_eq!(
        created.header("location").as_deref(),
        Some(format!("{PUBLIC_URL}/fhir/Consent/{id}/_history/1").as_str())
    );
    assert_eq!(created.header("etag").as_deref(), Some("W/\"1\""));
    assert!(created
        .header("last-modified")
        .is_some_and(|v| v.ends_with(" GMT")));
    assert!(created
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/fhir+json")));
    assert_eq!(created.body["meta"]["versionId"], "1");
    assert!(created.body["meta"]["lastUpdated"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    // The client's content is kept as sent, its meta tags included.
    assert_eq!(created.body["provision"], submitted["provision"]);
    assert_eq!(created.body["text"], submitted["text"]);
    assert_eq!(created.body["meta"]["tag"], submitted["meta"]["tag"]);

    let read = app.get_consent(&alice, &id).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, created.body);
    assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));
    let twin = app
        .get(&format!("/consent/Consent/{id}"), Some(&alice))
        .await;
    assert_eq!(twin.status, StatusCode::OK);
    assert_eq!(twin.body, created.body);
    let version = app
        .get(&format!("/fhir/Consent/{id}/_history/1"), Some(&alice))
        .await;
    assert_eq!(version.status, StatusCode::OK);
    assert_eq!(version.body, created.body);
    let missing_version = app
        .get(&format!("/fhir/Consent/{id}/_history/2"), Some(&alice))
        .await;
    assert_eq!(missing_version.status, StatusCode::NOT_FOUND);
    let missing = app
        .get_consent(&alice, &uuid::Uuid::new_v4().to_string())
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.outcome();
    app.finish().await;
}

#[actix_web::test]
async fn a_created_consent_publishes_its_typed_form_and_an_access_event() {
    let app = spawn_app().await;
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap();

    let changes = app.consent_changes(1).await;
    assert_eq!(changes.len(), 1);
    let change = &changes[0];
    assert_eq!(change.consent, format!("Consent/{id}"));
    assert_eq!(change.patient, "Patient/alice");
    assert_eq!(change.version, 1);
    let policy = change.consent_policy.as_ref().expect("the typed consent");
    assert_eq!(policy.reference(), Some(format!("Consent/{id}").as_str()));
    let root = policy.provision().expect("a root provision");
    assert_eq!(root.kind(), ProvisionType::Permit);
    assert_eq!(root.actors()[0].reference(), "Organization/h1");
    assert_eq!(root.purposes(), &["TREAT".to_string()]);
    assert_eq!(root.actions(), &[ConsentAction::Access]);
    let nested = &root.provisions()[0];
    assert_eq!(nested.kind(), ProvisionType::Deny);
    assert_eq!(nested.classes(), &["Observation".to_string()]);

    let events = app.access_events(1).await;
    assert!(
        events
            .iter()
            .any(|e| e.action == AccessAction::Create
                && e.patient.as_deref() == Some("Patient/alice"))
    );
    app.finish().await;
}

#[actix_web::test]
async fn revocation_by_update_and_by_delete_publishes_no_consent_with_higher_versions() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();

    let mut revoked = created.clone();
    revoked["status"] = "inactive".into();
    let updated = app
        .put_consent(&alice, &id, &revoked, Some("W/\"1\""))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.header("etag").as_deref(), Some("W/\"2\""));
    assert_eq!(updated.body["meta"]["versionId"], "2");
    assert_eq!(updated.body["status"], "inactive");

    let changes = app.consent_changes(2).await;
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[1].consent, format!("Consent/{id}"));
    assert_eq!(changes[1].version, 2);
    assert!(
        changes[1].consent_policy.is_none(),
        "an inactive consent puts nothing in force"
    );
    assert!(changes[0].consent_policy.is_some());

    // History keeps both versions.
    let v1 = app
        .get(&format!("/fhir/Consent/{id}/_history/1"), Some(&alice))
        .await;
    assert_eq!(v1.body["status"], "active");
    let v2 = app
        .get(&format!("/fhir/Consent/{id}/_history/2"), Some(&alice))
        .await;
    assert_eq!(v2.body["status"], "inactive");

    let deleted = app.delete_consent(&alice, &id).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.header("etag").as_deref(), Some("W/\"3\""));
    let changes = app.consent_changes(3).await;
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[2].version, 3);
    assert!(changes[2].consent_policy.is_none());

    let gone = app.get_consent(&alice, &id).await;
    assert_eq!(gone.status, StatusCode::GONE);
    gone.outcome();
    assert_eq!(
        app.get(&format!("/fhir/Consent/{id}/_history/3"), Some(&alice))
            .await
            .status,
        StatusCode::GONE
    );
    assert_eq!(
        app.get(&format!("/fhir/Consent/{id}/_history/1"), Some(&alice))
            .await
            .status,
        StatusCode::OK
    );
    let history = app
        .get(&format!("/fhir/Consent/{id}/_history"), Some(&alice))
        .await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body["type"], "history");
    assert_eq!(history.body["total"], 3);
    let methods: Vec<&str> = history.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, vec!["DELETE", "PUT", "POST"]);
    assert!(
        history.body["entry"][0].get("resource").is_none(),
        "a deletion carries no resource"
    );
    assert_eq!(history.body["entry"][1]["resource"]["status"], "inactive");
    assert_eq!(history.body["entry"][2]["response"]["etag"], "W/\"1\"");
    assert_eq!(
        app.get(
            &format!("/fhir/Consent/{id}/_history"),
            Some(&app.patient_token("Patient/bob"))
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // Deleting again changes nothing and publishes nothing.
    assert_eq!(
        app.delete_consent(&alice, &id).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.consent_changes(4).await.len(), 3);
    app.finish().await;
}

#[actix_web::test]
async fn deleting_an_active_consent_revokes_it() {
    let app = spawn_app().await;
    let admin = app.token(custodian_auth::Role::Admin);
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap();
    let deleted = app.delete_consent(&admin, id).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let changes = app.consent_changes(2).await;
    assert_eq!(changes.len(), 2);
    assert!(changes[0].consent_policy.is_some());
    assert!(changes[1].consent_policy.is_none());
    assert!(changes[1].version > changes[0].version);
    app.finish().await;
}

#[actix_web::test]
async fn if_match_mismatch_is_412_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut changed = created.clone();
    changed["status"] = "inactive".into();

    let stale = app
        .put_consent(&alice, &id, &changed, Some("W/\"7\""))
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    stale.outcome();
    let malformed = app
        .put_consent(&alice, &id, &changed, Some("yesterday"))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let read = app.get_consent(&alice, &id).await;
    assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));
    assert_eq!(read.body["status"], "active");
    assert_eq!(
        app.consent_changes(2).await.len(),
        1,
        "a refused update publishes nothing"
    );

    // Without If-Match the update applies.
    let updated = app.put_consent(&alice, &id, &changed, None).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["meta"]["versionId"], "2");
    app.finish().await;
}

#[actix_web::test]
async fn update_checks_the_id_and_the_patient() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let admin = app.token(custodian_auth::Role::Admin);
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();

    let mut other_id = created.clone();
    other_id["id"] = uuid::Uuid::new_v4().to_string().into();
    assert_eq!(
        app.put_consent(&alice, &id, &other_id, None).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut no_id = created.clone();
    no_id.as_object_mut().unwrap().remove("id");
    assert_eq!(
        app.put_consent(&alice, &id, &no_id, None).await.status,
        StatusCode::BAD_REQUEST
    );

    let mut moved = created.clone();
    moved["patient"]["reference"] = "Patient/bob".into();
    let response = app.put_consent(&admin, &id, &moved, None).await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.outcome().contains("cannot change"));

    let unknown = uuid::Uuid::new_v4().to_string();
    let mut unknown_body = created.clone();
    unknown_body["id"] = unknown.clone().into();
    assert_eq!(
        app.put_consent(&alice, &unknown, &unknown_body, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    app.finish().await;
}

#[actix_web::test]
async fn concurrent_updates_of_one_version_let_exactly_one_win() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();
    let mut inactive = created.clone();
    inactive["status"] = "inactive".into();
    let mut rejected = created.clone();
    rejected["status"] = "rejected".into();
    let (a, b) = futures_join(
        app.put_consent(&alice, &id, &inactive, Some("W/\"1\"")),
        app.put_consent(&alice, &id, &rejected, Some("W/\"1\"")),
    )
    .await;
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        vec![StatusCode::OK, StatusCode::PRECONDITION_FAILED]
    );
    let changes = app.consent_changes(3).await;
    assert_eq!(
        changes.iter().map(|c| c.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    app.finish().await;
}

/// Runs two futures concurrently on the test's single thread.
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::join!(a, b)
}

#[actix_web::test]
async fn conditional_reads_answer_304_when_the_clients_copy_is_current() {
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let created = app.post_consent(&alice, &alice_consent()).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let path = format!("/fhir/Consent/{id}");
    let last_modified = created.header("last-modified").unwrap();
    let read_with = |name: &'static str, value: String| {
        app.request(actix_web::http::Method::GET, &path, Some(&alice))
            .insert_header((name, value))
    };

    let current = app
        .send(read_with("If-None-Match", "W/\"1\"".into()), None)
        .await;
    assert_eq!(current.status, StatusCode::NOT_MODIFIED);
    assert_eq!(current.header("etag").as_deref(), Some("W/\"1\""));
    let stale = app
        .send(read_with("If-None-Match", "W/\"7\"".into()), None)
        .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body["id"], id.as_str());
    let unchanged = app
        .send(read_with("If-Modified-Since", last_modified), None)
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    let changed = app
        .send(
            read_with("If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT".into()),
            None,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    // A tag that is no version of ours matches nothing: an ordinary read.
    let foreign = app
        .send(read_with("If-None-Match", "\"v1\"".into()), None)
        .await;
    assert_eq!(foreign.status, StatusCode::OK);
    app.finish().await;
}

/// PATCH, as at records: JSON Patch and merge patch, decided before the patch is read, stored
/// as an update; `Prefer: return` on writes.
#[actix_web::test]
async fn a_consent_is_patched_as_any_resource_and_writes_follow_prefer_return() {
    use actix_web::http::Method;
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let created = app.create_alice_consent().await;
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("/fhir/Consent/{id}");
    let patch = |token: &str, media: &str, body: &str| {
        let request = app
            .request(Method::PATCH, &path, Some(token))
            .insert_header(("Content-Type", media.to_string()));
        app.send(request, Some(body.to_string()))
    };
    // Revoked by a JSON Patch; the version moves on and the change is published.
    let revoked = patch(
        &admin,
        "application/json-patch+json",
        r#"[{"op":"test","path":"/status","value":"active"},{"op":"replace","path":"/status","value":"inactive"}]"#,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(revoked.body["status"], "inactive");
    assert_eq!(revoked.body["meta"]["versionId"], "2");
    // A merge patch (as fhirpy sends it, application/json).
    let merged = patch(&admin, "application/json", r#"{"status":"active"}"#).await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.body["meta"]["versionId"], "3");
    // A failing test, a changed patient, a removed id: 422; If-Match of an old version: 412.
    let failing = patch(
        &admin,
        "application/json-patch+json",
        r#"[{"op":"test","path":"/status","value":"draft"}]"#,
    )
    .await;
    assert_eq!(
        failing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        failing.body
    );
    let moved = patch(
        &admin,
        "application/merge-patch+json",
        r#"{"patient":{"reference":"Patient/bob"}}"#,
    )
    .await;
    assert_eq!(
        moved.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        moved.body
    );
    let unnamed = patch(
        &admin,
        "application/json-patch+json",
        r#"[{"op":"remove","path":"/id"}]"#,
    )
    .await;
    assert_eq!(
        unnamed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unnamed.body
    );
    let stale = app
        .send(
            app.request(Method::PATCH, &path, Some(&admin))
                .insert_header(("Content-Type", "application/json-patch+json"))
                .insert_header(("If-Match", "W/\"1\"")),
            Some("[]".into()),
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    assert_eq!(
        patch(&admin, "text/plain", "x").await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // Someone the consent does not name learns nothing, not even through a test operation.
    let stranger = app.practitioner_token("Organization/h9");
    let probe = patch(
        &stranger,
        "application/json-patch+json",
        r#"[{"op":"test","path":"/status","value":"active"}]"#,
    )
    .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND, "{}", probe.body);
    // Prefer: return=minimal: no body; OperationOutcome: an outcome.
    let minimal = app
        .send(
            app.request(Method::PATCH, &path, Some(&admin))
                .insert_header(("Content-Type", "application/json-patch+json"))
                .insert_header(("Prefer", "return=minimal")),
            Some(r#"[{"op":"replace","path":"/status","value":"inactive"}]"#.into()),
        )
        .await;
    assert_eq!(minimal.status, StatusCode::OK);
    assert!(
        minimal.body.is_null() || minimal.body == "",
        "{}",
        minimal.body
    );
    assert!(minimal.header("ETag").is_some());
    let outcome = app
        .send(
            app.request(Method::POST, "/fhir/Consent", Some(&admin))
                .insert_header(("Content-Type", "application/fhir+json"))
                .insert_header(("Prefer", "return=OperationOutcome")),
            Some(consent_for("Patient/carol").to_string()),
        )
        .await;
    assert_eq!(outcome.status, StatusCode::CREATED);
    assert_eq!(outcome.body["resourceType"], "OperationOutcome");
    app.finish().await;
}

/// `If-None-Exist`: none → 201, one → 200 with it, several → 412; matched only against what
/// the caller may see (an administrator's never match: a match would show her the consent).
#[actix_web::test]
async fn conditional_create_matches_what_the_caller_may_see() {
    use actix_web::http::Method;
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let create = |token: String, condition: &'static str| {
        let app = &app;
        async move {
            let request = app
                .request(Method::POST, "/fhir/Consent", Some(&token))
                .insert_header(("Content-Type", "application/fhir+json"))
                .insert_header(("If-None-Exist", condition));
            app.send(request, Some(alice_consent().to_string())).await
        }
    };
    let first = create(alice.clone(), "patient=Patient/alice&status=active").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = create(alice.clone(), "Consent?patient=Patient/alice&status=active").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    // A second active one (unconditional), then the condition matches two.
    let admin = app.token(Role::Admin);
    assert_eq!(
        app.post_consent(&admin, &alice_consent()).await.status,
        StatusCode::CREATED
    );
    let several = create(alice.clone(), "patient=Patient/alice&status=active").await;
    assert_eq!(
        several.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        several.body
    );
    // The administrator sees no consent: her condition matches none, so she creates.
    let by_admin = create(admin.clone(), "patient=Patient/alice&status=active").await;
    assert_eq!(by_admin.status, StatusCode::CREATED, "{}", by_admin.body);
    // Alice may not search Bob's consents, so she may not condition on them.
    let bobs = create(alice.clone(), "patient=Patient/bob").await;
    assert_eq!(bobs.status, StatusCode::FORBIDDEN, "{}", bobs.body);
    // A condition that is not a search of Consent is a 400 (strict: never widened).
    let unknown = create(alice.clone(), "colour=blue").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    app.finish().await;
}

/// `PUT /fhir/Consent?params` and `DELETE /fhir/Consent?params`: one match → by id, none →
/// create (update) or 204 (delete), several → 412; matched only among what the caller sees.
#[actix_web::test]
async fn conditional_update_and_delete_follow_their_one_match() {
    use actix_web::http::Method;
    let app = spawn_app().await;
    let alice = app.patient_token("Patient/alice");
    let send = |method: Method, path: &'static str, body: Option<serde_json::Value>| {
        let app = &app;
        let alice = alice.clone();
        async move {
            let request = app
                .request(method, path, Some(&alice))
                .insert_header(("Content-Type", "application/fhir+json"));
            app.send(request, body.map(|b| b.to_string())).await
        }
    };
    // None: created.
    let created = send(
        Method::PUT,
        "/fhir/Consent?patient=Patient/alice&status=active",
        Some(alice_consent()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    // One: updated (the body needs no id).
    let mut inactive = alice_consent();
    inactive["status"] = "inactive".into();
    let updated = send(
        Method::PUT,
        "/fhir/Consent?patient=Patient/alice&status=active",
        Some(inactive),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["id"], id.as_str());
    assert_eq!(updated.body["meta"]["versionId"], "2");
    // Several: 412.
    let admin = app.token(Role::Admin);
    let mut second = alice_consent();
    second["status"] = "inactive".into();
    assert_eq!(
        app.post_consent(&admin, &second).await.status,
        StatusCode::CREATED
    );
    let several = send(Method::DELETE, "/fhir/Consent?status=inactive", None).await;
    assert_eq!(
        several.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        several.body
    );
    // One: deleted; then none: 204.
    let path = format!("/fhir/Consent?_id={id}");
    let request = app.request(Method::DELETE, &path, Some(&alice));
    let deleted = app.send(request, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let request = app.request(Method::DELETE, &path, Some(&alice));
    assert_eq!(app.send(request, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/fhir/Consent/{id}"), Some(&alice))
            .await
            .status,
        StatusCode::GONE
    );
    // No condition: 400; Bob's consents are not Alice's to name.
    assert_eq!(
        send(Method::DELETE, "/fhir/Consent", None).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(Method::DELETE, "/fhir/Consent?patient=Patient/bob", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    app.finish().await;
}
