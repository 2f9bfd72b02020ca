//! Only a signed alert suspends a user; `/internal/suspended` answers only callers with the
//! service credential, and names revoked tokens beside suspended users.

use std::time::Duration;

use awc::http::StatusCode;
use custodian_auth::InternalToken;
use custodian_events::signing::StreamSigner;
use redis::AsyncCommands;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{jwt_claims, spawn_app, TestApp};

async fn snapshot(app: &TestApp) -> Value {
    let credential = InternalToken::shared().expect("internal token");
    let answer = app
        .get("/internal/suspended", Some(credential.expose()))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body
}

#[actix_web::test]
async fn the_internal_snapshot_needs_the_service_credential() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/internal/suspended", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let forged = InternalToken::generate();
    assert_eq!(
        app.get("/internal/suspended", Some(forged.expose()))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A valid user token is not a service credential either.
    let admin = app.admin_token().await;
    assert_eq!(
        app.get("/internal/suspended", Some(&admin)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // With it: suspended users and the revoked tokens still in force.
    assert_eq!(
        snapshot(&app).await,
        json!({ "suspended": [], "revoked": [] })
    );
    let jti = jwt_claims(&admin)["jti"].as_str().unwrap().to_string();
    assert_eq!(app.revoke(&admin).await.status, StatusCode::OK);
    let body = snapshot(&app).await;
    assert_eq!(body["revoked"][0]["jti"], jti.as_str(), "{body}");
    app.cleanup().await;
}

fn alert(user_id: &str) -> String {
    json!({
        "id": Uuid::new_v4(), "time": chrono::Utc::now(), "user_id": user_id,
        "event_id": Uuid::new_v4(), "score": 0.99, "reason": "forged", "suspend": true,
    })
    .to_string()
}

#[actix_web::test]
async fn forged_alerts_are_refused_counted_and_never_suspend() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = app
        .create_user(
            &admin,
            &json!({ "username": "carol", "password": "patient-password", "role": "patient" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let carol = created.body["id"].as_str().unwrap().to_string();
    let alerts = app.streams.alerts();
    let mut redis = app.redis.clone();

    // Unsigned, as anyone who can reach Redis could write it.
    let _: String = redis
        .xadd(
            &alerts,
            "*",
            &[("id", "f1".to_string()), ("event", alert(&carol))],
        )
        .await
        .unwrap();
    // Signed, but by a producer other than anomaly (a trusted key of identity's own).
    let identity = StreamSigner::ephemeral("identity").unwrap();
    let _: String = redis
        .xadd(
            &alerts,
            "*",
            &identity.fields(&alerts, "f2", &alert(&carol)).unwrap(),
        )
        .await
        .unwrap();
    // Signed by a key nobody trusts, claiming to be anomaly.
    let stranger = StreamSigner::generate("anomaly").unwrap();
    let _: String = redis
        .xadd(
            &alerts,
            "*",
            &stranger.fields(&alerts, "f3", &alert(&carol)).unwrap(),
        )
        .await
        .unwrap();

    for _ in 0..100 {
        if app.events(&format!("{alerts}:dead")).await.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.events(&format!("{alerts}:dead")).await.len(), 3);
    assert_eq!(app.pending(&alerts, "identity").await, 0);
    assert!(snapshot(&app).await["suspended"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        app.login("carol", "patient-password").await.status,
        StatusCode::OK
    );
    let metrics = app
        .get("/metrics", None)
        .await
        .body
        .as_str()
        .unwrap_or_default()
        .to_string();
    for reason in ["unsigned", "wrong_producer", "unknown_key"] {
        assert!(
            metrics.lines().any(
                |l| l.starts_with("custodian_stream_messages_rejected_total")
                    && l.contains(r#"stream="alerts""#)
                    && l.contains(&format!(r#"reason="{reason}""#))
            ),
            "{reason}: {metrics}"
        );
    }

    // The same alert signed by anomaly suspends her.
    let _: String = redis
        .xadd(
            &alerts,
            "*",
            &custodian_events::signing::test_fields(&alerts, "s1", &alert(&carol)),
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if !snapshot(&app).await["suspended"]
            .as_array()
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(snapshot(&app).await["suspended"], json!([carol]));
    app.cleanup().await;
}
