//! `ANOMALY_SUSPEND_CONFIDENCE`: alerts below it alert only; at or above it they ask identity
//! (through the signed alerts stream) to suspend the user. Identity's side (the suspension on
//! the ledger, reinstatement by an administrator only) is tested in identity; the gateway's
//! refusal within a second in the gateway's tests.

use custodian_events::AccessOutcome;
use uuid::Uuid;

use crate::helpers::{access_event, eventually, spawn_app, spawn_app_with, TestApp};

/// One read of a very restricted record nothing explains: an alert scoring 0.8 to 0.92.
async fn vip_read(app: &TestApp) -> custodian_events::Alert {
    let actor = Uuid::new_v4().to_string();
    let mut event = access_event(&actor, 0, Some("Patient/vip"), AccessOutcome::Permit);
    event.confidentiality = Some("V".into());
    app.publish(&event).await;
    eventually("the alert on the stream", || async {
        app.alerts_on_stream().await.pop()
    })
    .await
}

#[actix_web::test]
async fn alerts_below_the_suspend_confidence_only_alert() {
    let app = spawn_app().await;
    let alert = vip_read(&app).await;
    assert!(
        (0.8..0.92).contains(&alert.score),
        "the scenario needs a score in [0.8, 0.92): {}",
        alert.score
    );
    assert!(!alert.suspend, "{alert:?}");
    assert_eq!(app.alerts("").await[0]["suspended"], false);
    assert_eq!(
        app.metric("custodian_anomaly_suspensions_requested_total")
            .await,
        0.0
    );
    app.cleanup().await;

    // The same alert with the confidence set below its score asks for the suspension.
    let app = spawn_app_with(|s| s.anomaly.suspend_confidence = 0.8).await;
    let alert = vip_read(&app).await;
    assert!(alert.suspend, "{alert:?}");
    let issue = &app.alerts("").await[0];
    assert_eq!(issue["suspended"], true);
    assert_eq!(
        app.metric("custodian_anomaly_suspensions_requested_total")
            .await,
        1.0
    );
    app.cleanup().await;
}
