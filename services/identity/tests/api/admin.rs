use awc::http::StatusCode;
use custodian_auth::Role;
use serde_json::json;

use crate::helpers::{
    default_scope, jwt_claims, spawn_app, spawn_app_on, ADMIN_PASSWORD, ADMIN_USERNAME,
};

#[actix_web::test]
async fn admin_registers_an_organization_a_practitioner_and_a_patient() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let org = app.create_organization(&admin, "St. Mary's Hospital").await;
    let org_id = org["id"].as_str().unwrap();
    assert_eq!(org["reference"], format!("Organization/{org_id}"));
    assert_eq!(org["name"], "St. Mary's Hospital");
    let listed = app.get("/auth/admin/organizations", Some(&admin)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    // The organisation given bare; the practitioner reference generated.
    let practitioner = app
        .create_user(
            &admin,
            &json!({ "username": "Dr.House", "password": "vicodin-1234", "role": "practitioner", "organization": org_id, "department": "Diagnostics" }),
        )
        .await;
    assert_eq!(
        practitioner.status,
        StatusCode::CREATED,
        "{}",
        practitioner.body
    );
    assert_eq!(practitioner.body["username"], "dr.house");
    assert_eq!(practitioner.body["organization"], org["reference"]);
    assert_eq!(practitioner.body["department"], "Diagnostics");
    let practitioner_ref = practitioner.body["practitioner"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        practitioner_ref.starts_with("Practitioner/")
            && practitioner_ref.len() > "Practitioner/".len()
    );
    assert!(practitioner.body["patient"].is_null());
    assert!(
        practitioner.body.get("password").is_none()
            && practitioner.body.get("password_hash").is_none()
    );
    let location = practitioner
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let read = app.get(&location, Some(&admin)).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["id"], practitioner.body["id"]);

    let patient = app
        .create_user(&admin, &json!({ "username": "alice", "password": "alice-password", "role": "patient", "patient": "Patient/p-123" }))
        .await;
    assert_eq!(patient.status, StatusCode::CREATED, "{}", patient.body);
    assert_eq!(patient.body["patient"], "Patient/p-123");

    // The practitioner's token.
    let answer = app.login("dr.house", "vicodin-1234").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["scope"], default_scope(Role::Practitioner));
    assert!(answer.body.get("patient").is_none());
    let claims = jwt_claims(answer.body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], practitioner.body["id"]);
    assert_eq!(claims["role"], "practitioner");
    assert_eq!(claims["organization"], org["reference"]);
    assert_eq!(claims["practitioner"], practitioner_ref.as_str());
    assert_eq!(claims["department"], "Diagnostics");
    assert_eq!(claims["aud"], "custodian");
    assert!(claims.get("patient").is_none());

    // The patient's token carries the SMART launch context.
    let answer = app.login("ALICE", "alice-password").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["patient"], "p-123");
    assert_eq!(answer.body["scope"], default_scope(Role::Patient));
    let claims = jwt_claims(answer.body["access_token"].as_str().unwrap());
    assert_eq!(claims["role"], "patient");
    assert_eq!(claims["patient"], "Patient/p-123");
    assert!(claims.get("organization").is_none());
    let login = app
        .wait_for_event(&app.streams.access(), |e| {
            e["outcome"] == "permit" && e["actor"]["role"] == "patient"
        })
        .await;
    assert_eq!(login["patient"], "Patient/p-123");
    assert_eq!(login["actor"]["id"], patient.body["id"]);

    // A patient created without a reference gets one; an auditor gets the audit scope.
    let generated = app
        .create_user(
            &admin,
            &json!({ "username": "bob", "password": "bob-password", "role": "patient" }),
        )
        .await;
    assert!(generated.body["patient"]
        .as_str()
        .unwrap()
        .starts_with("Patient/"));
    let auditor = app
        .create_user(
            &admin,
            &json!({ "username": "eve", "password": "eve-password", "role": "auditor" }),
        )
        .await;
    assert_eq!(auditor.status, StatusCode::CREATED);
    let answer = app.login("eve", "eve-password").await;
    assert_eq!(answer.body["scope"], default_scope(Role::Auditor));
    app.cleanup().await;
}

#[actix_web::test]
async fn the_admin_api_is_for_administrators_only() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = app
        .create_user(
            &admin,
            &json!({ "username": "alice", "password": "alice-password", "role": "patient" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let patient = app.token_for("alice", "alice-password").await;

    let refused = app
        .create_user(
            &patient,
            &json!({ "username": "mallory", "password": "mallory-password", "role": "admin" }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"], "forbidden");
    assert_eq!(
        app.get("/auth/admin/organizations", Some(&patient))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_json("/auth/admin/keys/rotate", Some(&patient), &json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.login("mallory", "mallory-password").await.status,
        StatusCode::BAD_REQUEST,
        "no user was created"
    );

    let anonymous = app.get("/auth/admin/organizations", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let forged = app
        .get(
            "/auth/admin/organizations",
            Some("eyJhbGciOiJFUzI1NiJ9.e30.c2ln"),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

#[actix_web::test]
async fn user_creation_refuses_duplicates_and_bad_input() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let first = app
        .create_user(
            &admin,
            &json!({ "username": "alice", "password": "alice-password", "role": "patient" }),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .create_user(
            &admin,
            &json!({ "username": "Alice", "password": "other-password", "role": "patient" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body["message"].as_str().unwrap().contains("alice"));
    // The first alice keeps her password.
    assert_eq!(
        app.login("alice", "alice-password").await.status,
        StatusCode::OK
    );

    let cases = [
        (
            json!({ "username": "dr", "password": "long-enough-1", "role": "patient" }),
            "username",
        ),
        (
            json!({ "username": "drwho", "password": "short", "role": "patient" }),
            "password",
        ),
        (
            json!({ "username": "drwho", "password": "long-enough-1", "role": "root" }),
            "role",
        ),
        (
            json!({ "username": "drwho", "password": "long-enough-1", "role": "practitioner" }),
            "organization",
        ),
        (
            json!({ "username": "drwho", "password": "long-enough-1", "role": "practitioner", "organization": "Organization/00000000-0000-0000-0000-000000000001" }),
            "does not exist",
        ),
        (
            json!({ "username": "drwho", "password": "long-enough-1", "role": "patient", "practitioner": "Practitioner/x" }),
            "practitioner",
        ),
        (
            json!({ "username": "drwho", "password": "long-enough-1", "role": "patient", "patient": "Patient/has space" }),
            "patient",
        ),
    ];
    for (body, mentions) in cases {
        let answer = app.create_user(&admin, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.body
        );
        assert!(
            answer.body["message"].as_str().unwrap().contains(mentions),
            "{body}: {}",
            answer.body
        );
    }
    let malformed = app
        .post_raw(
            "/auth/admin/users",
            Some(&admin),
            "application/json",
            "{\"username\": ",
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let missing = app
        .create_user(&admin, &json!({ "username": "drwho" }))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let not_found = app
        .get(
            &format!("/auth/admin/users/{}", uuid::Uuid::new_v4()),
            Some(&admin),
        )
        .await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    let not_uuid = app.get("/auth/admin/users/not-a-uuid", Some(&admin)).await;
    assert_eq!(not_uuid.status, StatusCode::NOT_FOUND);

    let org = app.create_organization(&admin, "Clinic").await;
    let duplicate_org = app
        .post_json(
            "/auth/admin/organizations",
            Some(&admin),
            &json!({ "name": "Clinic" }),
        )
        .await;
    assert_eq!(duplicate_org.status, StatusCode::CONFLICT);
    assert!(org["id"].is_string());
    app.cleanup().await;
}

#[actix_web::test]
async fn a_restart_keeps_keys_and_applies_a_changed_admin_password() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let jwks = app.get("/.well-known/jwks.json", None).await.body;

    let restarted = spawn_app_on(&app.database_url, &app.prefix, "a-new-admin-password").await;
    assert_eq!(
        restarted.get("/.well-known/jwks.json", None).await.body,
        jwks,
        "the key survives a restart"
    );
    assert_eq!(
        restarted.login(ADMIN_USERNAME, ADMIN_PASSWORD).await.status,
        StatusCode::BAD_REQUEST
    );
    let answer = restarted
        .login(ADMIN_USERNAME, "a-new-admin-password")
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    // The first instance's token works on the second.
    assert_eq!(
        restarted
            .get("/auth/admin/organizations", Some(&token))
            .await
            .status,
        StatusCode::OK
    );
    app.cleanup().await;
}
