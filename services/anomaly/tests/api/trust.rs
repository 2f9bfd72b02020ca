//! Alerts go out signed (identity obeys nothing else), and anomaly refuses a suspended user's
//! token and a revoked token itself: from identity's snapshot at start and the signed identity
//! stream live, never from an unsigned one.

use std::{sync::Arc, time::Duration};

use custodian_auth::{
    deny::{DenySnapshot, RevokedToken},
    testing::TestIssuer,
    Role,
};
use custodian_events::{
    signing::{self, Authority, Keyring, Message, StreamSigner},
    IdentityEvent,
};
use uuid::Uuid;

use crate::helpers::{burst, eventually, spawn_app, spawn_with_snapshot, TestApp};

#[actix_web::test]
async fn published_alerts_are_signed_by_anomaly() {
    let app = spawn_app().await;
    for event in burst(&Uuid::new_v4().to_string()) {
        app.publish(&event).await;
    }
    let entries = eventually("an alert on the stream", || async {
        let entries = app.alert_entries().await;
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    let stream = app.streams.alerts();
    for entry in &entries {
        let field = |name: &str| entry.get::<String>(name);
        assert_eq!(field(signing::PRODUCER_FIELD).as_deref(), Some("anomaly"));
        let (id, payload, kid, sig) = (
            field("id"),
            field("event").unwrap(),
            field(signing::KEY_ID_FIELD),
            field(signing::SIGNATURE_FIELD),
        );
        let message = Message {
            id: id.as_deref(),
            payload: &payload,
            producer: Some("anomaly"),
            kid: kid.as_deref(),
            sig: sig.as_deref(),
        };
        // What identity's consumer checks (this process trusts the key anomaly loaded).
        assert_eq!(
            Keyring::shared().verify(Authority::of_stream(&stream), &stream, &message),
            Ok(())
        );
        // A key from another process (a fresh keyring knows none) is not trusted.
        assert!(Keyring::new(None)
            .verify(Authority::of_stream(&stream), &stream, &message)
            .is_err());
    }
    app.cleanup().await;
}

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get("/anomaly/alerts", Some(token)).await.0
}

async fn wait_for(app: &TestApp, token: &str, wanted: u16) {
    eventually(&format!("status {wanted}"), || async {
        (status(app, token).await == wanted).then_some(())
    })
    .await;
}

#[actix_web::test]
async fn users_suspended_and_tokens_revoked_before_start_are_refused() {
    let issuer = Arc::new(TestIssuer::start().await);
    let mut suspended = issuer.claims(Role::Auditor);
    let mut revoked = issuer.claims(Role::Auditor);
    suspended.sub = Uuid::new_v4().to_string();
    revoked.jti = Uuid::new_v4().to_string();
    let app = spawn_with_snapshot(
        format!(
            "postgres://postgres@127.0.0.1:5432/anomaly_test_{}",
            Uuid::new_v4().simple()
        ),
        format!("anomaly-test-{}", Uuid::new_v4().simple()),
        issuer.clone(),
        DenySnapshot {
            suspended: vec![suspended.sub.clone()],
            revoked: vec![RevokedToken {
                jti: revoked.jti.clone(),
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
            }],
        },
    )
    .await;
    assert_eq!(status(&app, &issuer.token(&suspended)).await, 403);
    assert_eq!(status(&app, &issuer.token(&revoked)).await, 401);
    assert_eq!(status(&app, &app.token(Role::Auditor)).await, 200);
    let (_, ready) = app.get("/readyz", None).await;
    assert_eq!(ready["checks"]["deny-list"], "ok", "{ready}");
    app.cleanup().await;
}

#[actix_web::test]
async fn signed_suspensions_and_revocations_apply_live_and_forged_ones_do_not() {
    let app = spawn_app().await;
    let identity = StreamSigner::ephemeral("identity").unwrap();
    let stream = app.streams.identity();
    let claims = app.issuer.claims(Role::Auditor);
    let token = app.issuer.token(&claims);
    assert_eq!(status(&app, &token).await, 200);

    let suspend = serde_json::to_string(&IdentityEvent::UserSuspended {
        user_id: claims.sub.clone(),
        reason: "test".into(),
        time: chrono::Utc::now(),
    })
    .unwrap();
    // Unsigned; and signed by anomaly's own kind of key, which is not identity's.
    app.publish_identity(&[("id", "f1".into()), ("event", suspend.clone())])
        .await;
    let anomaly = StreamSigner::ephemeral("anomaly").unwrap();
    app.publish_identity(&anomaly.fields(&stream, "f2", &suspend).unwrap())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&app, &token).await,
        200,
        "a forged suspension was obeyed"
    );
    let metrics = app.metrics().await;
    for reason in ["unsigned", "wrong_producer"] {
        assert!(
            metrics.lines().any(
                |l| l.starts_with("custodian_stream_messages_rejected_total")
                    && l.contains(r#"stream="identity""#)
                    && l.contains(&format!(r#"reason="{reason}""#))
            ),
            "{reason}: {metrics}"
        );
    }

    app.publish_identity(&identity.fields(&stream, "s1", &suspend).unwrap())
        .await;
    wait_for(&app, &token, 403).await;

    let other = app.issuer.claims(Role::Auditor);
    let other_token = app.issuer.token(&other);
    assert_eq!(status(&app, &other_token).await, 200);
    let revoke = serde_json::to_string(&IdentityEvent::TokenRevoked {
        jti: other.jti.clone(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
    })
    .unwrap();
    app.publish_identity(&identity.fields(&stream, "s2", &revoke).unwrap())
        .await;
    wait_for(&app, &other_token, 401).await;
    app.cleanup().await;
}
