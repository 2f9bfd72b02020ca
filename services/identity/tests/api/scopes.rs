//! SMART v2 scopes at the token endpoint: requested, granted as a subset of what the role
//! allows, and carried in the token.

use awc::http::StatusCode;
use custodian_auth::Role;

use crate::helpers::{default_scope, jwt_claims, spawn_app};

#[actix_web::test]
async fn smart_v2_scopes_are_granted_within_the_role_and_carried_in_the_token() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.user_with_role(&admin, "dr.who", "tardis-password", "practitioner")
        .await;
    app.user_with_role(&admin, "alice", "alice-password", "patient")
        .await;

    // A v2 granular scope a practitioner may have.
    let granted = app
        .login_with_scope(
            "dr.who",
            "tardis-password",
            "user/Observation.rs openid fhirUser",
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(granted.body["scope"], "user/Observation.rs openid fhirUser");
    let claims = jwt_claims(granted.body["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "user/Observation.rs openid fhirUser");

    // The v1 form is accepted and carried in the v2 spelling.
    let v1 = app
        .login_with_scope("dr.who", "tardis-password", "user/*.read")
        .await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.body);
    assert_eq!(v1.body["scope"], "user/*.rs");
    assert_eq!(
        jwt_claims(v1.body["access_token"].as_str().unwrap())["scope"],
        "user/*.rs"
    );

    // Nothing requested: everything the role allows.
    let all = app.login("dr.who", "tardis-password").await;
    assert_eq!(all.body["scope"], default_scope(Role::Practitioner));
    assert!(all.body["scope"].as_str().unwrap().contains("user/*.cruds"));

    // Beyond the role, malformed, or not enforceable: invalid_scope, no token.
    for (user, password, scope) in [
        ("alice", "alice-password", "patient/Observation.c"),
        ("alice", "alice-password", "user/*.rs"),
        ("dr.who", "tardis-password", "system/*.rs"),
        ("dr.who", "tardis-password", "user/Observation.sr"),
        ("dr.who", "tardis-password", "user/Nothing.rs"),
        (
            "dr.who",
            "tardis-password",
            "user/Observation.rs?category=laboratory",
        ),
    ] {
        let refused = app.login_with_scope(user, password, scope).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{scope}: {}",
            refused.body
        );
        assert_eq!(refused.body["error"], "invalid_scope", "{scope}");
        assert!(refused.body.get("access_token").is_none());
    }

    // A patient may narrow to her launch context's reads and manage her consents.
    let patient = app
        .login_with_scope(
            "alice",
            "alice-password",
            "patient/Observation.rs patient/Consent.c launch/patient",
        )
        .await;
    assert_eq!(patient.status, StatusCode::OK, "{}", patient.body);
    assert_eq!(
        patient.body["scope"],
        "patient/Observation.rs patient/Consent.c launch/patient"
    );

    // Erasing her record is hers to ask for, never in her default grant.
    let default = app.login("alice", "alice-password").await;
    assert!(!default.body["scope"]
        .as_str()
        .unwrap()
        .contains("Patient.d"));
    let eraser = app
        .login_with_scope("alice", "alice-password", "patient/*.rs patient/Patient.d")
        .await;
    assert_eq!(eraser.status, StatusCode::OK, "{}", eraser.body);
    assert_eq!(eraser.body["scope"], "patient/*.rs patient/Patient.d");

    // A refused scope is a denied login in the ledger.
    let denied = app.login_events("scope").await;
    assert_eq!(denied.len(), 6, "{denied:?}");
    app.cleanup().await;
}
