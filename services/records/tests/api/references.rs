//! Consents naming data by `meaning = dependents` (the instance and what refers to it) and
//! `related` (the instance and what its current version refers to): reads, searches, totals
//! and pages see exactly those, and a change of references moves resources in and out.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{consent_change, register, spawn_app_with, TestApp, PUBLIC_URL};

const LOINC: &str = "http://loinc.org";

fn actor(reference: &str) -> Value {
    json!({
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
        "reference": {"reference": reference}
    })
}

/// Hospital2 for treatment, only `meaning` of `reference`.
fn permit_h2_data(meaning: &str, reference: &str) -> Value {
    json!({
        "type": "permit",
        "actor": [actor("Organization/h2")],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
        "data": [{"meaning": meaning, "reference": {"reference": reference}}]
    })
}

fn consents() -> Vec<custodian_policy::ConsentChange> {
    vec![
        // Alice: her Encounter e1 and what refers to it.
        consent_change(
            "Consent/alice",
            "Patient/alice",
            1,
            permit_h2_data("dependents", "Encounter/e1"),
        ),
        // Frank: his report r1 and what it refers to.
        consent_change(
            "Consent/frank",
            "Patient/frank",
            1,
            permit_h2_data("related", "DiagnosticReport/r1"),
        ),
    ]
}

fn encounter(id: &str, patient: &str) -> Value {
    json!({
        "resourceType": "Encounter", "id": id, "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": format!("Patient/{patient}")}
    })
}

fn obs(id: &str, patient: &str, encounter: Option<&str>) -> Value {
    let mut o = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 1, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    });
    if let Some(e) = encounter {
        o["encounter"] = json!({"reference": e});
    }
    o
}

fn report(results: &[&str]) -> Value {
    json!({
        "resourceType": "DiagnosticReport", "id": "r1", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "58410-2"}]},
        "subject": {"reference": "Patient/frank"},
        "result": results.iter().map(|r| json!({"reference": r})).collect::<Vec<_>>()
    })
}

/// Every resource of the test set: (path, body). Everything is held by Hospital1.
fn resources() -> Vec<(String, Value)> {
    let own_e1 = format!("{PUBLIC_URL}/fhir/Encounter/e1/_history/1");
    let mut out = vec![
        ("Encounter/e1".to_string(), encounter("e1", "alice")),
        ("Encounter/e2".to_string(), encounter("e2", "alice")),
        // Refers to e1, relative and by this server's absolute URL (of a version).
        (
            "Observation/a1".to_string(),
            obs("a1", "alice", Some("Encounter/e1")),
        ),
        (
            "Observation/a2".to_string(),
            obs("a2", "alice", Some(&own_e1)),
        ),
        // Refers elsewhere, or to another server's e1, or nowhere.
        (
            "Observation/a3".to_string(),
            obs("a3", "alice", Some("Encounter/e2")),
        ),
        (
            "Observation/a4".to_string(),
            obs(
                "a4",
                "alice",
                Some("https://elsewhere.test/fhir/Encounter/e1"),
            ),
        ),
        ("Observation/a5".to_string(), obs("a5", "alice", None)),
        (
            "Observation/a6".to_string(),
            obs("a6", "alice", Some("#e1")),
        ),
    ];
    for f in ["f1", "f2", "f3", "f4"] {
        out.push((format!("Observation/{f}"), obs(f, "frank", None)));
    }
    out.push((
        "DiagnosticReport/r1".to_string(),
        report(&["Observation/f1", "Observation/f2"]),
    ));
    out
}

async fn setup() -> (TestApp, String, String) {
    let app = spawn_app_with(consents()).await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    for p in ["alice", "frank"] {
        register(&app, &h1, p).await;
    }
    for (path, body) in resources() {
        let r = app.put(&format!("/fhir/{path}"), &h1, &body, &[]).await;
        assert_eq!(r.status, 201, "{path}: {}", r.text());
    }
    (app, h1, h2)
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|s| s.to_string()).collect()
}

/// What reads by id (and vreads of the current version, learnt from the custodian `h1`) let
/// `token` see of the test set.
async fn readable(app: &TestApp, token: &str, h1: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, _) in resources() {
        let read = app.get(&format!("/fhir/{path}"), token, &[]).await;
        assert!(
            read.status == 200 || read.status == 404,
            "{path}: {}",
            read.status
        );
        let current = app.get(&format!("/fhir/{path}"), h1, &[]).await.json();
        let version = current["meta"]["versionId"].as_str().unwrap().to_string();
        let vread = app
            .get(&format!("/fhir/{path}/_history/{version}"), token, &[])
            .await;
        assert_eq!(read.status, vread.status, "{path}: read and vread disagree");
        if read.status == 200 {
            out.insert(path);
        }
    }
    out
}

fn path_of(url: &str) -> String {
    url.find("/fhir/")
        .map(|i| url[i..].to_string())
        .unwrap_or_else(|| url.to_string())
}

/// Every match of a search, following `next` links: (`Type/id`s, total, page sizes).
async fn search_all(app: &TestApp, token: &str, path: &str) -> (Vec<String>, u64, Vec<usize>) {
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    // Counted on every page: the default gives a total only when one page holds all.
    let mut next = Some(format!("{path}&_total=accurate"));
    let mut total = None;
    while let Some(p) = next.take() {
        let r = app.get(&p, token, &[]).await;
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        let b = r.json();
        let t = b["total"].as_u64().unwrap();
        assert!(total.is_none_or(|prev| prev == t), "the total changed");
        total = Some(t);
        let matches: Vec<String> = b["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter(|e| e["search"]["mode"] == "match")
                    .map(|e| {
                        format!(
                            "{}/{}",
                            e["resource"]["resourceType"].as_str().unwrap(),
                            e["resource"]["id"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        sizes.push(matches.len());
        ids.extend(matches);
        next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| path_of(l["url"].as_str().unwrap()));
        assert!(sizes.len() < 50, "paging does not end");
    }
    (ids, total.unwrap_or(0), sizes)
}

/// Searches of every type in the set, broad and per patient, with small pages: exactly
/// `expected`, each once, exact totals, full pages.
async fn searches_agree(app: &TestApp, token: &str, expected: &BTreeSet<String>) {
    for kind in ["Observation", "Encounter", "DiagnosticReport"] {
        let of_kind: BTreeSet<String> = expected
            .iter()
            .filter(|p| p.starts_with(&format!("{kind}/")))
            .cloned()
            .collect();
        let (ids, total, sizes) = search_all(app, token, &format!("/fhir/{kind}?_count=2")).await;
        let found: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(found, of_kind, "{kind}: broad search vs reads");
        assert_eq!(ids.len(), found.len(), "{kind}: no resource on two pages");
        assert_eq!(total as usize, of_kind.len(), "{kind}: total");
        assert!(
            sizes.iter().rev().skip(1).all(|s| *s == 2),
            "{kind}: {sizes:?}"
        );
        let mut per_patient = BTreeSet::new();
        for patient in ["alice", "frank"] {
            let (ids, total, _) = search_all(
                app,
                token,
                &format!("/fhir/{kind}?patient=Patient/{patient}&_total=accurate&_count=1"),
            )
            .await;
            assert_eq!(total as usize, ids.len(), "{kind} {patient}: total");
            per_patient.extend(ids);
        }
        assert_eq!(per_patient, of_kind, "{kind}: per patient");
    }
}

#[actix_web::test]
async fn dependents_and_related_are_enforced_in_reads_and_searches() {
    let (app, h1, h2) = setup().await;
    let expected = set(&[
        // Alice: e1 and the Observations referring to it (relative or by this server's URL).
        "Encounter/e1",
        "Observation/a1",
        "Observation/a2",
        // Frank: r1 and the Observations in its `result`.
        "DiagnosticReport/r1",
        "Observation/f1",
        "Observation/f2",
    ]);
    assert_eq!(
        readable(&app, &h2, &h1).await,
        expected,
        "Hospital2's reads"
    );
    searches_agree(&app, &h2, &expected).await;
    // The custodian sees everything, as before.
    let everything: BTreeSet<String> = resources().into_iter().map(|(p, _)| p).collect();
    assert_eq!(readable(&app, &h1, &h1).await, everything);

    // The report's `result` changes: f1 leaves, f3 joins, in reads and searches alike.
    let r = app
        .put(
            "/fhir/DiagnosticReport/r1",
            &h1,
            &report(&["Observation/f2", "Observation/f3"]),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let moved = set(&[
        "Encounter/e1",
        "Observation/a1",
        "Observation/a2",
        "DiagnosticReport/r1",
        "Observation/f2",
        "Observation/f3",
    ]);
    assert_eq!(
        readable(&app, &h2, &h1).await,
        moved,
        "after the report changed"
    );
    searches_agree(&app, &h2, &moved).await;

    // An Observation stops referring to e1: out; another starts: in.
    let r = app
        .put("/fhir/Observation/a1", &h1, &obs("a1", "alice", None), &[])
        .await;
    assert_eq!(r.status, 200);
    // Its first version still refers to e1: a vread of it is one of e1's dependents.
    let old = app.get("/fhir/Observation/a1/_history/1", &h2, &[]).await;
    assert_eq!(old.status, 200);
    let r = app
        .put(
            "/fhir/Observation/a5",
            &h1,
            &obs("a5", "alice", Some("Encounter/e1")),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    // The report refers to no result any more: only it stays.
    let r = app
        .put("/fhir/DiagnosticReport/r1", &h1, &report(&[]), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let last = set(&[
        "Encounter/e1",
        "Observation/a2",
        "Observation/a5",
        "DiagnosticReport/r1",
    ]);
    assert_eq!(readable(&app, &h2, &h1).await, last, "after the changes");
    searches_agree(&app, &h2, &last).await;
    app.cleanup().await;
}

/// Resources stored before references were kept: what their references decide is left out
/// of searches (never shown) until the start-up backfill records them.
#[actix_web::test]
async fn references_of_older_resources_are_backfilled() {
    use diesel_async::RunQueryDsl;
    let (app, _h1, h2) = setup().await;
    let pool = custodian_database::pool(&app.database_url, 2).unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query("DELETE FROM access_reference_sets")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let count = |kind: &'static str, patient: &'static str| {
        let (app, h2) = (&app, h2.clone());
        async move {
            app.get(
                &format!("/fhir/{kind}?patient={patient}&_summary=count"),
                &h2,
                &[],
            )
            .await
            .json()["total"]
                .as_u64()
        }
    };
    assert_eq!(count("Observation", "alice").await, Some(0), "fails closed");
    assert_eq!(count("Observation", "frank").await, Some(0), "fails closed");
    assert_eq!(
        app.get("/fhir/Observation/f1", &h2, &[]).await.status,
        404,
        "a read fails closed too"
    );
    let cipher = records::crypto::RecordCipher::from_hex(&app.key_hex).unwrap();
    for _ in 0..2 {
        records::facts::backfill_references(&pool, &cipher, PUBLIC_URL)
            .await
            .unwrap();
        assert_eq!(count("Observation", "alice").await, Some(2));
        assert_eq!(count("Observation", "frank").await, Some(2));
        assert_eq!(count("Encounter", "alice").await, Some(1));
        assert_eq!(app.get("/fhir/Observation/f1", &h2, &[]).await.status, 200);
    }
    app.cleanup().await;
}
