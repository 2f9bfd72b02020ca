//! Records obeys a consent change only when consent signed it: a forged permit XADDed by
//! anyone who can reach Redis is refused (and counted), the same change signed is applied.

use std::time::{Duration, Instant};

use custodian_events::signing::StreamSigner;
use redis::AsyncCommands;

use crate::helpers::{patient_resource, permit, spawn_app, weight};

#[actix_web::test]
async fn forged_consent_changes_are_refused_and_signed_ones_applied() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let created = app
        .put(
            "/fhir/Patient/alice",
            &h1,
            &patient_resource("alice", "Smith", "Alice"),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let obs = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "60.5"),
            &[],
        )
        .await;
    assert_eq!(obs.status, 201, "{}", obs.text());
    let path = format!("/fhir/Observation/{}", obs.json()["id"].as_str().unwrap());
    assert_eq!(app.get(&path, &h2, &[]).await.status, 404);

    let stream = format!("{}:consent", app.prefix);
    let change = serde_json::to_string(&permit(
        "Consent/forged",
        "Patient/alice",
        "Organization/h2",
        1,
    ))
    .unwrap();
    let mut redis = app.redis.clone();
    // Unsigned.
    let _: String = redis
        .xadd(
            &stream,
            "*",
            &[("id", "f1".to_string()), ("event", change.clone())],
        )
        .await
        .unwrap();
    // Signed by a key nobody trusts, claiming to be consent.
    let stranger = StreamSigner::generate("consent").unwrap();
    let _: String = redis
        .xadd(
            &stream,
            "*",
            &stranger.fields(&stream, "f2", &change).unwrap(),
        )
        .await
        .unwrap();
    // Signed by a trusted producer that does not own consents (anomaly).
    let anomaly = StreamSigner::ephemeral("anomaly").unwrap();
    let _: String = redis
        .xadd(
            &stream,
            "*",
            &anomaly.fields(&stream, "f3", &change).unwrap(),
        )
        .await
        .unwrap();
    // Consent's signature over another change (the payload swapped).
    let mut swapped =
        custodian_events::signing::test_fields(&stream, "f4", r#"{"something":"else"}"#);
    swapped[1].1 = change.clone();
    let _: String = redis.xadd(&stream, "*", &swapped).await.unwrap();

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.get(&path, &h2, &[]).await.status,
        404,
        "a forged consent was obeyed"
    );
    let metrics = app.get_public("/metrics").await.text();
    for reason in ["unsigned", "unknown_key", "wrong_producer", "bad_signature"] {
        assert!(
            metrics.lines().any(
                |l| l.starts_with("custodian_stream_messages_rejected_total")
                    && l.contains(r#"stream="consent""#)
                    && l.contains(&format!(r#"reason="{reason}""#))
            ),
            "{reason}: {metrics}"
        );
    }

    // Signed by consent: applied.
    app.publish_consent(&permit(
        "Consent/real",
        "Patient/alice",
        "Organization/h2",
        1,
    ))
    .await;
    let started = Instant::now();
    while app.get(&path, &h2, &[]).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the signed consent was not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.cleanup().await;
}
