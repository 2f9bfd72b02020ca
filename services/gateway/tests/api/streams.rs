//! The identity stream is obeyed only when identity signed it; the deny list's snapshot comes
//! from identity's `/internal/suspended` with the service credential, revoked tokens included.

use std::time::{Duration, Instant};

use custodian_auth::Role;
use custodian_events::{signing::StreamSigner, IdentityEvent};

use crate::helpers::{spawn_app, spawn_app_with, Options, TestApp};

async fn status_after(app: &TestApp, token: &str, wait: Duration) -> u16 {
    let started = Instant::now();
    let mut status = app.get("/fhir/Patient", Some(token)).await.status;
    while started.elapsed() < wait {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        status = app.get("/fhir/Patient", Some(token)).await.status;
    }
    status
}

async fn rejected(app: &TestApp, reason: &str) -> u64 {
    app.metric(
        "stream_messages_rejected_total",
        &[r#"stream="identity""#, &format!(r#"reason="{reason}""#)],
    )
    .await
}

#[actix_web::test]
async fn forged_suspensions_are_refused_and_counted_and_signed_ones_applied() {
    let app = spawn_app().await;
    let (claims, token) = app.issuer.practitioner("Organization/1");
    let suspend = IdentityEvent::UserSuspended {
        user_id: claims.sub.clone(),
        reason: "forged".into(),
        time: chrono::Utc::now(),
    };
    let payload = serde_json::to_string(&suspend).unwrap();
    let stream = format!("{}:identity", app.stream_prefix);
    let (unsigned, bad, unknown) = (
        rejected(&app, "unsigned").await,
        rejected(&app, "bad_signature").await,
        rejected(&app, "unknown_key").await,
    );

    // Unsigned, as anyone who can reach Redis could write it.
    app.xadd(&[("id", "e1".to_string()), ("event", payload.clone())])
        .await;
    // Signed by identity's key, but for another payload (a reinstatement swapped in).
    let mut altered = app.signer.fields(&stream, "e2", &payload).unwrap();
    altered[1].1 = payload.replace("forged", "altered");
    app.xadd(&altered).await;
    // Signed by a key nobody trusts, claiming to be identity.
    let stranger = StreamSigner::generate("identity").unwrap();
    app.xadd(&stranger.fields(&stream, "e3", &payload).unwrap())
        .await;
    // Signed by a trusted producer that is not identity.
    let anomaly = StreamSigner::ephemeral("anomaly").unwrap();
    app.xadd(&anomaly.fields(&stream, "e4", &payload).unwrap())
        .await;

    assert_eq!(
        status_after(&app, &token, Duration::from_millis(800)).await,
        201
    );
    assert!(rejected(&app, "unsigned").await > unsigned);
    assert!(rejected(&app, "bad_signature").await > bad);
    assert!(rejected(&app, "unknown_key").await > unknown);
    assert!(rejected(&app, "wrong_producer").await >= 1);

    // The same event signed by identity is applied.
    app.publish(&suspend).await;
    let started = Instant::now();
    while app.get("/fhir/Patient", Some(&token)).await.status != 403 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "signed suspension not applied"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn revoked_tokens_in_the_snapshot_are_refused_from_the_start() {
    let jti = uuid::Uuid::new_v4().to_string();
    let app = spawn_app_with(Options {
        revoked: vec![jti.clone()],
        ..Options::default()
    })
    .await;
    let mut claims = app.issuer.claims(Role::Practitioner);
    claims.jti = jti;
    let token = app.issuer.token(&claims);
    app.get("/fhir/Patient", Some(&token))
        .await
        .assert_outcome(401);
    assert_eq!(
        app.get("/fhir/Patient", Some(&app.token())).await.status,
        201
    );
    // The snapshot loaded: the deny list is ready.
    let ready = app.get("/readyz", None).await.json();
    assert_eq!(ready["checks"]["deny-list"], "ok", "{ready}");
}
