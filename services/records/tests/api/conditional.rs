//! Consents whose answer depends on the data (security labels, codes, data periods, named
//! instances): searches, counts and pages see exactly what reads by id see.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{consent_change, register, spawn_app_with, TestApp};

const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";

fn actor(reference: &str) -> Value {
    json!({
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
        "reference": {"reference": reference}
    })
}

fn treat() -> Value {
    json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}])
}

/// Hospital2 for treatment, with `extra` merged into the root provision.
fn permit_h2(extra: Value) -> Value {
    let mut p = json!({"type": "permit", "actor": [actor("Organization/h2")], "purpose": treat()});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            p.insert(k.clone(), v.clone());
        }
    }
    p
}

/// The consents of the test set.
fn consents() -> Vec<custodian_policy::ConsentChange> {
    vec![
        // Alice: Hospital2 for treatment, except data labelled R (or above).
        consent_change(
            "Consent/alice",
            "Patient/alice",
            1,
            permit_h2(json!({"provision": [{"type": "deny",
                "securityLabel": [{"system": CONFIDENTIALITY, "code": "R"}]}]})),
        ),
        // Bob: Hospital2, except one SNOMED code.
        consent_change(
            "Consent/bob",
            "Patient/bob",
            1,
            permit_h2(json!({"provision": [{"type": "deny",
                "code": [{"coding": [{"system": SNOMED, "code": "1234"}]}]}]})),
        ),
        // Carol: Hospital2, for data of 2020 only.
        consent_change(
            "Consent/carol",
            "Patient/carol",
            1,
            permit_h2(json!({"dataPeriod": {"start": "2020-01-01", "end": "2020-12-31"}})),
        ),
        // Dave: Hospital2, one named Observation.
        consent_change(
            "Consent/dave",
            "Patient/dave",
            1,
            permit_h2(json!({"data": [{"meaning": "instance",
                "reference": {"reference": "Observation/d1"}}]})),
        ),
        // Erin: her custodian (Hospital1) may not see one code (it may still record it); the
        // rest it holds as usual.
        consent_change(
            "Consent/erin",
            "Patient/erin",
            1,
            json!({"type": "deny", "actor": [actor("Organization/h1")],
                   "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
                   "code": [{"coding": [{"system": LOINC, "code": "X"}]}]}),
        ),
    ]
}

fn obs(id: &str, patient: &str, coding: Value, date: Option<&str>, labels: Value) -> Value {
    let mut o = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [coding]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 1, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    });
    if let Some(date) = date {
        o["effectiveDateTime"] = json!(date);
    }
    if labels.as_array().is_some_and(|l| !l.is_empty()) {
        o["meta"] = json!({"security": labels});
    }
    o
}

fn loinc(code: &str) -> Value {
    json!({"system": LOINC, "code": code})
}

fn label(system: Option<&str>, code: &str) -> Value {
    match system {
        Some(s) => json!({"system": s, "code": code}),
        None => json!({"code": code}),
    }
}

/// The test set: (id, resource). Everything is held by Hospital1.
fn resources() -> Vec<(String, Value)> {
    let d = Some("2020-03-04T10:00:00Z");
    let normal = json!([]);
    let r = json!([label(Some(CONFIDENTIALITY), "R")]);
    let mut out = Vec::new();
    let mut add = |id: &str, v: Value| out.push((id.to_string(), v));
    // Alice: 6 she lets Hospital2 see, 4 she does not.
    for i in 1..=4 {
        add(
            &format!("a{i}"),
            obs(
                &format!("a{i}"),
                "alice",
                loinc("29463-7"),
                d,
                normal.clone(),
            ),
        );
    }
    add(
        "a5",
        obs(
            "a5",
            "alice",
            loinc("29463-7"),
            d,
            json!([label(Some(CONFIDENTIALITY), "N")]),
        ),
    );
    add(
        "a6",
        obs(
            "a6",
            "alice",
            loinc("29463-7"),
            d,
            json!([label(None, "L"), label(Some("http://other"), "R")]),
        ),
    );
    add("a7", obs("a7", "alice", loinc("29463-7"), d, r.clone()));
    add(
        "a8",
        obs(
            "a8",
            "alice",
            loinc("29463-7"),
            d,
            json!([label(None, "R")]),
        ),
    );
    add(
        "a9",
        obs(
            "a9",
            "alice",
            loinc("29463-7"),
            d,
            json!([label(Some(CONFIDENTIALITY), "V")]),
        ),
    );
    add(
        "a10",
        obs(
            "a10",
            "alice",
            loinc("29463-7"),
            None,
            json!([
                label(Some(CONFIDENTIALITY), "L"),
                label(Some(CONFIDENTIALITY), "R")
            ]),
        ),
    );
    // Bob: the SNOMED code is hidden whatever the coding's system says, except another system.
    add("b1", obs("b1", "bob", loinc("29463-7"), d, normal.clone()));
    add(
        "b2",
        obs(
            "b2",
            "bob",
            json!({"system": SNOMED, "code": "1234"}),
            d,
            normal.clone(),
        ),
    );
    add(
        "b3",
        obs("b3", "bob", json!({"code": "1234"}), d, normal.clone()),
    );
    add("b4", obs("b4", "bob", loinc("1234"), d, normal.clone()));
    // Carol: inside 2020, outside, touching its edges, and no date at all.
    add(
        "c1",
        obs("c1", "carol", loinc("29463-7"), d, normal.clone()),
    );
    add(
        "c2",
        obs(
            "c2",
            "carol",
            loinc("29463-7"),
            Some("2020-07"),
            normal.clone(),
        ),
    );
    add(
        "c3",
        obs(
            "c3",
            "carol",
            loinc("29463-7"),
            Some("2019-12-31T23:59:59Z"),
            normal.clone(),
        ),
    );
    add(
        "c4",
        obs(
            "c4",
            "carol",
            loinc("29463-7"),
            Some("2021-01-01T00:00:00Z"),
            normal.clone(),
        ),
    );
    add(
        "c5",
        obs("c5", "carol", loinc("29463-7"), None, normal.clone()),
    );
    add(
        "c6",
        obs(
            "c6",
            "carol",
            loinc("29463-7"),
            Some("2020-12-31T23:59:59.5Z"),
            normal.clone(),
        ),
    );
    // Dave: one instance named.
    add("d1", obs("d1", "dave", loinc("29463-7"), d, normal.clone()));
    add("d2", obs("d2", "dave", loinc("29463-7"), d, normal.clone()));
    // Erin: one code her custodian may not see.
    add("e1", obs("e1", "erin", loinc("X"), d, normal.clone()));
    add("e2", obs("e2", "erin", loinc("Y"), d, normal.clone()));
    add(
        "e3",
        obs("e3", "erin", json!({"code": "X"}), d, normal.clone()),
    );
    add("e4", obs("e4", "erin", loinc("Z"), d, r));
    out
}

async fn setup() -> (TestApp, String, String) {
    let app = spawn_app_with(consents()).await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    for p in ["alice", "bob", "carol", "dave", "erin"] {
        register(&app, &h1, p).await;
    }
    for (id, body) in resources() {
        let r = app
            .put(&format!("/fhir/Observation/{id}"), &h1, &body, &[])
            .await;
        assert_eq!(r.status, 201, "{id}: {}", r.text());
    }
    (app, h1, h2)
}

/// The path of an absolute link.
fn path_of(url: &str) -> String {
    url.find("/fhir/")
        .map(|i| url[i..].to_string())
        .unwrap_or_else(|| url.to_string())
}

/// Every match of a search, following `next` links: (ids in order, total, page sizes).
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
        assert!(
            total.is_none_or(|prev| prev == t),
            "the total changed between pages"
        );
        total = Some(t);
        let matches: Vec<String> = b["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter(|e| e["search"]["mode"] == "match")
                    .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
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

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// What reads by id (and vreads and histories, which agree) let `token` see of the test set.
async fn readable(app: &TestApp, token: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (id, _) in resources() {
        let read = app
            .get(&format!("/fhir/Observation/{id}"), token, &[])
            .await;
        let vread = app
            .get(&format!("/fhir/Observation/{id}/_history/1"), token, &[])
            .await;
        let history = app
            .get(&format!("/fhir/Observation/{id}/_history"), token, &[])
            .await;
        assert_eq!(read.status, vread.status, "{id}: read and vread disagree");
        assert_eq!(
            read.status, history.status,
            "{id}: read and history disagree"
        );
        assert!(
            read.status == 200 || read.status == 404,
            "{id}: {}",
            read.status
        );
        if read.status == 200 {
            out.insert(id);
        }
    }
    out
}

fn of(patient_prefix: char, ids: &BTreeSet<String>) -> BTreeSet<String> {
    ids.iter()
        .filter(|id| id.starts_with(patient_prefix))
        .cloned()
        .collect()
}

#[actix_web::test]
async fn searches_see_exactly_what_reads_see() {
    let (app, h1, h2) = setup().await;

    // What reads decide, resource by resource.
    let h2_reads = readable(&app, &h2).await;
    assert_eq!(
        h2_reads,
        set(&["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b4", "c1", "c2", "c6", "d1"]),
        "Hospital2's reads"
    );
    let h1_reads = readable(&app, &h1).await;
    let everything: BTreeSet<String> = resources().into_iter().map(|(id, _)| id).collect();
    let hidden_from_h1 = set(&["e1", "e3"]);
    assert_eq!(
        h1_reads,
        everything.difference(&hidden_from_h1).cloned().collect(),
        "the custodian sees all but the code Erin denies it"
    );

    for (token, reads) in [(&h2, &h2_reads), (&h1, &h1_reads)] {
        // A broad search, paged across the conditional patients: the same set, exact totals.
        let (ids, total, sizes) = search_all(&app, token, "/fhir/Observation?_count=3").await;
        let found: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(&found, reads, "broad search vs reads");
        assert_eq!(ids.len(), found.len(), "no resource on two pages");
        assert_eq!(total as usize, reads.len(), "total");
        assert!(
            sizes.iter().rev().skip(1).all(|s| *s == 3),
            "full pages: {sizes:?}"
        );
        // A broad search by code.
        let (ids, total, _) = search_all(
            &app,
            token,
            "/fhir/Observation?code=http://loinc.org|29463-7&_count=4",
        )
        .await;
        let loinc: BTreeSet<String> = resources()
            .into_iter()
            .filter(|(_, v)| v["code"]["coding"][0] == loinc("29463-7"))
            .map(|(id, _)| id)
            .filter(|id| reads.contains(id))
            .collect();
        assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), loinc);
        assert_eq!(total as usize, loinc.len());
        // Each patient named, with `_total` asked for and small pages.
        for (prefix, patient) in [
            ('a', "alice"),
            ('b', "bob"),
            ('c', "carol"),
            ('d', "dave"),
            ('e', "erin"),
        ] {
            let expected = of(prefix, reads);
            let (ids, total, sizes) = search_all(
                &app,
                token,
                &format!("/fhir/Observation?patient=Patient/{patient}&_total=accurate&_count=2"),
            )
            .await;
            assert_eq!(
                ids.iter().cloned().collect::<BTreeSet<_>>(),
                expected,
                "{patient}"
            );
            assert_eq!(total as usize, expected.len(), "{patient}: total");
            assert!(
                sizes.iter().rev().skip(1).all(|s| *s == 2),
                "{patient}: {sizes:?}"
            );
            // `_summary=count`: the same number, no entries.
            let count = app
                .get(
                    &format!("/fhir/Observation?patient={patient}&_summary=count"),
                    token,
                    &[],
                )
                .await
                .json();
            assert_eq!(
                count["total"].as_u64(),
                Some(expected.len() as u64),
                "{patient}"
            );
            assert!(count["entry"].as_array().is_none_or(|e| e.is_empty()));
        }
    }

    // Including from a conditional compartment: each included resource decided on its facts.
    let b = app
        .get(
            "/fhir/Patient?_id=alice&_revinclude=Observation:subject",
            &h2,
            &[],
        )
        .await
        .json();
    let included: BTreeSet<String> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(included, of('a', &h2_reads));
    // `$everything` agrees too.
    let b = app
        .get("/fhir/Patient/alice/$everything", &h2, &[])
        .await
        .json();
    let observations: BTreeSet<String> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(observations, of('a', &h2_reads));
    app.cleanup().await;
}

#[actix_web::test]
async fn a_search_records_the_consent_that_admitted_each_resource() {
    let (app, _h1, h2) = setup().await;
    let r = app
        .get("/fhir/Observation?patient=alice", &h2, &[])
        .await
        .json();
    assert_eq!(r["total"], 6);
    let events = app
        .wait_for_events(1, |e| {
            e.action == custodian_events::AccessAction::Search
                && e.patient.as_deref() == Some("Patient/alice")
                && e.count > 0
        })
        .await;
    assert_eq!(events.len(), 1, "one event for her page");
    let decision = events[0].decision.as_ref().unwrap();
    assert_eq!(decision.basis, "consent");
    assert_eq!(decision.consents, vec!["Consent/alice"]);
    assert_eq!(events[0].count, 6);
    app.cleanup().await;
}

async fn alice_count(app: &TestApp, token: &str) -> Option<u64> {
    app.get("/fhir/Observation?patient=alice&_summary=count", token, &[])
        .await
        .json()["total"]
        .as_u64()
}

#[actix_web::test]
async fn a_change_of_labels_moves_a_resource_in_or_out_of_searches() {
    let (app, h1, h2) = setup().await;
    assert_eq!(alice_count(&app, &h2).await, Some(6));
    // Relabelled R: out of the search (and of reads).
    let mut a1 = obs(
        "a1",
        "alice",
        loinc("29463-7"),
        Some("2020-03-04"),
        json!([label(Some(CONFIDENTIALITY), "R")]),
    );
    assert_eq!(
        app.put("/fhir/Observation/a1", &h1, &a1, &[]).await.status,
        200
    );
    assert_eq!(alice_count(&app, &h2).await, Some(5));
    assert_eq!(app.get("/fhir/Observation/a1", &h2, &[]).await.status, 404);
    // And back.
    a1.as_object_mut().unwrap().remove("meta");
    assert_eq!(
        app.put("/fhir/Observation/a1", &h1, &a1, &[]).await.status,
        200
    );
    assert_eq!(alice_count(&app, &h2).await, Some(6));
    assert_eq!(app.get("/fhir/Observation/a1", &h2, &[]).await.status, 200);
    app.cleanup().await;
}

/// Resources stored before access facts were kept: left out of conditional searches (never
/// shown) until the start-up backfill records their facts.
#[actix_web::test]
async fn facts_of_older_resources_are_backfilled() {
    use diesel_async::RunQueryDsl;
    let (app, h1, h2) = setup().await;
    let pool = custodian_database::pool(&app.database_url, 2).unwrap();
    {
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query("DELETE FROM access_facts")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let erin_count = |token: String| {
        let app = &app;
        async move {
            app.get("/fhir/Observation?patient=erin&_summary=count", &token, &[])
                .await
                .json()["total"]
                .as_u64()
        }
    };
    assert_eq!(alice_count(&app, &h2).await, Some(0), "fails closed");
    assert_eq!(erin_count(h1.clone()).await, Some(0), "fails closed");
    let cipher = records::crypto::RecordCipher::from_hex(&app.key_hex).unwrap();
    records::facts::backfill(
        &pool,
        &cipher,
        custodian_fhir_search::registry::Registry::global(),
        crate::helpers::PUBLIC_URL,
    )
    .await
    .unwrap();
    assert_eq!(alice_count(&app, &h2).await, Some(6));
    assert_eq!(erin_count(h1.clone()).await, Some(2));
    // Once more: nothing left to do.
    records::facts::backfill(
        &pool,
        &cipher,
        custodian_fhir_search::registry::Registry::global(),
        crate::helpers::PUBLIC_URL,
    )
    .await
    .unwrap();
    assert_eq!(alice_count(&app, &h2).await, Some(6));
    app.cleanup().await;
}
