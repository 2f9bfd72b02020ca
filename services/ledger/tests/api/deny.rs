//! A suspended user's token and a revoked token are refused by the ledger itself (not only at
//! the gateway): from identity's snapshot at start, and from the signed identity stream live.
//! Unsigned identity events are not obeyed.

use std::time::{Duration, Instant};

use custodian_auth::deny::{DenySnapshot, RevokedToken};
use custodian_events::{signing::StreamSigner, IdentityEvent};

use crate::helpers::{spawn_app, spawn_app_with_snapshot, TestApp};

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get("/ledger/accesses", Some(token)).await.status
}

/// Polls until the status is `wanted` (at most 2 s).
async fn wait_for(app: &TestApp, token: &str, wanted: u16) {
    let started = Instant::now();
    loop {
        let got = status(app, token).await;
        if got == wanted {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still {got}, wanted {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn users_suspended_and_tokens_revoked_before_start_are_refused() {
    let suspended = uuid::Uuid::new_v4().to_string();
    let revoked = uuid::Uuid::new_v4().to_string();
    let app = spawn_app_with_snapshot(DenySnapshot {
        suspended: vec![suspended.clone()],
        revoked: vec![RevokedToken {
            jti: revoked.clone(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
        }],
    })
    .await;
    let (mut claims, _) = app.issuer.patient("Patient/a");
    claims.sub = suspended;
    assert_eq!(status(&app, &app.issuer.token(&claims)).await, 403);
    let (mut claims, _) = app.issuer.patient("Patient/b");
    claims.jti = revoked;
    assert_eq!(status(&app, &app.issuer.token(&claims)).await, 401);
    let (_, fine) = app.issuer.patient("Patient/c");
    assert_eq!(status(&app, &fine).await, 200);
    let ready = app.get("/readyz", None).await.json();
    assert_eq!(ready["checks"]["deny-list"], "ok", "{ready}");
    app.finish().await;
}

#[actix_web::test]
async fn signed_suspensions_and_revocations_apply_live_and_forged_ones_do_not() {
    let mut app = spawn_app().await;
    let identity = StreamSigner::ephemeral("identity").unwrap();
    let stream = format!("{}:identity", app.prefix);
    let (claims, token) = app.issuer.patient("Patient/a");
    assert_eq!(status(&app, &token).await, 200);

    let suspend = serde_json::to_string(&IdentityEvent::UserSuspended {
        user_id: claims.sub.clone(),
        reason: "test".into(),
        time: chrono::Utc::now(),
    })
    .unwrap();
    // Forged: unsigned, and signed by a key identity does not own.
    app.publish_identity(&[("id", "f1".into()), ("event", suspend.clone())])
        .await;
    let stranger = StreamSigner::generate("identity").unwrap();
    app.publish_identity(&stranger.fields(&stream, "f2", &suspend).unwrap())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&app, &token).await,
        200,
        "a forged suspension was obeyed"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("custodian_stream_messages_rejected_total")
                && l.contains(r#"stream="identity""#)
                && l.contains(r#"reason="unsigned""#)
        ),
        "{metrics}"
    );

    // Signed by identity: applied.
    app.publish_identity(&identity.fields(&stream, "s1", &suspend).unwrap())
        .await;
    wait_for(&app, &token, 403).await;

    let (other, other_token) = app.issuer.patient("Patient/b");
    assert_eq!(status(&app, &other_token).await, 200);
    let revoke = serde_json::to_string(&IdentityEvent::TokenRevoked {
        jti: other.jti.clone(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
    })
    .unwrap();
    app.publish_identity(&identity.fields(&stream, "s2", &revoke).unwrap())
        .await;
    wait_for(&app, &other_token, 401).await;
    app.finish().await;
}
