use awc::http::StatusCode;

use crate::helpers::{jwt_claims, spawn_app};

#[actix_web::test]
async fn revoking_a_token_publishes_token_revoked_and_identity_refuses_it() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let claims = jwt_claims(&token);
    let jti = claims["jti"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/auth/admin/organizations", Some(&token))
            .await
            .status,
        StatusCode::OK
    );

    let answer = app.revoke(&token).await;
    assert_eq!(answer.status, StatusCode::OK);
    let event = app
        .wait_for_event(&app.streams.identity(), |e| {
            e["type"] == "token_revoked" && e["jti"] == jti.as_str()
        })
        .await;
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(event["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires_at.timestamp(), claims["exp"].as_i64().unwrap());
    let parsed: custodian_events::IdentityEvent = serde_json::from_value(event).unwrap();
    assert!(matches!(
        parsed,
        custodian_events::IdentityEvent::TokenRevoked { .. }
    ));

    let refused = app.get("/auth/admin/organizations", Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    // Revoking it again, or revoking garbage, is fine and publishes nothing more.
    assert_eq!(app.revoke(&token).await.status, StatusCode::OK);
    assert_eq!(app.revoke("not-a-token").await.status, StatusCode::OK);
    let missing = app
        .post_raw(
            "/auth/revoke",
            None,
            "application/x-www-form-urlencoded",
            "token_type_hint=access_token",
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["error"], "invalid_request");
    // A fresh token for the same user still works.
    let fresh = app.admin_token().await;
    assert_eq!(
        app.get("/auth/admin/organizations", Some(&fresh))
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let revocations = app
        .events(&app.streams.identity())
        .await
        .into_iter()
        .filter(|e| e["type"] == "token_revoked")
        .count();
    assert_eq!(revocations, 1);
    app.cleanup().await;
}
