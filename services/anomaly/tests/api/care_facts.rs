//! Care facts and patient labels from records' signed relationships stream: stored (a newer
//! version of a source resource replaces its facts, of a Patient her labels), taught to the
//! detector, and refused when not signed by records.

use anomaly::model::{LABEL_CELEBRITY, LABEL_EMPLOYEE};
use custodian_events::{
    signing::StreamSigner, AccessOutcome, CareChange, CareFact, MembershipChange, PatientLabels,
    RelationshipEvent,
};
use redis::AsyncCommands;
use uuid::Uuid;

use crate::helpers::{access_event, eventually, spawn_app, TestApp};

async fn publish(app: &TestApp, fields: &[(&'static str, String)]) {
    let mut redis = app.redis.clone();
    let _: String = redis
        .xadd(app.streams.relationships(), "*", fields)
        .await
        .expect("XADD");
}

/// Publishes `event` with no signature (as anyone with Redis access could).
async fn publish_unsigned(app: &TestApp, event: String) {
    publish(app, &[("id", "u1".into()), ("event", event)]).await;
}

fn care(source: &str, version: i64, actors: &[&str]) -> String {
    serde_json::to_string(&RelationshipEvent::Care(CareChange {
        source: source.into(),
        version,
        facts: actors
            .iter()
            .map(|actor| CareFact {
                patient: "Patient/vip".into(),
                actor: (*actor).into(),
                via: source.into(),
                start: None,
                end: None,
            })
            .collect(),
    }))
    .expect("json")
}

#[actix_web::test]
async fn care_facts_are_stored_replaced_by_version_and_taught() {
    let app = spawn_app().await;
    let records = StreamSigner::ephemeral("records").expect("signer");
    let stream = app.streams.relationships();
    let sign = |id: &str, payload: &str| records.fields(&stream, id, payload).expect("signed");

    // Unsigned: never handled.
    publish_unsigned(&app, care("Encounter/e0", 1, &["Practitioner/x"])).await;
    // A membership (consent's business), then version 2 of an encounter, then its stale version 1.
    let membership = serde_json::to_string(&RelationshipEvent::Membership(MembershipChange {
        container: "CareTeam/ct1".into(),
        version: 1,
        known: true,
        members: vec![],
    }))
    .expect("json");
    publish(&app, &sign("m1", &membership)).await;
    // Signed but unreadable: dead-lettered, and it holds back none of the others read with it.
    publish(&app, &sign("bad", "{not json")).await;
    publish(
        &app,
        &sign(
            "c2",
            &care(
                "Encounter/e1",
                2,
                &["Practitioner/p1", "Organization/cardio"],
            ),
        ),
    )
    .await;
    publish(
        &app,
        &sign("c1", &care("Encounter/e1", 1, &["Practitioner/old"])),
    )
    .await;
    eventually("the facts taught", || async {
        (app.metric("custodian_anomaly_care_facts_total").await >= 2.0).then_some(())
    })
    .await;
    let dead = format!("{stream}:dead");
    eventually("the unreadable message dead-lettered", || async {
        let mut redis = app.redis.clone();
        let entries: redis::streams::StreamRangeReply =
            redis.xrange_all(&dead).await.unwrap_or_default();
        entries
            .ids
            .iter()
            .any(|e| e.get::<String>("event").as_deref() == Some("{not json"))
            .then_some(())
    })
    .await;
    // A newer version replaces the facts of the same source.
    publish(
        &app,
        &sign("c3", &care("Encounter/e1", 3, &["Practitioner/p1"])),
    )
    .await;
    eventually("version 3 stored", || async {
        (app.count("relationships WHERE source_version = 3").await == 1).then_some(())
    })
    .await;
    assert_eq!(app.count("relationships").await, 1);
    assert_eq!(
        app.count("relationships WHERE actor = 'Practitioner/x' OR actor = 'Practitioner/old'")
            .await,
        0
    );

    // The detector uses the fact for the person it names: a read of the VIP by the user who is
    // Practitioner/p1 (access events carry the user's id and practitioner reference) is
    // explained, the same read by anyone else alerts.
    let mut named = access_event(
        &Uuid::new_v4().to_string(),
        1,
        Some("Patient/vip"),
        AccessOutcome::Permit,
    );
    named.actor.practitioner = Some("Practitioner/p1".into());
    named.confidentiality = Some("V".into());
    let mut stranger = access_event(
        &Uuid::new_v4().to_string(),
        0,
        Some("Patient/vip"),
        AccessOutcome::Permit,
    );
    stranger.confidentiality = Some("V".into());
    // Of another organisation, so the department facts of one read explain nothing to the other.
    stranger.actor.organization = Some("Organization/h2".into());
    app.publish(&stranger).await;
    app.publish(&named).await;
    app.wait_for_scored(2.0, 0.0).await;
    // The stranger's read rests only on a missing explanation: it alerts once its grace
    // period is over (the live path moves the clock to the wall clock every few seconds).
    let alerts = eventually("the stranger's alert", || async {
        let alerts = app.alerts("").await;
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["user_id"], stranger.actor.id);
    app.cleanup().await;
}

/// The labels the running detector holds for `patient`.
fn labels_of(app: &TestApp, patient: &str) -> u8 {
    anomaly::consumer::lock(&app.detector).patient_labels(patient)
}

fn labels(patient: &str, version: i64, labels: &[&str]) -> String {
    serde_json::to_string(&RelationshipEvent::Labels(PatientLabels {
        patient: patient.into(),
        version,
        labels: labels.iter().map(|l| (*l).to_string()).collect(),
    }))
    .expect("json")
}

#[actix_web::test]
async fn patient_labels_are_stored_by_version_and_taught() {
    let app = spawn_app().await;
    let records = StreamSigner::ephemeral("records").expect("signer");
    let stream = app.streams.relationships();
    let sign = |id: &str, payload: &str| records.fields(&stream, id, payload).expect("signed");

    // Unsigned: never handled.
    publish_unsigned(&app, labels("Patient/eve", 1, &["EMP"])).await;
    // Version 2 says she is staff; the stale version 1 (no labels) arrives after it.
    publish(
        &app,
        &sign("l2", &labels("Patient/ann", 2, &["EMP", "PSY"])),
    )
    .await;
    publish(&app, &sign("l1", &labels("Patient/ann", 1, &[]))).await;
    publish(&app, &sign("l3", &labels("Patient/cel", 1, &["CEL"]))).await;
    eventually("the celebrity taught", || async {
        (labels_of(&app, "Patient/cel") == LABEL_CELEBRITY).then_some(())
    })
    .await;
    assert_eq!(labels_of(&app, "Patient/ann"), LABEL_EMPLOYEE);
    assert_eq!(labels_of(&app, "Patient/eve"), 0);
    assert_eq!(
        app.count("patient_labels WHERE patient_ref = 'Patient/ann' AND version = 2 AND labels = ARRAY['EMP','PSY']")
            .await,
        1
    );
    assert_eq!(app.count("patient_labels").await, 2);
    // A newer version that drops the label takes it away.
    publish(&app, &sign("l4", &labels("Patient/ann", 3, &[]))).await;
    eventually("the label dropped", || async {
        (labels_of(&app, "Patient/ann") == 0).then_some(())
    })
    .await;
    assert_eq!(app.count("patient_labels WHERE version = 3").await, 1);
    // At start the stored labels are taught again.
    let mut conn = app.pool.get().await.expect("connection");
    let fresh = anomaly::consumer::SharedDetector::default();
    let taught = anomaly::domain::labels::replay(&mut conn, &fresh)
        .await
        .expect("replay");
    assert_eq!(taught, 2);
    assert_eq!(
        anomaly::consumer::lock(&fresh).patient_labels("Patient/cel"),
        LABEL_CELEBRITY
    );
    app.cleanup().await;
}
