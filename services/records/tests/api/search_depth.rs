//! Search at depth: lenient handling, chains, `_has`, `:iterate` includes, `_summary`,
//! `_elements`, `_total`, `:identifier`, `:above`; and that none of them shows a caller data
//! she may not see.
//!
//! Hospital 1 (h1) holds Alice (family Peterson) and her GP, Dr Welby. Hospital 2 (h2) holds
//! Carol (Secretname: h1 may see nothing of hers), Dave (Hiddenname: h1 may see his
//! Observations, not his Patient) and Erin (h1 may see her Patient, not her Observations).

use serde_json::{json, Value};

use crate::helpers::{
    entry_ids, patient_resource, permit_types, spawn_app_with, TestApp, TestResponse,
};

pub(crate) fn observation(id: &str, patient: &str, code: &str) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": patient},
        "effectiveDateTime": "2021-01-01"
    })
}

pub(crate) async fn put(app: &TestApp, token: &str, resource: Value) {
    let path = format!(
        "/fhir/{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let r = app.put(&path, token, &resource, &[]).await;
    assert!(r.status == 201 || r.status == 200, "{path}: {}", r.text());
}

pub(crate) struct World {
    pub app: TestApp,
    pub h1: String,
    pub h2: String,
}

pub(crate) async fn world() -> World {
    let app = spawn_app_with(vec![
        permit_types(
            "Consent/d",
            "Patient/dave",
            "Organization/h1",
            &["Observation"],
        ),
        permit_types("Consent/e", "Patient/erin", "Organization/h1", &["Patient"]),
    ])
    .await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    put(
        &app,
        &h1,
        json!({"resourceType": "Practitioner", "id": "welby", "name": [{"family": "Welby"}]}),
    )
    .await;
    let mut alice = patient_resource("alice", "Peterson", "Alice");
    alice["generalPractitioner"] = json!([{"reference": "Practitioner/welby"}]);
    alice["identifier"] = json!([{
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
        "system": "urn:mrn", "value": "A-1"
    }]);
    alice["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Alice</div>"});
    put(&app, &h1, alice).await;
    let mut carol = patient_resource("carol", "Secretname", "Carol");
    carol["generalPractitioner"] = json!([{"reference": "Practitioner/welby"}]);
    put(&app, &h2, carol).await;
    put(&app, &h2, patient_resource("dave", "Hiddenname", "Dave")).await;
    put(&app, &h2, patient_resource("erin", "Visible", "Erin")).await;

    let mut a1 = observation("a1", "Patient/alice", "1234-5");
    a1["subject"]["identifier"] = json!({"system": "urn:mrn", "value": "A-1"});
    a1["meta"] = json!({"profile": ["http://example.org/fhir/StructureDefinition/weight"]});
    // Alice's observation lists Carol's as a member (a hidden resource one step away).
    a1["hasMember"] = json!([{"reference": "Observation/c1"}]);
    a1["valueQuantity"] = json!({"value": 7, "system": "http://unitsofmeasure.org", "code": "kg"});
    put(&app, &h1, a1).await;
    put(&app, &h2, observation("c1", "Patient/carol", "9999-9")).await;
    put(&app, &h2, observation("d1", "Patient/dave", "7777-7")).await;
    put(&app, &h2, observation("e1", "Patient/erin", "8888-8")).await;
    put(
        &app,
        &h1,
        json!({"resourceType": "Encounter", "id": "enc-a", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/alice"}}),
    )
    .await;
    put(
        &app,
        &h1,
        json!({"resourceType": "Provenance", "id": "prov-a1",
               "target": [{"reference": "Observation/a1"}],
               "recorded": "2021-01-01T00:00:00Z",
               "agent": [{"who": {"reference": "Practitioner/welby"}}]}),
    )
    .await;
    World { app, h1, h2 }
}

pub(crate) async fn search(w: &World, token: &str, query: &str) -> Value {
    let r = w.app.get(query, token, &[]).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    r.json()
}

pub(crate) fn matches(bundle: &Value) -> Vec<String> {
    let mut ids = entry_ids(bundle, "match");
    ids.sort();
    ids
}

pub(crate) fn outcome(bundle: &Value) -> Option<&Value> {
    bundle["entry"]
        .as_array()?
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .map(|e| &e["resource"])
}

#[actix_web::test]
async fn unknown_parameters_follow_prefer_handling() {
    let w = world().await;
    let lenient = search(
        &w,
        &w.h1,
        "/fhir/Patient?family=peterson&colour=blue&_totalMethod=x",
    )
    .await;
    assert_eq!(matches(&lenient), vec!["alice"]);
    let warning = outcome(&lenient).expect("an outcome entry");
    assert_eq!(warning["resourceType"], "OperationOutcome");
    assert_eq!(warning["issue"][0]["severity"], "warning");
    let text = warning.to_string();
    assert!(
        text.contains("colour") && text.contains("_totalMethod"),
        "{text}"
    );
    let self_link = lenient["link"][0]["url"].as_str().unwrap();
    assert!(
        !self_link.contains("colour") && self_link.contains("family=peterson"),
        "{self_link}"
    );

    let strict: TestResponse = w
        .app
        .get(
            "/fhir/Patient?colour=blue",
            &w.h1,
            &[("Prefer", "handling=strict")],
        )
        .await;
    assert_eq!(strict.status, 400);
    assert_eq!(strict.json()["resourceType"], "OperationOutcome");
    // Malformed values of known parameters are a 400 either way.
    assert_eq!(
        w.app
            .get("/fhir/Patient?birthdate=someday", &w.h1, &[])
            .await
            .status,
        400
    );
    let strict_ok = w
        .app
        .get(
            "/fhir/Patient?family=peterson",
            &w.h1,
            &[("Prefer", "handling=strict")],
        )
        .await;
    assert_eq!(strict_ok.status, 200);
    assert!(outcome(&strict_ok.json()).is_none());
    w.app.cleanup().await;
}

#[actix_web::test]
async fn chains_of_any_depth_match_through_visible_resources_only() {
    let w = world().await;
    for q in [
        "/fhir/Observation?subject:Patient.name=peterson",
        "/fhir/Observation?subject.name=peterson",
        "/fhir/Observation?subject.name:exact=Peterson",
        "/fhir/Observation?patient.general-practitioner.name=welby",
        "/fhir/Observation?subject:Patient._id=alice",
    ] {
        assert_eq!(matches(&search(&w, &w.h1, q).await), vec!["a1"], "{q}");
    }
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Encounter?subject.general-practitioner.name=welby"
            )
            .await
        ),
        vec!["enc-a"]
    );
    assert!(
        matches(&search(&w, &w.h1, "/fhir/Observation?subject.name:exact=peterson").await)
            .is_empty()
    );
    // No target of subject has the parameter: 400 (also when lenient).
    assert_eq!(
        w.app
            .get("/fhir/Observation?subject.colour=x", &w.h1, &[])
            .await
            .status,
        400
    );

    // Attacks. Carol: nothing of hers is visible to h1.
    let carol = search(&w, &w.h1, "/fhir/Observation?subject.name=secretname").await;
    assert_eq!(carol["total"], 0);
    assert!(matches(&carol).is_empty());
    // Dave: h1 sees his Observation but not his Patient, so it cannot learn his name by a chain.
    assert_eq!(
        matches(&search(&w, &w.h1, "/fhir/Observation?code=7777-7").await),
        vec!["d1"]
    );
    let dave = search(&w, &w.h1, "/fhir/Observation?subject.name=hiddenname").await;
    assert_eq!(dave["total"], 0, "{dave}");
    assert!(matches(&dave).is_empty());
    let dave = search(
        &w,
        &w.h1,
        "/fhir/Observation?code=7777-7&subject:Patient.family=hidden",
    )
    .await;
    assert_eq!(dave["total"], 0);
    // The custodian finds both.
    assert_eq!(
        matches(&search(&w, &w.h2, "/fhir/Observation?subject.name=hiddenname").await),
        vec!["d1"]
    );
    assert_eq!(
        matches(&search(&w, &w.h2, "/fhir/Observation?subject.name=secretname").await),
        vec!["c1"]
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn reverse_chains_match_through_visible_referrers_only() {
    let w = world().await;
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Patient?_has:Observation:patient:code=1234-5"
            )
            .await
        ),
        vec!["alice"]
    );
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Patient?_has:Observation:patient:_has:Provenance:target:agent=Practitioner/welby"
            )
            .await
        ),
        vec!["alice"]
    );
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Practitioner?_has:Patient:general-practitioner:name=peterson"
            )
            .await
        ),
        vec!["welby"]
    );
    // Attacks. Erin's Patient is visible to h1, her Observations are not: `_has` must not say
    // which codes she has.
    assert_eq!(
        matches(&search(&w, &w.h1, "/fhir/Patient?_id=erin").await),
        vec!["erin"]
    );
    let erin = search(
        &w,
        &w.h1,
        "/fhir/Patient?_has:Observation:patient:code=8888-8",
    )
    .await;
    assert_eq!(erin["total"], 0, "{erin}");
    // Carol is Welby's patient too, but h1 may not know it.
    assert!(matches(
        &search(
            &w,
            &w.h1,
            "/fhir/Practitioner?_has:Patient:general-practitioner:name=secretname"
        )
        .await
    )
    .is_empty());
    let carol = search(
        &w,
        &w.h1,
        "/fhir/Patient?_has:Observation:patient:code=9999-9",
    )
    .await;
    assert_eq!(carol["total"], 0);
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h2,
                "/fhir/Patient?_has:Observation:patient:code=8888-8"
            )
            .await
        ),
        vec!["erin"]
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn iterate_and_wildcard_includes_show_only_visible_resources() {
    let w = world().await;
    let b = search(
        &w,
        &w.h1,
        "/fhir/Observation?_id=a1&_include=Observation:subject&_include:iterate=Patient:general-practitioner",
    )
    .await;
    assert_eq!(matches(&b), vec!["a1"]);
    let mut included = entry_ids(&b, "include");
    included.sort();
    assert_eq!(included, vec!["alice", "welby"], "{b}");
    // Without :iterate, an include of another type than the searched one is refused.
    let refused = w
        .app
        .get(
            "/fhir/Observation?_id=a1&_include=Observation:subject&_include=Patient:general-practitioner",
            &w.h1,
            &[],
        )
        .await;
    assert_eq!(refused.status, 400);
    // `*`: every reference parameter; Carol's observation (has-member) is hidden, and so is
    // anything reached through it.
    let b = search(
        &w,
        &w.h1,
        "/fhir/Observation?_id=a1&_include=*&_include:iterate=Observation:subject&_revinclude:iterate=Provenance:target",
    )
    .await;
    let mut included = entry_ids(&b, "include");
    included.sort();
    assert_eq!(included, vec!["alice", "prov-a1"], "{b}");
    let text = b.to_string();
    assert!(
        !text.contains("Secretname") && !text.contains("9999-9"),
        "{text}"
    );
    // The custodian of both sees Carol's too (h2 holds Carol, not Alice: nothing of Alice's).
    let b = search(
        &w,
        &w.h2,
        "/fhir/Observation?_id=c1&_include=Observation:subject&_include:iterate=Patient:general-practitioner",
    )
    .await;
    let mut included = entry_ids(&b, "include");
    included.sort();
    assert_eq!(included, vec!["carol", "welby"]);
    w.app.cleanup().await;
}

#[actix_web::test]
async fn summary_elements_and_total() {
    let w = world().await;
    let subsetted = |r: &Value| {
        r["meta"]["tag"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["code"] == "SUBSETTED"))
    };
    let b = search(&w, &w.h1, "/fhir/Patient?_id=alice&_elements=name").await;
    let alice = &b["entry"][0]["resource"];
    assert_eq!(alice["name"][0]["family"], "Peterson");
    assert!(
        alice.get("gender").is_none() && alice.get("birthDate").is_none(),
        "{alice}"
    );
    assert!(subsetted(alice));
    let b = search(&w, &w.h1, "/fhir/Patient?_id=alice&_summary=true").await;
    let alice = &b["entry"][0]["resource"];
    assert!(
        alice.get("text").is_none() && alice.get("gender").is_some(),
        "{alice}"
    );
    assert!(subsetted(alice));
    let b = search(&w, &w.h1, "/fhir/Patient?_id=alice&_summary=text").await;
    let alice = &b["entry"][0]["resource"];
    assert!(
        alice.get("text").is_some() && alice.get("name").is_none(),
        "{alice}"
    );
    let b = search(&w, &w.h1, "/fhir/Patient?_id=alice&_summary=data").await;
    let alice = &b["entry"][0]["resource"];
    assert!(
        alice.get("text").is_none() && alice.get("name").is_some(),
        "{alice}"
    );
    // `_summary` applies to included resources too.
    let b = search(
        &w,
        &w.h1,
        "/fhir/Observation?_id=a1&_include=Observation:subject&_summary=text",
    )
    .await;
    let included = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "include")
        .unwrap();
    assert!(included["resource"].get("name").is_none() && subsetted(&included["resource"]));
    // On read.
    let read = w
        .app
        .get("/fhir/Patient/alice?_summary=true", &w.h1, &[])
        .await;
    assert_eq!(read.status, 200);
    let r = read.json();
    assert!(r.get("text").is_none() && subsetted(&r), "{r}");
    let read = w
        .app
        .get("/fhir/Patient/alice?_elements=gender", &w.h1, &[])
        .await
        .json();
    assert!(read.get("name").is_none() && read["gender"] == "female");
    assert_eq!(
        w.app
            .get("/fhir/Patient/alice?_summary=maybe", &w.h1, &[])
            .await
            .status,
        400
    );

    // _total.
    let none = search(&w, &w.h1, "/fhir/Observation?_total=none&_count=1").await;
    assert!(none.get("total").is_none(), "{none}");
    assert!(none["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "next"));
    let accurate = search(&w, &w.h1, "/fhir/Observation?_total=accurate").await;
    // a1 (Alice's) and d1 (Dave's, by consent); never Carol's or Erin's.
    assert_eq!(accurate["total"], 2);
    assert_eq!(
        search(&w, &w.h1, "/fhir/Observation?_total=estimate").await["total"],
        2
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn identifier_above_and_composites() {
    let w = world().await;
    let mr = "http://terminology.hl7.org/CodeSystem/v2-0203|MR";
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                &format!("/fhir/Patient?identifier:of-type={mr}|A-1")
            )
            .await
        ),
        vec!["alice"]
    );
    assert!(matches(
        &search(
            &w,
            &w.h1,
            &format!("/fhir/Patient?identifier:of-type={mr}|A-2")
        )
        .await
    )
    .is_empty());
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Observation?code-value-quantity=http://loinc.org|1234-5$gt5"
            )
            .await
        ),
        vec!["a1"]
    );
    assert!(matches(
        &search(
            &w,
            &w.h1,
            "/fhir/Observation?code-value-quantity=1234-5$gt10"
        )
        .await
    )
    .is_empty());
    assert!(matches(
        &search(
            &w,
            &w.h1,
            "/fhir/Observation?code-value-quantity=7777-7$gt5"
        )
        .await
    )
    .is_empty());
    assert_eq!(
        w.app
            .get("/fhir/Observation?code-value-quantity=1234-5", &w.h1, &[])
            .await
            .status,
        400
    );
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Observation?subject:identifier=urn:mrn|A-1"
            )
            .await
        ),
        vec!["a1"]
    );
    assert!(matches(
        &search(
            &w,
            &w.h1,
            "/fhir/Observation?subject:identifier=urn:mrn|B-2"
        )
        .await
    )
    .is_empty());
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Observation?_profile:above=http://example.org/fhir/StructureDefinition/weight/v2"
            )
            .await
        ),
        vec!["a1"]
    );
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Observation?_profile:below=http://example.org/fhir"
            )
            .await
        ),
        vec!["a1"]
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn default_order_pages_by_cursor() {
    let w = world().await;
    let mut next = Some("/fhir/Observation?_count=1&_total=accurate".to_string());
    let mut seen = Vec::new();
    while let Some(path) = next.take() {
        let b = search(&w, &w.h1, &path).await;
        assert_eq!(b["total"], if seen.is_empty() { 2 } else { 3 });
        seen.extend(matches(&b));
        next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                assert!(url.contains("_cursor="), "{url}");
                url.replace("http://gateway.test", "")
            });
        if seen.len() == 1 {
            // Written between pages: comes last, shifts nothing.
            put(&w.app, &w.h1, observation("a2", "Patient/alice", "1234-5")).await;
        }
        assert!(seen.len() < 10);
    }
    assert_eq!(seen, vec!["a1", "d1", "a2"]);
    assert_eq!(
        w.app
            .get("/fhir/Observation?_cursor=nonsense", &w.h1, &[])
            .await
            .status,
        400
    );
    // Other orders page by offset.
    let b = search(&w, &w.h1, "/fhir/Observation?_count=1&_sort=-_lastUpdated").await;
    let next = b["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap();
    assert!(next["url"].as_str().unwrap().contains("_offset=1"));
    w.app.cleanup().await;
}
