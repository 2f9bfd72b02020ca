//! Alerts as FHIR `DetectedIssue`s: who may read them, what they say, and their review
//! (`$acknowledge`, `$dismiss`), audited and persisted; a dismissal teaches the detector.

use anomaly::domain::scored::REBUILD_SPAN;
use chrono::{DateTime, Duration, TimeZone, Utc};
use custodian_auth::Role;
use custodian_events::{AccessAction, AccessEvent, AccessOutcome};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{access_event, burst, eventually, spawn_app, spawn_on, TestApp};

const KIND_SYSTEM: &str = "https://custodian.example/fhir/CodeSystem/anomaly-alert-kind";

async fn issues(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!("/anomaly/DetectedIssue{query}"),
            Some(&app.token(Role::Auditor)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resourceType"], "Bundle");
    assert_eq!(body["type"], "searchset");
    body["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

/// Publishes a burst and waits until all of it is scored; returns the newest alert's id.
async fn alert_for_burst(app: &TestApp, actor: &str) -> String {
    alert_and_events_for_burst(app, actor).await.0
}

/// [`alert_for_burst`], with the burst's event ids.
async fn alert_and_events_for_burst(app: &TestApp, actor: &str) -> (String, Vec<String>) {
    let events = burst(actor);
    for event in &events {
        app.publish(event).await;
    }
    app.wait_for_scored(20.0, 0.0).await;
    let alerts = app.alerts(&format!("?user={actor}")).await;
    (
        alerts[0]["id"].as_str().expect("id").to_string(),
        events.iter().map(|e| e.id.to_string()).collect(),
    )
}

#[actix_web::test]
async fn alerts_are_detected_issues_for_security_staff_only() {
    let app = spawn_app().await;
    let actor = Uuid::new_v4().to_string();
    let (id, burst_ids) = alert_and_events_for_burst(&app, &actor).await;

    let found = issues(&app, "").await;
    assert!(!found.is_empty());
    let issue = found
        .iter()
        .find(|i| i["id"] == id.as_str())
        .expect("the alert as an issue")
        .clone();
    let stored = app.alerts(&format!("?user={actor}")).await;
    let alert = &stored[0];
    assert_eq!(issue["resourceType"], "DetectedIssue");
    assert_eq!(issue["status"], "preliminary");
    assert_eq!(issue["code"]["coding"][0]["system"], KIND_SYSTEM);
    assert_eq!(issue["code"]["coding"][0]["code"], alert["kind"]);
    assert!(
        ["high", "moderate"].contains(&issue["severity"].as_str().unwrap_or_default()),
        "{issue}"
    );
    let identified: DateTime<Utc> = issue["identifiedDateTime"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("identifiedDateTime");
    let event_time: DateTime<Utc> = alert["event_time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("event_time");
    assert_eq!(identified, event_time);
    assert_eq!(issue["author"]["reference"], "Device/custodian-anomaly");
    assert_eq!(
        issue["implicated"][0]["reference"],
        format!(
            "AuditEvent/{}",
            alert["event_id"].as_str().unwrap_or_default()
        )
    );
    // The burst's other events are the same incident's: the events before the alert that it
    // took in, and those after it that alerted within the cooldown without an alert of their
    // own. Each once, all of the burst.
    let implicated: Vec<&str> = issue["implicated"]
        .as_array()
        .expect("implicated")
        .iter()
        .filter_map(|r| r["reference"].as_str()?.strip_prefix("AuditEvent/"))
        .collect();
    assert!(implicated.len() > 1, "{issue}");
    let unique: std::collections::HashSet<&&str> = implicated.iter().collect();
    assert_eq!(unique.len(), implicated.len(), "{implicated:?}");
    assert!(
        implicated
            .iter()
            .all(|id| burst_ids.iter().any(|b| b == id)),
        "{implicated:?}"
    );
    assert_eq!(issue["patient"]["reference"], alert["patient_ref"]);
    assert!(
        issue["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{issue}"
    );
    let evidence = issue["evidence"].as_array().expect("evidence");
    assert!(!evidence.is_empty());
    assert!(evidence[0]["code"][0]["coding"][0]["code"].is_string());
    assert!(evidence[0]["extension"][0]["extension"][1]["valueDecimal"].is_number());
    let incident = issue["extension"]
        .as_array()
        .and_then(|e| {
            e.iter().find(|x| {
                x["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("anomaly-incident"))
            })
        })
        .and_then(|x| x["valueId"].as_str())
        .expect("incident")
        .to_string();
    assert_eq!(incident, alert["incident_id"].as_str().unwrap_or_default());
    if alert["suspended"] == true {
        assert_eq!(
            issue["mitigation"][0]["action"]["coding"][0]["code"],
            "suspend-user"
        );
    }

    // One by one, and the search parameters.
    let (status, one) = app
        .get(
            &format!("/anomaly/DetectedIssue/{id}"),
            Some(&app.token(Role::Admin)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one, issue);
    let kind = alert["kind"].as_str().expect("kind");
    assert!(!issues(&app, &format!("?code={kind}")).await.is_empty());
    assert!(
        !issues(&app, &format!("?code={KIND_SYSTEM}%7C{kind}&user={actor}"))
            .await
            .is_empty()
    );
    assert!(issues(&app, "?status=final").await.is_empty());
    assert_eq!(
        issues(&app, &format!("?incident={incident}&_count=1"))
            .await
            .len(),
        1
    );
    let auditor = app.token(Role::Auditor);
    for bad in [
        "?status=open",
        "?code=gossip",
        "?_count=0",
        "?incident=nope",
    ] {
        let (status, body) = app
            .get(&format!("/anomaly/DetectedIssue{bad}"), Some(&auditor))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = app
        .get(
            &format!("/anomaly/DetectedIssue/{}", Uuid::new_v4()),
            Some(&auditor),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["resourceType"], "OperationOutcome");

    // Everyone else: 401 without a token, 403 for other roles and for tokens without the scope.
    assert_eq!(app.get("/anomaly/DetectedIssue", None).await.0, 401);
    let (_, practitioner) = app.issuer.practitioner("Organization/h1");
    let (_, patient) = app
        .issuer
        .patient(alert["patient_ref"].as_str().unwrap_or("Patient/b0"));
    let mut narrow = app.issuer.claims(Role::Auditor);
    narrow.scope = "user/Organization.rs user/Practitioner.rs".into();
    let narrow = app.issuer.token(&narrow);
    for token in [&practitioner, &patient, &app.token(Role::Service), &narrow] {
        for path in [
            "/anomaly/DetectedIssue".to_string(),
            format!("/anomaly/DetectedIssue/{id}"),
            "/anomaly/alerts".to_string(),
        ] {
            let (status, body) = app.get(&path, Some(token)).await;
            assert_eq!(status, 403, "{path}: {body}");
            assert_eq!(body["issue"][0]["code"], "forbidden");
        }
    }

    assert!(
        app.metric_with("custodian_anomaly_alerts_total", &[("kind", kind)])
            .await
            >= 1.0
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn reviews_are_audited_persisted_and_shown_as_mitigations() {
    let app = spawn_app().await;
    let actor = Uuid::new_v4().to_string();
    let id = alert_for_burst(&app, &actor).await;
    let acknowledge = format!("/anomaly/DetectedIssue/{id}/$acknowledge");
    let dismiss = format!("/anomaly/DetectedIssue/{id}/$dismiss");

    // A practitioner may not review; the attempt is on the record.
    let (practitioner_claims, practitioner) = app.issuer.practitioner("Organization/h1");
    let (status, body) = app.post(&acknowledge, &practitioner, None).await;
    assert_eq!(status, 403, "{body}");

    let auditor_claims = app.issuer.claims(Role::Auditor);
    let auditor = app.issuer.token(&auditor_claims);
    let note = json!({"resourceType": "Parameters", "parameter": [
        {"name": "note", "valueString": "following up with the ward manager"}
    ]});
    let (status, issue) = app.post(&acknowledge, &auditor, Some(note)).await;
    assert_eq!(status, 200, "{issue}");
    assert_eq!(issue["status"], "final");
    let acknowledged = issue["mitigation"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["action"]["coding"][0]["code"] == "acknowledged")
        })
        .expect("the acknowledgement")
        .clone();
    assert_eq!(
        acknowledged["author"]["identifier"]["value"],
        auditor_claims.sub
    );
    assert_eq!(
        acknowledged["action"]["text"],
        "following up with the ward manager"
    );
    let mitigations = issue["mitigation"].as_array().map(Vec::len);

    // Saying it again changes nothing; a malformed body is refused.
    let (status, again) = app.post(&acknowledge, &auditor, None).await;
    assert_eq!(status, 200);
    assert_eq!(again["mitigation"].as_array().map(Vec::len), mitigations);
    let (status, _) = app
        .post(
            &acknowledge,
            &auditor,
            Some(json!({"resourceType": "Patient"})),
        )
        .await;
    assert_eq!(status, 400);

    // An acknowledged alert may still be dismissed; a dismissed one stays dismissed.
    let admin = app.token(Role::Admin);
    let (status, issue) = app.post(&dismiss, &admin, None).await;
    assert_eq!(status, 200, "{issue}");
    assert_eq!(issue["status"], "cancelled");
    let (status, body) = app.post(&acknowledge, &auditor, None).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app
        .post(
            &format!("/anomaly/DetectedIssue/{}/$dismiss", Uuid::new_v4()),
            &auditor,
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Persisted: a fresh read shows the verdict and both mitigations.
    let (_, read) = app
        .get(&format!("/anomaly/DetectedIssue/{id}"), Some(&auditor))
        .await;
    assert_eq!(read["status"], "cancelled");
    assert_eq!(app.count("alert_feedback").await, 2);
    assert_eq!(issues(&app, "?status=cancelled").await.len(), 1);
    assert_eq!(
        app.alerts(&format!("?user={actor}")).await[0]["status"],
        "dismissed"
    );

    // Audited through the kernel: one access event per attempt, none naming a patient.
    let reviews = eventually("the review events on the access stream", || async {
        let events: Vec<AccessEvent> = app
            .access_events()
            .await
            .into_iter()
            .filter(|e| e.resource_type.as_deref() == Some("DetectedIssue"))
            .collect();
        (events.len() >= 6).then_some(events)
    })
    .await;
    // Denied, acknowledged, acknowledged again, dismissed, refused (409), missing (404); the
    // malformed body was refused before anything was decided.
    assert_eq!(reviews.len(), 6, "{reviews:?}");
    for event in &reviews {
        assert_eq!(event.action, AccessAction::Update);
        assert_eq!(event.patient, None);
    }
    let denied = &reviews[0];
    assert_eq!(denied.actor.id, practitioner_claims.sub);
    assert_eq!(denied.outcome, AccessOutcome::Deny);
    assert_eq!(
        denied.decision.as_ref().map(|d| d.basis.as_str()),
        Some("role")
    );
    let permitted = &reviews[1];
    assert_eq!(permitted.actor.id, auditor_claims.sub);
    assert_eq!(permitted.outcome, AccessOutcome::Permit);
    assert_eq!(
        permitted.decision.as_ref().map(|d| d.basis.as_str()),
        Some("unowned")
    );
    // The missing alert's attempt.
    assert_eq!(reviews[5].outcome, AccessOutcome::Error);

    assert_eq!(
        app.metric("custodian_anomaly_alerts_acknowledged_total")
            .await,
        1.0
    );
    assert_eq!(
        app.metric("custodian_anomaly_alerts_dismissed_total").await,
        1.0
    );
    app.cleanup().await;
}

/// `hour:minute` on the day `offset` days after a day three days ahead of now: later than the
/// access events the service records itself (reviews, at the wall clock), so the newest event
/// time, and with it the window a restart rebuilds from, is the test's own.
fn day(offset: i64, hour: u32, minute: u32) -> DateTime<Utc> {
    let date = (Utc::now() + Duration::days(3 + offset)).date_naive();
    Utc.from_utc_datetime(&date.and_hms_opt(hour, minute, 0).expect("valid time"))
}

fn read(actor: &str, patient: &str, time: DateTime<Utc>) -> AccessEvent {
    let mut event = access_event(actor, 0, Some(patient), AccessOutcome::Permit);
    event.time = time;
    event.confidentiality = Some("V".into());
    event
}

fn login(actor: &str, time: DateTime<Utc>) -> AccessEvent {
    let mut event = access_event(actor, 0, None, AccessOutcome::Permit);
    event.time = time;
    event.action = AccessAction::Login;
    event.resource_type = None;
    event
}

async fn score_of(app: &TestApp, event: &AccessEvent) -> f64 {
    score_reaching(app, event, f64::NEG_INFINITY).await
}

/// The event's stored score once it reaches `at_least`: an alert that rests only on a missing
/// explanation waits for the model's grace period, then its stored score is raised.
async fn score_reaching(app: &TestApp, event: &AccessEvent, at_least: f64) -> f64 {
    #[derive(diesel::QueryableByName)]
    struct Score {
        #[diesel(sql_type = diesel::sql_types::Double)]
        score: f64,
    }
    eventually("the event alerting", || async {
        let mut conn = app.pool.get().await.expect("connection");
        let rows: Vec<Score> = diesel_async::RunQueryDsl::load(
            diesel::sql_query("SELECT score FROM scored_events WHERE event_id = $1")
                .bind::<diesel::sql_types::Uuid, _>(event.id),
            &mut conn,
        )
        .await
        .expect("query");
        rows.first().map(|r| r.score).filter(|s| *s >= at_least)
    })
    .await
}

#[actix_web::test]
async fn a_dismissal_teaches_the_detector_live_and_after_a_restart() {
    let app = spawn_app().await;
    let (dismissed, kept) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let (vip, other_vip) = ("Patient/vip-a", "Patient/vip-b");
    let watcher = Uuid::new_v4().to_string();

    // Two days of history make the model mature (a never-seen patient is a dormant record, and
    // a relationship made by an alerting access stays provisional); then two users each open a
    // VIP record that nothing explains.
    app.publish(&login(&watcher, day(-2, 10, 0))).await;
    let first = read(&dismissed, vip, day(0, 10, 0));
    let control = read(&kept, other_vip, day(0, 10, 1));
    app.publish(&first).await;
    app.publish(&control).await;
    score_reaching(&app, &first, 0.8).await;
    score_reaching(&app, &control, 0.8).await;
    let alert = eventually("the alert", || async {
        app.alerts(&format!("?user={dismissed}"))
            .await
            .first()
            .cloned()
    })
    .await;
    let id = alert["id"].as_str().expect("id");
    let (status, body) = app
        .post(
            &format!("/anomaly/DetectedIssue/{id}/$dismiss"),
            &app.token(Role::Auditor),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Twenty minutes later (past the alert cooldown), each reads the same record again: the
    // dismissed relationship explains it, the other one still alerts.
    let again = read(&dismissed, vip, day(0, 10, 20));
    let control_again = read(&kept, other_vip, day(0, 10, 21));
    app.publish(&again).await;
    app.publish(&control_again).await;
    let untaught = score_reaching(&app, &control_again, 0.8).await;
    let taught = score_of(&app, &again).await;
    assert!(
        taught < 0.5,
        "a dismissed relationship still scores {taught}"
    );
    assert!(untaught >= 0.8, "the control scores only {untaught}");
    assert_eq!(app.alerts(&format!("?user={dismissed}")).await.len(), 1);
    assert_eq!(app.alerts(&format!("?user={kept}")).await.len(), 2);
    assert_eq!(app.count("relationships").await, 1);

    // A later event pushes the VIP reads out of the span a restart rebuilds from, so after the
    // restart only the stored relationship can explain the dismissed user's access.
    let later = login(&watcher, day(0, 12, 0) + REBUILD_SPAN);
    app.publish(&later).await;
    score_of(&app, &later).await;
    let (database_url, prefix, issuer) = app.stop().await;
    let app = spawn_on(database_url, prefix, issuer).await;
    // Two days on, the restarted model is mature again.
    let resumed = day(2, 10, 0) + REBUILD_SPAN;
    app.publish(&login(&watcher, resumed - Duration::hours(1)))
        .await;
    let after_restart = read(&dismissed, vip, resumed);
    let control_after = read(&kept, other_vip, resumed + Duration::minutes(1));
    app.publish(&after_restart).await;
    app.publish(&control_after).await;
    let untaught = score_reaching(&app, &control_after, 0.8).await;
    let taught = score_of(&app, &after_restart).await;
    assert!(
        taught < 0.5,
        "after a restart the dismissal scores {taught}"
    );
    assert!(
        untaught >= 0.8,
        "after a restart the control scores only {untaught}"
    );
    app.cleanup().await;
}
