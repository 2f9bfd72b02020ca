//! Bulk Data `$export`: kick-off, polling, manifest, NDJSON files, `_type`, `_since`,
//! `_typeFilter`, Group level, deletion; what each caller may export; one export event per
//! patient on the access stream.

use std::time::Duration;

use custodian_events::{AccessAction, AccessOutcome};
use diesel::{
    sql_query,
    sql_types::{BigInt, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};

use crate::helpers::{
    deny, patient_resource, permit, spawn_app, spawn_app_with_export_retention, weight, TestApp,
    TestResponse,
};

const ASYNC: (&str, &str) = ("Prefer", "respond-async");

/// Kicks off `path` and polls until complete: the manifest.
async fn export(app: &TestApp, token: &str, path: &str) -> Value {
    let kicked = app.get(path, token, &[ASYNC]).await;
    complete(app, token, path, &kicked).await.json()
}

/// Polls the job `kicked` (a kick-off's answer) started until complete: the status response.
async fn complete(app: &TestApp, token: &str, what: &str, kicked: &TestResponse) -> TestResponse {
    assert_eq!(kicked.status, 202, "{what}: {}", kicked.text());
    let status = status_path(kicked);
    for _ in 0..200 {
        let polled = app.get(&status, token, &[]).await;
        match polled.status.as_u16() {
            202 => tokio::time::sleep(Duration::from_millis(50)).await,
            200 => return polled,
            other => panic!("{what}: status {other}: {}", polled.text()),
        }
    }
    panic!("{what}: the export did not complete");
}

/// The status URL of a kick-off's answer, as a path.
fn status_path(kicked: &TestResponse) -> String {
    kicked
        .header("content-location")
        .expect("a status URL")
        .strip_prefix(crate::helpers::PUBLIC_URL)
        .expect("on the public base")
        .to_string()
}

/// A URL of a manifest, as a path.
fn local(url: &Value) -> String {
    url.as_str()
        .unwrap()
        .strip_prefix(crate::helpers::PUBLIC_URL)
        .unwrap()
        .to_string()
}

/// The lines of one exported file.
async fn lines(app: &TestApp, token: &str, url: &Value) -> Vec<Value> {
    let got = app.get(&local(url), token, &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    got.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
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

/// A `Parameters` body.
fn parameters(items: Value) -> String {
    json!({"resourceType": "Parameters", "parameter": items}).to_string()
}

#[actix_web::test]
async fn a_post_kick_off_takes_its_parameters_from_a_parameters_body() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    put_patient(&app, &h1, "bob", "Jones").await;
    let alice_obs = observation(&app, &h1, "Patient/alice", "60.5").await;
    let bob_obs = observation(&app, &h1, "Patient/bob", "80.1").await;

    // The same export as GET and as POST.
    let get = export(
        &app,
        &h1,
        "/fhir/Patient/$export?_type=Observation&_since=2000-01-01T00:00:00Z&_outputFormat=ndjson&patient=Patient/alice,Patient/bob",
    )
    .await;
    let body = parameters(json!([
        {"name": "_type", "valueString": "Observation"},
        {"name": "_since", "valueInstant": "2000-01-01T00:00:00Z"},
        {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
        {"name": "patient", "valueReference": {"reference": "Patient/alice"}},
        {"name": "patient", "valueReference": {"reference": "Patient/bob"}}
    ]));
    let kicked = app
        .send_json("POST", "/fhir/Patient/$export", &h1, &body, &[ASYNC])
        .await;
    let post = complete(&app, &h1, "POST", &kicked).await.json();
    let mut want = vec![
        ("Observation".to_string(), alice_obs.clone()),
        ("Observation".to_string(), bob_obs.clone()),
    ];
    want.sort();
    assert_eq!(exported(&app, &h1, &get).await, want);
    assert_eq!(exported(&app, &h1, &post).await, want);
    // A POST's request URL is the kick-off's without its parameters (they were in the body).
    assert!(post["request"]
        .as_str()
        .unwrap()
        .ends_with("/fhir/Patient/$export"));

    // `_typeFilter` from the body, and a POST at system level.
    let body = parameters(json!([
        {"name": "_type", "valueString": "Observation"},
        {"name": "_typeFilter", "valueString": "Observation?subject=Patient/bob"}
    ]));
    let kicked = app
        .send_json("POST", "/fhir/$export", &h1, &body, &[ASYNC])
        .await;
    let manifest = complete(&app, &h1, "POST system", &kicked).await.json();
    assert_eq!(
        exported(&app, &h1, &manifest).await,
        vec![("Observation".to_string(), bob_obs)]
    );

    // Refused: a body that is not Parameters, a patient that is not a reference, a value that
    // is not primitive, and `patient` at system level.
    for (path, body) in [
        (
            "/fhir/Patient/$export",
            json!({"resourceType": "Patient"}).to_string(),
        ),
        (
            "/fhir/Patient/$export",
            parameters(json!([{"name": "patient", "valueReference": {"display": "Alice"}}])),
        ),
        (
            "/fhir/Patient/$export",
            parameters(json!([{"name": "patient", "valueString": "Organization/h1"}])),
        ),
        (
            "/fhir/Patient/$export",
            parameters(json!([{"name": "_type", "valueCoding": {"code": "Patient"}}])),
        ),
        (
            "/fhir/$export",
            parameters(
                json!([{"name": "patient", "valueReference": {"reference": "Patient/alice"}}]),
            ),
        ),
    ] {
        let r = app.send_json("POST", path, &h1, &body, &[ASYNC]).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn patient_restricts_a_patient_or_group_export_to_those_patients() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    put_patient(&app, &h1, "bob", "Jones").await;
    put_patient(&app, &h1, "dan", "Wu").await;
    let alice_obs = observation(&app, &h1, "Patient/alice", "60.5").await;
    let bob_obs = observation(&app, &h1, "Patient/bob", "80.1").await;
    observation(&app, &h1, "Patient/dan", "70.2").await;

    // Patient level: those named, absolute references too, nobody else.
    let manifest = export(
        &app,
        &h1,
        "/fhir/Patient/$export?patient=Patient/alice&patient=http://gateway.test/fhir/Patient/bob",
    )
    .await;
    let mut want = vec![
        ("Observation".to_string(), alice_obs.clone()),
        ("Observation".to_string(), bob_obs),
        ("Patient".to_string(), "alice".to_string()),
        ("Patient".to_string(), "bob".to_string()),
    ];
    want.sort();
    assert_eq!(exported(&app, &h1, &manifest).await, want);

    // Group level: the members named; a patient outside the group is refused.
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
    let manifest = export(
        &app,
        &h1,
        &format!("/fhir/Group/{id}/$export?_type=Patient,Observation&patient=Patient/alice"),
    )
    .await;
    let mut want = vec![
        ("Observation".to_string(), alice_obs),
        ("Patient".to_string(), "alice".to_string()),
    ];
    want.sort();
    assert_eq!(exported(&app, &h1, &manifest).await, want);
    let r = app
        .get(
            &format!("/fhir/Group/{id}/$export?patient=Patient/dan"),
            &h1,
            &[ASYNC],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not a member"), "{}", r.text());

    // Never at system level, lenient or strict: ignoring it would export everyone.
    for prefer in ["respond-async", "respond-async, handling=strict"] {
        let r = app
            .get(
                "/fhir/$export?patient=Patient/alice",
                &h1,
                &[("Prefer", prefer)],
            )
            .await;
        assert_eq!(r.status, 400, "{prefer}: {}", r.text());
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn naming_a_patient_she_may_not_see_gets_another_organisation_nothing_of_her() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, mallory) = app.practitioner("Organization/h2");
    put_patient(&app, &h1, "alice", "Smith").await;
    observation(&app, &h1, "Patient/alice", "60.5").await;
    put_patient(&app, &mallory, "carol", "Lee").await;

    // Alice (hidden from Hospital2) answers exactly as a patient who does not exist, by GET
    // and by POST, alone or beside one of Hospital2's own.
    let hidden = app
        .get(
            "/fhir/Patient/$export?patient=Patient/alice",
            &mallory,
            &[ASYNC],
        )
        .await;
    let unknown = app
        .get(
            "/fhir/Patient/$export?patient=Patient/nobody",
            &mallory,
            &[ASYNC],
        )
        .await;
    assert_eq!(hidden.status, 404, "{}", hidden.text());
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(hidden.header("content-location").is_none());
    assert_eq!(
        hidden.text().replace("alice", "X"),
        unknown.text().replace("nobody", "X")
    );
    let both = app
        .get(
            "/fhir/Patient/$export?patient=Patient/carol,Patient/alice",
            &mallory,
            &[ASYNC],
        )
        .await;
    assert_eq!(both.status, 404, "{}", both.text());
    let body = parameters(json!([
        {"name": "patient", "valueReference": {"reference": "Patient/alice"}}
    ]));
    let posted = app
        .send_json("POST", "/fhir/Patient/$export", &mallory, &body, &[ASYNC])
        .await;
    assert_eq!(posted.status, 404, "{}", posted.text());
    assert_eq!(posted.text(), hidden.text());

    // The ledger has her refused exports (one per attempt), and no export of her data.
    let refused = app
        .wait_for_events(3, |e| {
            e.action == AccessAction::Export
                && e.outcome == AccessOutcome::Deny
                && e.patient.as_deref() == Some("Patient/alice")
                && e.actor.organization.as_deref() == Some("Organization/h2")
        })
        .await;
    assert!(refused.iter().all(|e| e.count == 0));
    // The unknown patient: an export of nothing, as a read of an unknown id is recorded.
    app.wait_for_events(1, |e| {
        e.action == AccessAction::Export
            && e.outcome == AccessOutcome::Error
            && e.patient.is_none()
            && e.actor.organization.as_deref() == Some("Organization/h2")
    })
    .await;
    // Her own patients still export.
    let manifest = export(
        &app,
        &mallory,
        "/fhir/Patient/$export?patient=Patient/carol",
    )
    .await;
    assert_eq!(
        exported(&app, &mallory, &manifest).await,
        vec![("Patient".to_string(), "carol".to_string())]
    );
    let leaked = app
        .access_events_raw()
        .await
        .into_iter()
        .map(|v| serde_json::from_value::<custodian_events::AccessEvent>(v).unwrap())
        .any(|e| {
            e.action == AccessAction::Export
                && e.outcome == AccessOutcome::Permit
                && e.patient.as_deref() == Some("Patient/alice")
        });
    assert!(!leaked, "an export of Alice's data was recorded");
    app.cleanup().await;
}

#[actix_web::test]
async fn elements_subset_the_exported_resources() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    observation(&app, &h1, "Patient/alice", "60.50").await;

    let manifest = export(
        &app,
        &h1,
        "/fhir/$export?_type=Patient,Observation&_elements=id,Observation.value",
    )
    .await;
    let subsetted = |r: &Value| {
        r["meta"]["tag"].as_array().is_some_and(|tags| {
            tags.iter().any(|t| {
                t["code"] == "SUBSETTED"
                    && t["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
            })
        })
    };
    let mut seen = 0;
    for file in manifest["output"].as_array().unwrap() {
        let got = app.get(&local(&file["url"]), &h1, &[]).await;
        for line in got.text().lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort();
            match r["resourceType"].as_str().unwrap() {
                // `id` alone: Patient has no mandatory element.
                "Patient" => assert_eq!(keys, vec!["id", "meta", "resourceType"]),
                // `value`, and the mandatory `status` and `code`; `subject` left out.
                "Observation" => {
                    assert_eq!(
                        keys,
                        vec![
                            "code",
                            "id",
                            "meta",
                            "resourceType",
                            "status",
                            "valueQuantity"
                        ]
                    );
                    // As stored: the decimal keeps its form.
                    assert!(line.contains(r#""value":60.50"#), "{line}");
                }
                other => panic!("{other}"),
            }
            assert!(subsetted(&r), "{r}");
            assert!(r["meta"]["versionId"].is_string());
            seen += 1;
        }
    }
    assert_eq!(seen, 2);

    // Only another type's elements: Patient is exported whole.
    let manifest = export(
        &app,
        &h1,
        "/fhir/$export?_type=Patient&_elements=Observation.value",
    )
    .await;
    let patient = &lines(&app, &h1, &manifest["output"][0]["url"]).await[0];
    assert_eq!(patient["name"][0]["family"], "Smith");
    assert!(!subsetted(patient));

    for bad in ["a-b", "Nonsense.id", "Observation.code.text"] {
        let r = app
            .get(&format!("/fhir/$export?_elements={bad}"), &h1, &[ASYNC])
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn unsupported_associated_data_is_refused_when_strict_and_reported_when_lenient() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    let strict = ("Prefer", "respond-async, handling=strict");

    for value in [
        "LatestProvenanceResources",
        "RelevantProvenanceResources",
        "_custom",
    ] {
        let r = app
            .get(
                &format!("/fhir/Patient/$export?includeAssociatedData={value}"),
                &h1,
                &[strict],
            )
            .await;
        assert_eq!(r.status, 400, "{value}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }

    // Lenient (the default): the export runs, and its manifest's error file says what was
    // ignored, one OperationOutcome per parameter.
    let manifest = export(
        &app,
        &h1,
        "/fhir/Patient/$export?includeAssociatedData=LatestProvenanceResources&colour=red",
    )
    .await;
    assert_eq!(
        exported(&app, &h1, &manifest).await,
        vec![("Patient".to_string(), "alice".to_string())]
    );
    let errors = manifest["error"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{manifest}");
    assert_eq!(errors[0]["type"], "OperationOutcome");
    let outcomes = lines(&app, &h1, &errors[0]["url"]).await;
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes
        .iter()
        .all(|o| o["resourceType"] == "OperationOutcome"
            && o["issue"][0]["severity"] == "warning"
            && o["issue"][0]["code"] == "not-supported"));
    let text = json!(outcomes).to_string();
    assert!(text.contains("includeAssociatedData") && text.contains("colour"));

    // Nothing ignored: an empty error list.
    let manifest = export(&app, &h1, "/fhir/Patient/$export").await;
    assert_eq!(manifest["error"], json!([]));
    app.cleanup().await;
}

/// `Expires` as an instant.
fn expires(r: &TestResponse) -> chrono::DateTime<chrono::Utc> {
    let raw = r.header("expires").expect("an Expires header");
    chrono::DateTime::parse_from_rfc2822(&raw)
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
        .with_timezone(&chrono::Utc)
}

#[actix_web::test]
async fn finished_exports_expire_after_the_retention_and_are_swept() {
    // The default: a day.
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    let kicked = app.get("/fhir/Patient/$export", &h1, &[ASYNC]).await;
    let done = complete(&app, &h1, "default", &kicked).await;
    let left = expires(&done) - chrono::Utc::now();
    assert!(
        left > chrono::Duration::hours(23) && left <= chrono::Duration::hours(24),
        "{left}"
    );
    app.cleanup().await;

    let app = spawn_app_with_export_retention(Duration::from_secs(2)).await;
    let (_, h1) = app.practitioner("Organization/h1");
    put_patient(&app, &h1, "alice", "Smith").await;
    let kicked = app.get("/fhir/Patient/$export", &h1, &[ASYNC]).await;
    let status = status_path(&kicked);
    let done = complete(&app, &h1, "short", &kicked).await;
    let until = expires(&done);
    assert!(until > chrono::Utc::now() - chrono::Duration::seconds(1));
    assert!(until <= chrono::Utc::now() + chrono::Duration::seconds(3));
    let file = local(&done.json()["output"][0]["url"]);
    let downloaded = app.get(&file, &h1, &[]).await;
    assert_eq!(downloaded.status, 200);
    assert_eq!(expires(&downloaded), until);

    // Past it: the job and its files are unknown, then their rows are gone.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    for path in [&status, &file] {
        let r = app.get(path, &h1, &[]).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    assert_eq!(app.delete(&status, &h1, &[]).await.status, 404);
    let job = status.rsplit('/').next().unwrap().to_string();
    let mut conn = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    let mut swept = false;
    for _ in 0..50 {
        let left: Count = sql_query(
            "SELECT (SELECT COUNT(*) FROM export_jobs WHERE id::text = $1) \
             + (SELECT COUNT(*) FROM export_files WHERE job_id::text = $1) AS n",
        )
        .bind::<Text, _>(&job)
        .get_result(&mut conn)
        .await
        .unwrap();
        if left.n == 0 {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swept, "the expired job was not swept");
    app.cleanup().await;
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}
