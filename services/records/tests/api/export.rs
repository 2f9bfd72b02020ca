//! Bulk Data `$export`: kick-off, polling, manifest, NDJSON files, `_type`, `_since`,
//! `_typeFilter`, Group level, deletion; what each caller may export; one export event per
//! patient on the access stream.

use std::time::Duration;

use custodian_events::AccessAction;
use serde_json::{json, Value};

use crate::helpers::{deny, patient_resource, permit, spawn_app, weight, TestApp};

const ASYNC: (&str, &str) = ("Prefer", "respond-async");

/// Kicks off `path` and polls until complete: the manifest.
async fn export(app: &TestApp, token: &str, path: &str) -> Value {
    let kicked = app.get(path, token, &[ASYNC]).await;
    assert_eq!(kicked.status, 202, "{path}: {}", kicked.text());
    let status = kicked.header("content-location").expect("a status URL");
    let status = status
        .strip_prefix(crate::helpers::PUBLIC_URL)
        .expect("on the public base")
        .to_string();
    for _ in 0..200 {
        let polled = app.get(&status, token, &[]).await;
        match polled.status.as_u16() {
            202 => tokio::time::sleep(Duration::from_millis(50)).await,
            200 => return polled.json(),
            other => panic!("{path}: status {other}: {}", polled.text()),
        }
    }
    panic!("{path}: the export did not complete");
}

/// The resources of every file of a manifest, as (type, id).
async fn exported(app: &TestApp, token: &str, manifest: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in manifest["output"].as_array().unwrap() {
        let url = file["url"].as_str().unwrap();
        let path = url.strip_prefix(crate::helpers::PUBLIC_URL).unwrap();
        let got = app
            .get(path, token, &[("Accept", "application/fhir+ndjson")])
            .await;
        assert_eq!(got.status, 200, "{}", got.text());
        assert!(got
            .header("content-type")
            .unwrap()
            .starts_with("application/fhir+ndjson"));
        let lines: Vec<Value> = got
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, file["count"].as_u64().unwrap());
        for r in lines {
            assert_eq!(r["resourceType"], file["type"]);
            out.push((
                r["resourceType"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

async fn put_patient(app: &TestApp, token: &str, id: &str, family: &str) {
    let r = app
        .put(
            &format!("/fhir/Patient/{id}"),
            token,
            &patient_resource(id, family, "Ann"),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

async fn observation(app: &TestApp, token: &str, patient: &str, kg: &str) -> String {
    let r = app
        .send_json(
            "POST",
            "/fhir/Observation",
            token,
            &weight(patient, kg),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn exports_what_each_caller_may_see_and_records_one_event_per_patient() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    // Hospital1 holds Alice and Bob; Hospital2 holds Carol. Alice permits Hospital2.
    put_patient(&app, &h1, "alice", "Smith").await;
    put_patient(&app, &h1, "bob", "Jones").await;
    put_patient(&app, &h2, "carol", "Lee").await;
    let alice_obs = observation(&app, &h1, "Patient/alice", "60.5").await;
    let bob_obs = observation(&app, &h1, "Patient/bob", "80.1").await;
    let carol_obs = observation(&app, &h2, "Patient/carol", "55.0").await;
    app.publish_consent(&permit("Consent/c1", "Patient/alice", "Organization/h2", 1))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Hospital1, every patient it may see: its own two, not Carol.
    let manifest = export(&app, &h1, "/fhir/Patient/$export").await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert!(manifest["transactionTime"].as_str().is_some());
    assert!(manifest["request"]
        .as_str()
        .unwrap()
        .ends_with("/fhir/Patient/$export"));
    let got = exported(&app, &h1, &manifest).await;
    let mut want = vec![
        ("Observation".to_string(), alice_obs.clone()),
        ("Observation".to_string(), bob_obs.clone()),
        ("Patient".to_string(), "alice".to_string()),
        ("Patient".to_string(), "bob".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);

    // One export event per patient, counting all her resources.
    let events = app
        .wait_for_events(2, |e| e.action == AccessAction::Export)
        .await;
    let mut per_patient: Vec<(String, u32)> = events
        .iter()
        .filter(|e| e.actor.organization.as_deref() == Some("Organization/h1"))
        .map(|e| (e.patient.clone().unwrap_or_default(), e.count))
        .collect();
    per_patient.sort();
    assert_eq!(
        per_patient,
        vec![("Patient/alice".into(), 2), ("Patient/bob".into(), 2)]
    );

    // Hospital2: Carol (its own) and Alice (her permit), never Bob; `_type` narrows.
    let manifest = export(&app, &h2, "/fhir/Patient/$export?_type=Observation").await;
    let got = exported(&app, &h2, &manifest).await;
    let mut want = vec![
        ("Observation".to_string(), alice_obs.clone()),
        ("Observation".to_string(), carol_obs.clone()),
    ];
    want.sort();
    assert_eq!(got, want);

    // A patient exports her own compartment, nothing else.
    let (_, alice) = app.patient("Patient/alice");
    let manifest = export(&app, &alice, "/fhir/Patient/$export").await;
    let got = exported(&app, &alice, &manifest).await;
    assert!(
        got.iter().all(|(_, id)| id == &alice_obs || id == "alice"),
        "{got:?}"
    );
    assert_eq!(got.len(), 2);

    // `_typeFilter` and `_since`.
    let filter =
        "/fhir/$export?_type=Observation&_typeFilter=Observation%3Fsubject%3DPatient%2Fbob";
    let got = exported(&app, &h1, &export(&app, &h1, filter).await).await;
    assert_eq!(got, vec![("Observation".to_string(), bob_obs.clone())]);
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    let since = format!(
        "/fhir/$export?_since={}",
        later
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .replace('+', "%2B")
    );
    let manifest = export(&app, &h1, &since).await;
    assert_eq!(manifest["output"], json!([]));
    app.cleanup().await;
}

#[actix_web::test]
async fn jobs_are_their_requesters_and_bad_kick_offs_are_refused() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    put_patient(&app, &h1, "alice", "Smith").await;

    // Asynchronous only, NDJSON only, known types only, filters that parse.
    assert_eq!(app.get("/fhir/$export", &h1, &[]).await.status, 400);
    for bad in [
        "/fhir/$export?_outputFormat=text%2Fcsv",
        "/fhir/$export?_type=Nonsense",
        "/fhir/$export?_since=yesterday",
        "/fhir/$export?_typeFilter=Observation%3Fcolour%3Dred",
    ] {
        let r = app.get(bad, &h1, &[ASYNC]).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    // Another user's job does not exist for them: no status, no files, no delete.
    let kicked = app.get("/fhir/Patient/$export", &h1, &[ASYNC]).await;
    assert_eq!(kicked.status, 202);
    let status = kicked
        .header("content-location")
        .unwrap()
        .strip_prefix(crate::helpers::PUBLIC_URL)
        .unwrap()
        .to_string();
    assert_eq!(app.get(&status, &h2, &[]).await.status, 404);
    assert_eq!(app.delete(&status, &h2, &[]).await.status, 404);
    let job = status.rsplit('/').next().unwrap();
    assert_eq!(
        app.get(&format!("/fhir/$export-file/{job}/1"), &h2, &[])
            .await
            .status,
        404
    );
    // Its requester deletes it: 202, then it is gone.
    assert_eq!(app.delete(&status, &h1, &[]).await.status, 202);
    assert_eq!(app.get(&status, &h1, &[]).await.status, 404);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_group_export_holds_its_visible_members_only() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    put_patient(&app, &h1, "bob", "Jones").await;
    put_patient(&app, &h1, "dan", "Wu").await;
    let alice_obs = observation(&app, &h1, "Patient/alice", "60.5").await;
    observation(&app, &h1, "Patient/bob", "80.1").await;
    observation(&app, &h1, "Patient/dan", "70.2").await;
    // Hospital1's cohort names Alice and Bob (not Dan); Bob then denies Hospital1.
    let group = app
        .send_json(
            "POST",
            "/fhir/Group",
            &h1,
            &json!({
                "resourceType": "Group", "type": "person", "actual": true,
                "member": [{"entity": {"reference": "Patient/alice"}},
                           {"entity": {"reference": "Patient/bob"}}]
            })
            .to_string(),
            &[],
        )
        .await;
    assert_eq!(group.status, 201, "{}", group.text());
    let id = group.json()["id"].as_str().unwrap().to_string();
    app.publish_consent(&deny(
        "Consent/b1",
        "Patient/bob",
        Some("Organization/h1"),
        1,
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let manifest = export(&app, &h1, &format!("/fhir/Group/{id}/$export")).await;
    let got = exported(&app, &h1, &manifest).await;
    // The Group itself is in Alice's compartment (`Group.member`), so it is hers to export too.
    let mut want = vec![
        ("Group".to_string(), id.clone()),
        ("Observation".to_string(), alice_obs),
        ("Patient".to_string(), "alice".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    // A group that does not exist, or is not the caller's to see: 404.
    let r = app.get("/fhir/Group/nope/$export", &h1, &[ASYNC]).await;
    assert_eq!(r.status, 404);
    let (_, h2) = app.practitioner("Organization/h2");
    let r = app
        .get(&format!("/fhir/Group/{id}/$export"), &h2, &[ASYNC])
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    app.cleanup().await;
}

#[actix_web::test]
async fn her_erasure_removes_the_exports_that_hold_her_data() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    put_patient(&app, &h1, "bob", "Jones").await;
    observation(&app, &h1, "Patient/alice", "60.5").await;
    let with_alice = export(&app, &h1, "/fhir/Patient/$export").await;
    let file = with_alice["output"][0]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(crate::helpers::PUBLIC_URL)
        .unwrap()
        .to_string();
    assert_eq!(app.get(&file, &h1, &[]).await.status, 200);
    let only_bob = export(
        &app,
        &h1,
        "/fhir/Patient/$export?_type=Patient&_typeFilter=Patient%3F_id%3Dbob",
    )
    .await;
    let bobs_file = only_bob["output"][0]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(crate::helpers::PUBLIC_URL)
        .unwrap()
        .to_string();

    // Alice erases her record (two steps).
    let (_, alice) = app.patient_erasing("Patient/alice");
    let preview = app
        .send_json("POST", "/fhir/Patient/alice/$erase", &alice, "", &[])
        .await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    let code = preview.json()["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "confirm")
        .unwrap()["valueString"]
        .as_str()
        .unwrap()
        .to_string();
    let erased = app
        .send_json(
            "POST",
            &format!("/fhir/Patient/alice/$erase?confirm={code}"),
            &alice,
            "",
            &[],
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());

    // The export that held her data is gone; Bob's alone is not.
    assert_eq!(app.get(&file, &h1, &[]).await.status, 404);
    assert_eq!(app.get(&bobs_file, &h1, &[]).await.status, 200);
    app.cleanup().await;
}
