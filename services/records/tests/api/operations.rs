//! Operations: `Patient/[id]/$everything` (parameters, keyset paging, access on every page),
//! `$meta`, `$meta-add` and `$meta-delete` (access decided as updates, no new version).

use std::{collections::BTreeSet, time::Duration};

use serde_json::{json, Value};

use crate::helpers::{
    condition, permit_types, register, spawn_app, spawn_app_with, weight, TestApp,
};

/// `Type/id` of every entry of a searchset (outcomes left out).
fn refs(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|x| x["search"]["mode"] == "match")
                .map(|x| {
                    format!(
                        "{}/{}",
                        x["resource"]["resourceType"].as_str().unwrap(),
                        x["resource"]["id"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(|u| {
            u.strip_prefix(crate::helpers::PUBLIC_URL)
                .unwrap_or(u)
                .to_string()
        })
}

/// Follows `next` links from `first`: every page's references, in order.
async fn all_pages(app: &TestApp, first: &str, token: &str, page_size: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut url = Some(first.to_string());
    while let Some(u) = url {
        let r = app.get(&u, token, &[]).await;
        assert_eq!(r.status, 200, "{u}: {}", r.text());
        let b = r.json();
        let page = refs(&b);
        assert!(page.len() <= page_size, "{b}");
        pages.push(page);
        url = next_link(&b);
        assert!(pages.len() < 100, "paging does not end");
    }
    pages
}

/// Alice (Hospital1's) with 5 Observations and 2 Conditions; Bob with one Observation.
async fn alice(app: &TestApp, h1: &str) -> BTreeSet<String> {
    register(app, h1, "alice").await;
    register(app, h1, "bob").await;
    let mut all = BTreeSet::from(["Patient/alice".to_string()]);
    for kg in 60..65 {
        let r = app
            .send_json(
                "POST",
                "/fhir/Observation",
                h1,
                &weight("Patient/alice", &kg.to_string()),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        all.insert(format!("Observation/{}", r.json()["id"].as_str().unwrap()));
    }
    for code in ["44054006", "38341003"] {
        let r = app
            .post("/fhir/Condition", h1, &condition("Patient/alice", code))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        all.insert(format!("Condition/{}", r.json()["id"].as_str().unwrap()));
    }
    app.send_json(
        "POST",
        "/fhir/Observation",
        h1,
        &weight("Patient/bob", "80"),
        &[],
    )
    .await;
    all
}

#[actix_web::test]
async fn everything_pages_by_keyset_without_duplicates_or_misses() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let all = alice(&app, &h1).await;

    // Unpaged (one page holds it all): a total.
    let whole = app.get("/fhir/Patient/alice/$everything", &h1, &[]).await;
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(whole.json()["total"], 8);
    assert!(next_link(&whole.json()).is_none());

    for size in [1, 2, 3, 7, 8] {
        let pages = all_pages(
            &app,
            &format!("/fhir/Patient/alice/$everything?_count={size}"),
            &h1,
            size,
        )
        .await;
        let flat: Vec<String> = pages.concat();
        let unique: BTreeSet<String> = flat.iter().cloned().collect();
        assert_eq!(flat.len(), unique.len(), "duplicates at _count={size}");
        assert_eq!(unique, all, "_count={size}");
        // Every page is full but the last, and the last is never empty.
        assert_eq!(pages.len(), all.len().div_ceil(size), "_count={size}");
    }
    // A paged answer has no total (it would need every page decided).
    let first = app
        .get("/fhir/Patient/alice/$everything?_count=2", &h1, &[])
        .await
        .json();
    assert!(first.get("total").is_none(), "{first}");
    assert!(next_link(&first).unwrap().contains("_cursor="));

    // _type, repeated or comma-separated.
    let conditions = app
        .get("/fhir/Patient/alice/$everything?_type=Condition", &h1, &[])
        .await
        .json();
    let got = refs(&conditions);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.starts_with("Condition/")));
    let two = app
        .get(
            "/fhir/Patient/alice/$everything?_type=Condition,Patient&_count=1",
            &h1,
            &[],
        )
        .await;
    assert_eq!(two.status, 200);
    let pages = all_pages(
        &app,
        "/fhir/Patient/alice/$everything?_type=Condition&_type=Patient&_count=1",
        &h1,
        1,
    )
    .await;
    assert_eq!(pages.concat().len(), 3);

    // _since: only what changed since.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "70"),
            &[],
        )
        .await;
    let newest = format!("Observation/{}", r.json()["id"].as_str().unwrap());
    let recent = app
        .get(
            &format!(
                "/fhir/Patient/alice/$everything?_since={}",
                urlencoding(&since)
            ),
            &h1,
            &[],
        )
        .await;
    assert_eq!(recent.status, 200, "{}", recent.text());
    assert_eq!(refs(&recent.json()), vec![newest.clone()]);
    // Its links keep _since.
    let paged = app
        .get(
            &format!(
                "/fhir/Patient/alice/$everything?_since={}&_count=1",
                urlencoding(&since)
            ),
            &h1,
            &[],
        )
        .await
        .json();
    assert!(paged["link"][0]["url"]
        .as_str()
        .unwrap()
        .contains("_since="));

    // POST with a Parameters body.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueCode": "Observation"},
        {"name": "_count", "valueInteger": 4}
    ]});
    let posted = app
        .post("/fhir/Patient/alice/$everything", &h1, &body)
        .await;
    assert_eq!(posted.status, 200, "{}", posted.text());
    let b = posted.json();
    assert_eq!(refs(&b).len(), 4);
    let rest = all_pages(&app, &next_link(&b).unwrap(), &h1, 4).await;
    assert_eq!(rest.concat().len(), 2);

    // Bad parameters are 400s, never 500s.
    for bad in [
        "_count=-1",
        "_count=x",
        "_type=Nope",
        "_since=yesterday",
        "_cursor=nonsense",
    ] {
        let r = app
            .get(&format!("/fhir/Patient/alice/$everything?{bad}"), &h1, &[])
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    for bad in [
        json!({"resourceType": "Patient"}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "_count"}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "_count", "valueInteger": -3}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "_type", "valueCoding": {"code": "Observation"}}]}),
    ] {
        let r = app.post("/fhir/Patient/alice/$everything", &h1, &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = app
        .send_json("POST", "/fhir/Patient/alice/$everything", &h1, "{", &[])
        .await;
    assert_eq!(r.status, 400);
    // Unknown parameters are named in an outcome (refused when strict).
    let lenient = app
        .get("/fhir/Patient/alice/$everything?foo=2020", &h1, &[])
        .await
        .json();
    assert!(lenient.to_string().contains("foo was ignored"), "{lenient}");
    let strict = app
        .get(
            "/fhir/Patient/alice/$everything?foo=2020",
            &h1,
            &[("Prefer", "handling=strict")],
        )
        .await;
    assert_eq!(strict.status, 400);

    // start/end: care dates (the date parameter); what has none stays.
    let later = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/alice"}, "effectiveDateTime": "2023-05-01"});
    let r = app.post("/fhir/Observation", &h1, &later).await;
    let in_2023 = format!("Observation/{}", r.json()["id"].as_str().unwrap());
    let undated: BTreeSet<String> = all
        .iter()
        .filter(|r| !r.starts_with("Observation/"))
        .cloned()
        .collect();
    let since_2021: BTreeSet<String> = refs(
        &app.get("/fhir/Patient/alice/$everything?start=2021", &h1, &[])
            .await
            .json(),
    )
    .into_iter()
    .collect();
    let mut expected = undated.clone();
    expected.insert(in_2023.clone());
    assert_eq!(since_2021, expected);
    let in_2020 = all_pages(
        &app,
        "/fhir/Patient/alice/$everything?start=2020-03-04&end=2020-12&_type=Observation&_count=2",
        &h1,
        2,
    )
    .await
    .concat();
    assert_eq!(in_2020.len(), 6, "{in_2020:?}"); // 5 weights and the one of _since
    assert!(!in_2020.contains(&in_2023));
    let before = app
        .post(
            "/fhir/Patient/alice/$everything",
            &h1,
            &json!({"resourceType": "Parameters", "parameter": [
                {"name": "end", "valueDate": "2019-12-31"}]}),
        )
        .await
        .json();
    assert_eq!(refs(&before).into_iter().collect::<BTreeSet<_>>(), undated);
    app.cleanup().await;
}

fn urlencoding(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

#[actix_web::test]
async fn everything_pages_show_only_what_the_caller_may_see() {
    // Alice lets Hospital2 see her Patient and Observations only.
    let app = spawn_app_with(vec![permit_types(
        "Consent/a",
        "Patient/alice",
        "Organization/h2",
        &["Patient", "Observation"],
    )])
    .await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (claims, h2) = app.practitioner("Organization/h2");
    let all = alice(&app, &h1).await;
    // A hidden Procedure comes last in (type, id) order.
    let r = app
        .post(
            "/fhir/Procedure",
            &h1,
            &json!({"resourceType": "Procedure", "status": "completed",
                    "subject": {"reference": "Patient/alice"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let observations: BTreeSet<String> = all
        .iter()
        .filter(|r| !r.starts_with("Condition/"))
        .cloned()
        .collect();
    for size in [1, 2, 6] {
        let pages = all_pages(
            &app,
            &format!("/fhir/Patient/alice/$everything?_count={size}"),
            &h2,
            size,
        )
        .await;
        let flat = pages.concat();
        assert_eq!(flat.len(), observations.len(), "_count={size}");
        assert_eq!(flat.into_iter().collect::<BTreeSet<_>>(), observations);
        // No page is empty: a next link is given only when something visible follows.
        assert!(pages.iter().all(|p| !p.is_empty()), "{pages:?}");
        assert_eq!(pages.len(), observations.len().div_ceil(size));
    }
    // The hidden Conditions are denied once per page that passed them: once per paging.
    let condition_denials = |e: &custodian_events::AccessEvent| {
        e.actor.id == claims.sub
            && e.outcome == custodian_events::AccessOutcome::Deny
            && e.resource_type.as_deref() == Some("Condition")
    };
    app.wait_for_events(3, condition_denials).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let denied = app.wait_for_events(3, condition_denials).await;
    assert_eq!(denied.len(), 3, "one per paging of three");

    // Hospital3 sees nothing of hers, on any page, with any cursor.
    let (_, h3) = app.practitioner("Organization/h3");
    for url in [
        "/fhir/Patient/alice/$everything?_count=1",
        "/fhir/Patient/alice/$everything?_count=1&_cursor=Condition/x",
        "/fhir/Patient/alice/$everything?_type=Observation",
    ] {
        let r = app.get(url, &h3, &[]).await;
        assert_eq!(r.status, 404, "{url}: {}", r.text());
        assert!(!r.text().contains("Observation/"), "{}", r.text());
    }
    let r = app
        .post(
            "/fhir/Patient/alice/$everything",
            &h3,
            &json!({"resourceType": "Parameters", "parameter": [{"name": "_count", "valueInteger": 1}]}),
        )
        .await;
    assert_eq!(r.status, 404);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_patient_gets_her_own_everything() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let all = alice(&app, &h1).await;
    let (_, own) = app.patient("Patient/alice");
    let pages = all_pages(&app, "/fhir/Patient/alice/$everything?_count=3", &own, 3).await;
    let flat: BTreeSet<String> = pages.concat().into_iter().collect();
    assert_eq!(flat, all);
    // One event per (type, patient) of a page, counting what it returned.
    let (claims, once) = app.patient("Patient/alice");
    let r = app.get("/fhir/Patient/alice/$everything", &once, &[]).await;
    assert_eq!(r.json()["total"], 8);
    app.wait_for_events(3, |e| e.actor.id == claims.sub).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = app.wait_for_events(3, |e| e.actor.id == claims.sub).await;
    let mut counts: Vec<(String, u32)> = events
        .iter()
        .map(|e| (e.resource_type.clone().unwrap_or_default(), e.count))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("Condition".to_string(), 2),
            ("Observation".to_string(), 5),
            ("Patient".to_string(), 1)
        ]
    );
    assert!(events
        .iter()
        .all(|e| e.patient.as_deref() == Some("Patient/alice")
            && e.action == custodian_events::AccessAction::Search));
    // Not Bob's.
    let r = app.get("/fhir/Patient/bob/$everything", &own, &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    app.cleanup().await;
}

const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

fn meta_body(meta: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "meta", "valueMeta": meta}]})
}

fn returned_meta(r: &crate::helpers::TestResponse) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["resourceType"], "Parameters", "{b}");
    assert_eq!(b["parameter"][0]["name"], "return");
    b["parameter"][0]["valueMeta"].clone()
}

/// Alice (Hospital1's) lets Hospital2 see her data for treatment, except what is labelled R.
fn alice_but_restricted() -> custodian_policy::ConsentChange {
    crate::helpers::consent_change(
        "Consent/alice",
        "Patient/alice",
        1,
        json!({
            "type": "permit",
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                       "reference": {"reference": "Organization/h2"}}],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            "provision": [{"type": "deny", "securityLabel": [{"system": CONFIDENTIALITY, "code": "R"}]}]
        }),
    )
}

#[actix_web::test]
async fn meta_add_and_delete_change_labels_in_place_and_access_follows() {
    let app = spawn_app_with(vec![alice_but_restricted()]).await;
    let (h1_claims, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let (_, h3) = app.practitioner("Organization/h3");
    register(&app, &h1, "alice").await;
    let r = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "60"),
            &[],
        )
        .await;
    let obs = format!("/fhir/Observation/{}", r.json()["id"].as_str().unwrap());

    // $meta is a read.
    let meta = returned_meta(&app.get(&format!("{obs}/$meta"), &h1, &[]).await);
    assert_eq!(meta["versionId"], "1");
    assert!(meta.get("security").is_none());
    let meta = returned_meta(&app.get(&format!("{obs}/_history/1/$meta"), &h2, &[]).await);
    assert_eq!(meta["versionId"], "1");
    assert_eq!(app.get(&format!("{obs}/$meta"), &h3, &[]).await.status, 404);
    assert_eq!(
        app.get("/fhir/Observation/nope/$meta", &h1, &[])
            .await
            .status,
        404
    );
    assert_eq!(app.get(&obs, &h2, &[]).await.status, 200);

    // Hospital3, which may not see it, can neither label it nor learn it exists.
    let restricted = meta_body(json!({"security": [{"system": CONFIDENTIALITY, "code": "R"}]}));
    let r = app
        .post(&format!("{obs}/$meta-add"), &h3, &restricted)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Hospital2 may update it, but not into data it may not see: a 403 (it may read it), and
    // nothing changes.
    let r = app
        .post(&format!("{obs}/$meta-add"), &h2, &restricted)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let meta = returned_meta(&app.get(&format!("{obs}/$meta"), &h2, &[]).await);
    assert!(meta.get("security").is_none(), "{meta}");

    // The custodian adds a tag and the R label: no new version, and reads show them.
    let r = app
        .post(
            &format!("{obs}/$meta-add"),
            &h1,
            &meta_body(json!({
                "tag": [{"system": "urn:custodian:test", "code": "reviewed"}],
                "security": [{"system": CONFIDENTIALITY, "code": "R"}],
                "profile": ["http://example.org/StructureDefinition/weight"]
            })),
        )
        .await;
    let meta = returned_meta(&r);
    assert_eq!(meta["versionId"], "1", "{meta}");
    assert_eq!(meta["tag"][0]["code"], "reviewed");
    assert_eq!(meta["security"][0]["code"], "R");
    // Again: sets, no duplicates.
    let meta = returned_meta(
        &app.post(&format!("{obs}/$meta-add"), &h1, &restricted)
            .await,
    );
    assert_eq!(meta["security"].as_array().unwrap().len(), 1);
    let read = app.get(&obs, &h1, &[]).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));
    let body = read.json();
    assert_eq!(body["meta"]["security"][0]["code"], "R");
    assert_eq!(body["meta"]["tag"][0]["code"], "reviewed");
    let history = app.get(&format!("{obs}/_history"), &h1, &[]).await.json();
    assert_eq!(history["entry"].as_array().unwrap().len(), 1);
    // The search index follows.
    let tagged = app
        .get(
            "/fhir/Observation?_tag=urn:custodian:test|reviewed",
            &h1,
            &[],
        )
        .await
        .json();
    assert_eq!(tagged["total"], 1, "{tagged}");
    // The update is recorded.
    app.wait_for_events(2, |e| {
        e.actor.id == h1_claims.sub
            && e.action == custodian_events::AccessAction::Update
            && e.outcome == custodian_events::AccessOutcome::Permit
    })
    .await;

    // At once, Hospital2 (whose consent excludes R) no longer sees it: read, $meta, search,
    // $everything.
    assert_eq!(app.get(&obs, &h2, &[]).await.status, 404);
    assert_eq!(app.get(&format!("{obs}/$meta"), &h2, &[]).await.status, 404);
    let search = app
        .get("/fhir/Observation?patient=Patient/alice", &h2, &[])
        .await
        .json();
    assert!(
        crate::helpers::entry_ids(&search, "match").is_empty(),
        "{search}"
    );
    let all = app
        .get("/fhir/Patient/alice/$everything", &h2, &[])
        .await
        .json();
    assert_eq!(refs(&all), vec!["Patient/alice".to_string()]);

    // Hospital2 may not take the label off (it may not even see the resource: 404).
    let r = app
        .post(&format!("{obs}/$meta-delete"), &h2, &restricted)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Nor may Alice (patients read their record, they do not relabel it).
    let (_, alice) = app.patient("Patient/alice");
    let r = app
        .post(&format!("{obs}/$meta-delete"), &alice, &restricted)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let body = app.get(&obs, &h1, &[]).await.json();
    assert_eq!(body["meta"]["security"][0]["code"], "R", "unchanged");

    // The custodian takes it off: Hospital2 sees it again.
    let meta = returned_meta(
        &app.post(&format!("{obs}/$meta-delete"), &h1, &restricted)
            .await,
    );
    assert!(meta.get("security").is_none(), "{meta}");
    assert_eq!(meta["tag"][0]["code"], "reviewed");
    assert_eq!(app.get(&obs, &h2, &[]).await.status, 200);
    app.cleanup().await;
}

#[actix_web::test]
async fn meta_operations_refuse_bad_requests() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    register(&app, &h1, "alice").await;
    let path = "/fhir/Patient/alice/$meta-add";
    for bad in [
        json!({"resourceType": "Patient"}),
        json!({"resourceType": "Parameters"}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "meta", "valueString": "R"}]}),
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "meta", "valueMeta": {"tag": [{"code": "a"}]}},
            {"name": "meta", "valueMeta": {"tag": [{"code": "b"}]}}]}),
        meta_body(json!({})),
        meta_body(json!({"tag": [{"system": "urn:x"}]})),
        meta_body(json!({"security": "R"})),
        meta_body(json!({"profile": [{"url": "x"}]})),
        meta_body(json!({"source": "urn:x"})),
    ] {
        let r = app.post(path, &h1, &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    let r = app.send_json("POST", path, &h1, "not json", &[]).await;
    assert_eq!(r.status, 400);
    // Unknown resources and types.
    let ok = meta_body(json!({"tag": [{"code": "a"}]}));
    assert_eq!(
        app.post("/fhir/Patient/nobody/$meta-add", &h1, &ok)
            .await
            .status,
        404
    );
    assert_eq!(
        app.post("/fhir/Nope/alice/$meta-add", &h1, &ok)
            .await
            .status,
        404
    );
    // A deleted resource: 410.
    let r = app
        .post(
            "/fhir/Observation",
            &h1,
            &serde_json::from_str::<Value>(&weight("Patient/alice", "1")).unwrap(),
        )
        .await;
    let obs = format!("/fhir/Observation/{}", r.json()["id"].as_str().unwrap());
    assert!(app.delete(&obs, &h1, &[]).await.status.is_success());
    assert_eq!(
        app.post(&format!("{obs}/$meta-add"), &h1, &ok).await.status,
        410
    );
    // What is in use across resources is not served: a 405 that says so.
    for path in ["/fhir/$meta", "/fhir/Observation/$meta"] {
        let r = app.get(path, &h1, &[]).await;
        assert_eq!(r.status, 405, "{path}: {}", r.text());
        assert!(r.text().contains("[type]/[id]/$meta"));
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn type_level_everything_pages_through_every_visible_patient() {
    // Carol lets Hospital2 see her Patient and Observations; Hospital2 holds Dave's record.
    let app = spawn_app_with(vec![permit_types(
        "Consent/c",
        "Patient/carol",
        "Organization/h2",
        &["Patient", "Observation"],
    )])
    .await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let alice = alice(&app, &h1).await;
    register(&app, &h1, "carol").await;
    register(&app, &h2, "dave").await;
    let mut h2_sees = BTreeSet::from(["Patient/carol".to_string(), "Patient/dave".to_string()]);
    for (patient, token) in [("carol", &h1), ("dave", &h2)] {
        for kg in ["50", "51"] {
            let r = app
                .send_json(
                    "POST",
                    "/fhir/Observation",
                    token,
                    &weight(&format!("Patient/{patient}"), kg),
                    &[],
                )
                .await;
            h2_sees.insert(format!("Observation/{}", r.json()["id"].as_str().unwrap()));
        }
    }
    // Carol's Condition is hidden from Hospital2.
    app.post(
        "/fhir/Condition",
        &h1,
        &condition("Patient/carol", "44054006"),
    )
    .await;
    for size in [1, 2, 3, 50] {
        let pages = all_pages(
            &app,
            &format!("/fhir/Patient/$everything?_count={size}"),
            &h2,
            size,
        )
        .await;
        let flat = pages.concat();
        let unique: BTreeSet<String> = flat.iter().cloned().collect();
        assert_eq!(flat.len(), unique.len(), "duplicates at _count={size}");
        assert_eq!(unique, h2_sees, "_count={size}");
        assert!(pages.iter().all(|p| !p.is_empty()), "{pages:?}");
    }
    // Hospital1 sees Alice's, Bob's and Carol's, none of Dave's.
    let pages = all_pages(&app, "/fhir/Patient/$everything?_count=4", &h1, 4).await;
    let flat: BTreeSet<String> = pages.concat().into_iter().collect();
    assert!(alice.is_subset(&flat));
    assert!(flat.contains("Patient/carol") && flat.contains("Patient/bob"));
    assert!(!flat.contains("Patient/dave"));
    // A patient: only her own.
    let (_, own) = app.patient("Patient/alice");
    let pages = all_pages(&app, "/fhir/Patient/$everything?_count=3", &own, 3).await;
    let flat: BTreeSet<String> = pages.concat().into_iter().collect();
    assert_eq!(flat, alice);
    // _type applies; a cursor naming a patient one may not see gives nothing of hers.
    let only = app
        .get("/fhir/Patient/$everything?_type=Patient", &h2, &[])
        .await
        .json();
    assert_eq!(refs(&only).len(), 2);
    let r = app
        .get(
            "/fhir/Patient/$everything?_cursor=alice/Observation/x",
            &h2,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("Patient/alice"));
    assert_eq!(
        app.get("/fhir/Patient/$everything?_cursor=a%20b", &h2, &[])
            .await
            .status,
        400
    );
    app.cleanup().await;
}
