use serde_json::{json, Value};

use crate::helpers::{patient_resource, permit, spawn_app, spawn_app_with, weight, PUBLIC_URL};

#[actix_web::test]
async fn create_read_update_vread_history_delete() {
    let app = spawn_app_with(vec![permit(
        "Consent/c1",
        "Patient/alice",
        "Organization/h1",
        1,
    )])
    .await;
    let (_, token) = app.practitioner("Organization/h1");

    // Update-as-create with the client's id.
    let created = app
        .put(
            "/fhir/Patient/alice",
            &token,
            &patient_resource("alice", "Smith", "Alice"),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("etag").as_deref(), Some("W/\"1\""));
    assert_eq!(
        created.header("location").unwrap(),
        format!("{PUBLIC_URL}/fhir/Patient/alice/_history/1")
    );

    // Create assigns an id, ignoring the client's, and keeps the decimal's text.
    let body = weight("Patient/alice", "60.50").replace("\"status\"", "\"id\":\"mine\",\"status\"");
    let obs = app
        .send_json("POST", "/fhir/Observation", &token, &body, &[])
        .await;
    assert_eq!(obs.status, 201, "{}", obs.text());
    assert!(obs
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+json"));
    assert!(obs.header("last-modified").is_some());
    let location = obs.header("location").unwrap();
    let stored = obs.json();
    let id = stored["id"].as_str().unwrap().to_string();
    assert_ne!(id, "mine");
    assert_eq!(uuid::Uuid::parse_str(&id).map(|_| ()), Ok(()));
    assert_eq!(
        location,
        format!("{PUBLIC_URL}/fhir/Observation/{id}/_history/1")
    );
    assert_eq!(stored["meta"]["versionId"], "1");
    assert!(stored["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(
        obs.text().contains("\"value\":60.50"),
        "decimal text kept: {}",
        obs.text()
    );

    // Read.
    let read = app
        .get(&format!("/fhir/Observation/{id}"), &token, &[])
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json(), stored);
    assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));

    // Update with the right If-Match.
    let mut changed: Value = stored.clone();
    changed["status"] = json!("amended");
    let updated = app
        .put(
            &format!("/fhir/Observation/{id}"),
            &token,
            &changed,
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.header("etag").as_deref(), Some("W/\"2\""));
    assert_eq!(updated.json()["meta"]["versionId"], "2");
    assert_eq!(updated.json()["status"], "amended");

    // A stale If-Match.
    let stale = app
        .put(
            &format!("/fhir/Observation/{id}"),
            &token,
            &changed,
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text());
    assert_eq!(stale.json()["resourceType"], "OperationOutcome");

    // vread both versions.
    let v1 = app
        .get(&format!("/fhir/Observation/{id}/_history/1"), &token, &[])
        .await;
    assert_eq!(v1.status, 200);
    assert_eq!(v1.json()["status"], "final");
    let v2 = app
        .get(&format!("/fhir/Observation/{id}/_history/2"), &token, &[])
        .await;
    assert_eq!(v2.json()["status"], "amended");
    assert_eq!(
        app.get(&format!("/fhir/Observation/{id}/_history/3"), &token, &[])
            .await
            .status,
        404
    );

    // History, newest first.
    let history = app
        .get(&format!("/fhir/Observation/{id}/_history"), &token, &[])
        .await;
    assert_eq!(history.status, 200);
    let h = history.json();
    assert_eq!(h["type"], "history");
    assert_eq!(h["entry"].as_array().unwrap().len(), 2);
    assert_eq!(h["entry"][0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(h["entry"][1]["request"]["method"], "POST");

    // Delete, then 410.
    let deleted = app
        .delete(&format!("/fhir/Observation/{id}"), &token, &[])
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json()["resourceType"], "OperationOutcome");
    assert_eq!(
        app.get(&format!("/fhir/Observation/{id}"), &token, &[])
            .await
            .status,
        410
    );
    assert_eq!(
        app.get(&format!("/fhir/Observation/{id}/_history/3"), &token, &[])
            .await
            .status,
        410
    );
    assert_eq!(
        app.get(&format!("/fhir/Observation/{id}/_history/2"), &token, &[])
            .await
            .status,
        200
    );
    // Deleting again is idempotent; unknown ids are 404.
    assert_eq!(
        app.delete(
            &format!("/fhir/Observation/{id}"),
            &token,
            &[("Prefer", "return=minimal")]
        )
        .await
        .status,
        204
    );
    assert_eq!(
        app.get("/fhir/Observation/nope", &token, &[]).await.status,
        404
    );
    assert_eq!(
        app.delete("/fhir/Observation/nope", &token, &[])
            .await
            .status,
        404
    );

    // An update after a delete brings it back as a new version.
    let back = app
        .put(&format!("/fhir/Observation/{id}"), &token, &changed, &[])
        .await;
    assert!(back.status == 201 || back.status == 200, "{}", back.status);
    assert_eq!(back.json()["meta"]["versionId"], "4");
    app.cleanup().await;
}

#[actix_web::test]
async fn prefer_headers_and_non_patient_resources() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let org = json!({"resourceType": "Organization", "name": "General Hospital"});
    let minimal = app
        .send_json(
            "POST",
            "/fhir/Organization",
            &token,
            &org.to_string(),
            &[("Prefer", "return=minimal")],
        )
        .await;
    assert_eq!(minimal.status, 201);
    assert!(minimal.body.is_empty());
    let location = minimal.header("location").unwrap();
    let outcome = app
        .send_json(
            "POST",
            "/fhir/Organization",
            &token,
            &org.to_string(),
            &[("Prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(outcome.json()["resourceType"], "OperationOutcome");

    // Anyone whose scopes cover the type reads resources outside patient compartments;
    // admins write them.
    let id = location
        .trim_start_matches(&format!("{PUBLIC_URL}/fhir/Organization/"))
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for role in [
        custodian_auth::Role::Admin,
        custodian_auth::Role::Auditor,
        custodian_auth::Role::Patient,
    ] {
        let t = app.token_for(role);
        assert_eq!(
            app.get(&format!("/fhir/Organization/{id}"), &t, &[])
                .await
                .status,
            200,
            "{role:?}"
        );
    }
    let admin = app.token_for(custodian_auth::Role::Admin);
    assert_eq!(
        app.post("/fhir/Organization", &admin, &org).await.status,
        201
    );
    let auditor = app.token_for(custodian_auth::Role::Auditor);
    assert_eq!(
        app.post("/fhir/Organization", &auditor, &org).await.status,
        403
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn suspended_users_are_refused() {
    use redis::AsyncCommands;
    let app = spawn_app().await;
    let (claims, token) = app.practitioner("Organization/h1");
    let org = json!({"resourceType": "Organization", "name": "H"});
    assert_eq!(
        app.post("/fhir/Organization", &token, &org).await.status,
        201
    );
    let event = custodian_events::IdentityEvent::UserSuspended {
        user_id: claims.sub.clone(),
        reason: "test".into(),
        time: chrono::Utc::now(),
    };
    let mut redis = app.redis.clone();
    let stream = format!("{}:identity", app.prefix);
    // Signed as identity's relay signs.
    let fields = custodian_events::signing::test_fields(
        &stream,
        &uuid::Uuid::new_v4().to_string(),
        &serde_json::to_string(&event).unwrap(),
    );
    let _: String = redis.xadd(&stream, "*", &fields).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        if app.post("/fhir/Organization", &token, &org).await.status == 403 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "suspension not applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.cleanup().await;
}
