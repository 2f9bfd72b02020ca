//! The live path: access stream → scores → alerts → alerts stream.

use custodian_events::AccessOutcome;
use uuid::Uuid;

use anomaly::{
    configuration::Settings,
    consumer::lock,
    model::{CalibrationSettings, Phase},
};

use crate::helpers::{
    access_event, burst, eventually, spawn_app, spawn_app_with, spawn_configured, spawn_on,
};

/// A burst alerts at once; within the cooldown only one escalation follows, the first alert at
/// or above `ANOMALY_SUSPEND_CONFIDENCE` (0.92), which asks identity to suspend.
#[actix_web::test]
async fn a_burst_raises_one_alert_and_asks_identity_to_suspend() {
    let app = spawn_app().await;
    let actor = Uuid::new_v4().to_string();
    for event in burst(&actor) {
        app.publish(&event).await;
    }

    let alerts = eventually("a suspending alert", || async {
        let alerts = app.alerts("").await;
        alerts
            .iter()
            .any(|a| a["suspended"] == true)
            .then_some(alerts)
    })
    .await;
    let alert = alerts
        .iter()
        .find(|a| a["suspended"] == true)
        .expect("the suspending alert");
    assert_eq!(alert["user_id"], actor);
    assert!(
        alert["score"].as_f64().is_some_and(|s| s >= 0.92),
        "{alert}"
    );
    for other in alerts.iter().filter(|a| a["suspended"] != true) {
        assert!(other["score"].as_f64().is_some_and(|s| s < 0.92), "{other}");
    }
    assert!(alert["score"].as_f64().is_some_and(|s| s >= 0.8), "{alert}");
    assert!(
        alert["reasons"][0].as_str().is_some_and(|r| !r.is_empty()),
        "{alert}"
    );

    let published = eventually("the alert on the alerts stream", || async {
        let published = app.alerts_on_stream().await;
        (!published.is_empty()).then_some(published)
    })
    .await;
    let suspending: Vec<_> = published.iter().filter(|a| a.suspend).collect();
    assert_eq!(suspending.len(), 1);
    assert_eq!(suspending[0].user_id, actor);
    assert_eq!(
        suspending[0].id.to_string(),
        alert["id"].as_str().unwrap_or_default()
    );
    assert!(!suspending[0].reason.is_empty());

    // Every event is scored, and the rest of the burst raises no further alert.
    app.wait_for_scored(20.0, 0.0).await;
    // Each was timed (the live scoring latency operators watch).
    assert!(
        app.metric("custodian_anomaly_score_duration_seconds_count")
            .await
            >= 20.0
    );
    let raised = app.alerts("").await.len();
    assert!((1..=2).contains(&raised), "{raised} alerts");
    assert_eq!(app.alerts_on_stream().await.len(), raised);
    assert!(
        app.metric("custodian_anomaly_alerts_suppressed_total")
            .await
            >= 1.0
    );
    assert_eq!(app.count("scored_events").await, 20);

    let metrics = app.metrics().await;
    assert_eq!(
        app.metric("custodian_anomaly_events_scored_total").await,
        20.0
    );
    assert_eq!(
        app.metric("custodian_anomaly_alerts_total").await,
        raised as f64
    );
    assert_eq!(
        app.metric("custodian_anomaly_suspensions_requested_total")
            .await,
        1.0
    );
    assert!(
        metrics.contains("custodian_anomaly_score_count{service=\"anomaly\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("custodian_events_published_total"),
        "{metrics}"
    );
    assert!(metrics.contains("custodian_outbox_backlog"), "{metrics}");
    app.cleanup().await;
}

#[actix_web::test]
async fn normal_traffic_raises_no_alert() {
    let app = spawn_app().await;
    let actor = Uuid::new_v4().to_string();
    let mut n = 0;
    for p in 0..3 {
        for r in 0..4 {
            let event = access_event(
                &actor,
                p * 300 + r * 15,
                Some(&format!("Patient/n{p}")),
                AccessOutcome::Permit,
            );
            app.publish(&event).await;
            n += 1;
        }
    }
    app.wait_for_scored(f64::from(n), 0.0).await;
    assert!(app.alerts("").await.is_empty());
    assert!(app.alerts_on_stream().await.is_empty());
    assert_eq!(app.metric("custodian_anomaly_alerts_total").await, 0.0);
    app.cleanup().await;
}

#[actix_web::test]
async fn an_event_delivered_twice_is_scored_once() {
    let app = spawn_app().await;
    let event = access_event("dr-twice", 0, Some("Patient/a"), AccessOutcome::Permit);
    // Twice in a row (most likely one read of the stream)...
    app.publish(&event).await;
    app.publish(&event).await;
    app.wait_for_scored(1.0, 1.0).await;
    // ...and once more after it was stored.
    app.publish(&event).await;
    app.wait_for_scored(1.0, 2.0).await;
    assert_eq!(
        app.metric("custodian_anomaly_events_scored_total").await,
        1.0
    );
    assert_eq!(
        app.metric("custodian_anomaly_events_duplicate_total").await,
        2.0
    );
    assert_eq!(app.count("scored_events").await, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn malformed_messages_are_dead_lettered_and_the_stream_goes_on() {
    let app = spawn_app().await;
    app.publish_raw("x", "{\"not\": \"an event\"}").await;
    let event = access_event("dr-a", 0, Some("Patient/a"), AccessOutcome::Permit);
    app.publish(&event).await;
    app.wait_for_scored(1.0, 0.0).await;
    let mut redis = app.redis.clone();
    let dead: usize =
        redis::AsyncCommands::xlen(&mut redis, format!("{}:dead", app.streams.access()))
            .await
            .expect("XLEN");
    assert_eq!(dead, 1);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_restart_remembers_a_burst_in_progress() {
    let app = spawn_app().await;
    let actor = Uuid::new_v4().to_string();
    // Ten patients in a minute: suspicious but under the threshold. The ids come in no order
    // (a sweep through r0, r1, r2 ... alerts by itself).
    for i in 0..10 {
        app.publish(&access_event(
            &actor,
            i * 6,
            Some(&format!("Patient/r{}", i * 7 % 16)),
            AccessOutcome::Permit,
        ))
        .await;
    }
    app.wait_for_scored(10.0, 0.0).await;
    assert!(app.alerts("").await.is_empty());
    let (database_url, prefix, issuer) = app.stop().await;

    let app = spawn_on(database_url, prefix, issuer).await;
    // Six more: 16 distinct patients in five minutes only if the first ten were remembered.
    for i in 10..16 {
        app.publish(&access_event(
            &actor,
            60 + i * 6,
            Some(&format!("Patient/r{}", i * 7 % 16)),
            AccessOutcome::Permit,
        ))
        .await;
    }
    let alerts = eventually("an alert after the restart", || async {
        let alerts = app.alerts("").await;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(alerts[0]["user_id"], actor);
    app.cleanup().await;
}

/// Saves the detector with every batch, and calibrates in two hours of event time.
fn saving(settings: &mut Settings) {
    settings.anomaly.snapshot_every = Some(std::time::Duration::ZERO);
    settings.anomaly.model.calibration = CalibrationSettings {
        target_fpr: 0.05,
        warmup_seconds: 3_600,
        calibration_seconds: 3_600,
        daily_alert_budget: 0.0,
    };
}

/// A restart resumes from the detector's saved state (the calibration took hours of event
/// time, a live hospital's takes days), then observes the scores stored after it; a state this
/// version cannot read is set aside and the service relearns.
#[actix_web::test]
async fn a_restart_resumes_from_the_saved_state() {
    let app = spawn_app_with(saving).await;
    // Three hours of five clinicians reading their own patients, one read a minute each.
    let actors: Vec<String> = (0..5).map(|_| Uuid::new_v4().to_string()).collect();
    let mut published: u32 = 0;
    for minute in 0..180i64 {
        for (a, actor) in actors.iter().enumerate() {
            if (minute + a as i64) % 3 != 0 {
                continue;
            }
            let patient = format!("Patient/c{a}-{}", minute % 7);
            app.publish(&access_event(
                actor,
                minute * 60,
                Some(&patient),
                AccessOutcome::Permit,
            ))
            .await;
            published += 1;
        }
    }
    app.wait_for_scored(f64::from(published), 0.0).await;
    let (phase, raw) = lock(&app.detector).calibration();
    assert_eq!(phase, Phase::Calibrated);
    assert_eq!(app.count("detector_snapshots").await, 1);
    let (database_url, prefix, issuer) = app.stop().await;

    // Restarted without saving: the state comes back whole.
    let app = spawn_configured(
        database_url,
        prefix,
        issuer,
        Default::default(),
        |s: &mut Settings| {
            saving(s);
            s.anomaly.snapshot_every = None;
        },
    )
    .await;
    assert_eq!(lock(&app.detector).calibration(), (phase, raw));
    assert_eq!(lock(&app.detector).observed(), u64::from(published));
    // Ten more events, stored after the saved state.
    for i in 0..10 {
        app.publish(&access_event(
            &actors[0],
            180 * 60 + i * 60,
            Some("Patient/c0-1"),
            AccessOutcome::Permit,
        ))
        .await;
    }
    app.wait_for_scored(10.0, 0.0).await;
    let (database_url, prefix, issuer) = app.stop().await;

    // Again: the saved state, then the ten events stored after it.
    let app = spawn_configured(
        database_url.clone(),
        prefix.clone(),
        issuer.clone(),
        Default::default(),
        saving,
    )
    .await;
    assert_eq!(lock(&app.detector).calibration(), (phase, raw));
    assert_eq!(lock(&app.detector).observed(), u64::from(published) + 10);
    let (database_url, prefix, issuer) = app.stop().await;

    // A state of another format is not used: the model starts over and still scores.
    {
        let pool = custodian_database::pool(&database_url, 1).expect("pool");
        let mut conn = pool.get().await.expect("connection");
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query("UPDATE detector_snapshots SET state = '\\x000003e7'::bytea"),
            &mut conn,
        )
        .await
        .expect("update");
    }
    let app = spawn_configured(database_url, prefix, issuer, Default::default(), saving).await;
    assert_eq!(lock(&app.detector).calibration().0, Phase::Warmup);
    let late = access_event(
        &actors[1],
        200 * 60,
        Some("Patient/c1-2"),
        AccessOutcome::Permit,
    );
    app.publish(&late).await;
    app.wait_for_scored(1.0, 0.0).await;
    app.cleanup().await;
}
