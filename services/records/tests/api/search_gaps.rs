//! Search gaps closed: `:in`/`:not-in` over stored ValueSets, `_list`, `_revinclude=*`,
//! `previous` links of cursor pages, `_has` as an uncorrelated subquery, `_contained`, `_text`
//! and `_content`; and that none of them shows a caller what she may not see.
//!
//! The world is `search_depth`'s: h1 holds Alice (a1: 1234-5) and Dr Welby; h2 holds Carol
//! (c1: 9999-9, nothing of hers visible to h1), Dave (d1: 7777-7, h1 sees his Observations) and
//! Erin (e1: 8888-8, h1 sees her Patient only).

use serde_json::{json, Value};

use crate::helpers::{entry_ids, TestResponse};
use crate::search_depth::{matches, observation, outcome, put, search, world, World};

const LOINC: &str = "http://loinc.org";

fn links(bundle: &Value) -> Vec<(String, String)> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["relation"].as_str().unwrap().to_string(),
                l["url"]
                    .as_str()
                    .unwrap()
                    .replace("http://gateway.test", ""),
            )
        })
        .collect()
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    links(bundle)
        .into_iter()
        .find(|(r, _)| r == relation)
        .map(|(_, u)| u)
}

fn included(bundle: &Value) -> Vec<String> {
    let mut ids = entry_ids(bundle, "include");
    ids.sort();
    ids
}

async fn get(w: &World, token: &str, query: &str, strict: bool) -> TestResponse {
    let headers: &[(&str, &str)] = if strict {
        &[("Prefer", "handling=strict")]
    } else {
        &[]
    };
    w.app.get(query, token, headers).await
}

/// ValueSets h1 stores (in no compartment: visible to any caller whose scopes reach ValueSet).
async fn value_sets(w: &World) {
    let h1 = &w.h1;
    put(
        &w.app,
        h1,
        json!({"resourceType": "ValueSet", "id": "vs-codes", "status": "active",
               "url": "http://example.org/vs/codes", "version": "1",
               "compose": {"include": [{"system": LOINC, "concept": [{"code": "1234-5"}, {"code": "7777-7"}]}]}}),
    )
    .await;
    put(
        &w.app,
        h1,
        json!({"resourceType": "ValueSet", "id": "vs-expanded", "status": "active",
        "url": "http://example.org/vs/expanded",
        "expansion": {"timestamp": "2026-01-01T00:00:00Z", "contains": [
            {"system": LOINC, "code": "panel", "abstract": true, "contains": [
                {"system": LOINC, "code": "5555-5"},
                {"system": "http://other.org", "code": "1234-5"}
            ]}
        ]}}),
    )
    .await;
    put(
        &w.app,
        h1,
        json!({"resourceType": "ValueSet", "id": "vs-loinc-but", "status": "active",
               "url": "http://example.org/vs/loinc-but",
               "compose": {"include": [{"system": LOINC}],
                           "exclude": [{"system": LOINC, "concept": [{"code": "1234-5"}]}]}}),
    )
    .await;
    put(
        &w.app,
        h1,
        json!({"resourceType": "ValueSet", "id": "vs-import", "status": "active",
               "url": "http://example.org/vs/import",
               "compose": {"include": [{"valueSet": ["http://example.org/vs/codes|1", "http://example.org/vs/loinc-but"]}]}}),
    )
    .await;
    put(
        &w.app,
        h1,
        json!({"resourceType": "ValueSet", "id": "vs-filter", "status": "active",
               "url": "http://example.org/vs/filter",
               "compose": {"include": [{"system": LOINC, "filter": [{"property": "COMPONENT", "op": "=", "value": "Weight"}]}]}}),
    )
    .await;
    put(
        &w.app,
        h1,
        json!({"resourceType": "ValueSet", "id": "vs-dangling", "status": "active",
               "url": "http://example.org/vs/dangling",
               "compose": {"include": [{"valueSet": ["http://example.org/vs/nowhere"]}]}}),
    )
    .await;
}

#[actix_web::test]
async fn in_and_not_in_list_value_sets_exactly() {
    let w = world().await;
    value_sets(&w).await;
    put(&w.app, &w.h1, observation("a3", "Patient/alice", "5555-5")).await;
    // h1 sees a1 (1234-5), a3 (5555-5), d1 (7777-7).
    for (q, expected) in [
        ("code:in=http://example.org/vs/codes", vec!["a1", "d1"]),
        ("code:in=http://example.org/vs/codes|1", vec!["a1", "d1"]),
        ("code:in=ValueSet/vs-codes", vec!["a1", "d1"]),
        ("code:not-in=ValueSet/vs-codes", vec!["a3"]),
        // Nested, abstract entries left out, systems compared.
        ("code:in=http://example.org/vs/expanded", vec!["a3"]),
        // A whole system but one code.
        ("code:in=http://example.org/vs/loinc-but", vec!["a3", "d1"]),
        // Imports intersected: {1234-5, 7777-7} and loinc but 1234-5.
        ("code:in=http://example.org/vs/import", vec!["d1"]),
        // Values OR.
        (
            "code:in=http://example.org/vs/import,ValueSet/vs-expanded",
            vec!["a3", "d1"],
        ),
    ] {
        let b = search(&w, &w.h1, &format!("/fhir/Observation?{q}")).await;
        assert_eq!(matches(&b), expected, "{q}");
        assert_eq!(b["total"], expected.len(), "{q}");
        assert!(outcome(&b).is_none(), "{q}: {b}");
    }
    // In a reverse chain.
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Patient?_has:Observation:patient:code:in=ValueSet/vs-codes"
            )
            .await
        ),
        vec!["alice"]
    );
    // What cannot be listed exactly, or is not there: a 400 whatever the handling.
    for (q, says) in [
        ("code:in=http://example.org/vs/filter", "filter"),
        ("code:not-in=http://example.org/vs/filter", "filter"),
        ("code:in=http://example.org/vs/dangling", "nowhere"),
        ("code:in=http://example.org/vs/unknown", "not known"),
        ("code:in=http://example.org/vs/codes|2", "not known"),
        ("code:in=ValueSet/nope", "not known"),
    ] {
        for strict in [false, true] {
            let r = get(&w, &w.h1, &format!("/fhir/Observation?{q}"), strict).await;
            assert_eq!(r.status, 400, "{q}");
            assert_eq!(r.json()["resourceType"], "OperationOutcome");
            assert!(r.text().contains(says), "{q}: {}", r.text());
        }
    }
    // A second version of a url: the url alone no longer names one ValueSet.
    put(
        &w.app,
        &w.h1,
        json!({"resourceType": "ValueSet", "id": "vs-codes-2", "status": "active",
               "url": "http://example.org/vs/codes", "version": "2",
               "compose": {"include": [{"system": LOINC, "concept": [{"code": "5555-5"}]}]}}),
    )
    .await;
    let r = get(
        &w,
        &w.h1,
        "/fhir/Observation?code:in=http://example.org/vs/codes",
        false,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("url|version"), "{}", r.text());
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h1,
                "/fhir/Observation?code:in=http://example.org/vs/codes|2"
            )
            .await
        ),
        vec!["a3"]
    );
    // Only tokens take :in.
    assert_eq!(
        get(
            &w,
            &w.h1,
            "/fhir/Observation?subject:in=ValueSet/vs-codes",
            false
        )
        .await
        .status,
        400
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn in_shows_an_attacker_only_what_she_may_see() {
    let w = world().await;
    value_sets(&w).await;
    // h2 writes a ValueSet naming Alice's code (h1's patient) and Carol's.
    put(
        &w.app,
        &w.h2,
        json!({"resourceType": "ValueSet", "id": "vs-probe", "status": "active",
               "url": "http://attacker.example/probe",
               "compose": {"include": [{"system": LOINC, "concept": [{"code": "1234-5"}, {"code": "9999-9"}]}]}}),
    )
    .await;
    let b = search(&w, &w.h2, "/fhir/Observation?code:in=ValueSet/vs-probe").await;
    assert_eq!(matches(&b), vec!["c1"]);
    assert_eq!(b["total"], 1, "Alice's Observation is not counted");
    // h1's ValueSet (in no compartment) is usable; it still finds nothing of Alice's.
    let b = search(&w, &w.h2, "/fhir/Observation?code:in=ValueSet/vs-codes").await;
    assert_eq!(matches(&b), vec!["d1"]);
    assert_eq!(b["total"], 1);
    let b = search(&w, &w.h2, "/fhir/Observation?code:not-in=ValueSet/vs-probe").await;
    assert_eq!(matches(&b), vec!["d1", "e1"]);
    assert_eq!(b["total"], 2);
    let b = search(
        &w,
        &w.h2,
        "/fhir/Observation?code:in=ValueSet/vs-probe&_summary=count",
    )
    .await;
    assert_eq!(b["total"], 1);
    let b = search(
        &w,
        &w.h2,
        "/fhir/Patient?_has:Observation:patient:code:in=ValueSet/vs-probe",
    )
    .await;
    assert_eq!(matches(&b), vec!["carol"]);
    assert!(!b.to_string().contains("Peterson"));
    // Reading the ValueSet goes through access: a token whose scopes do not reach ValueSet
    // cannot use one, and learns nothing more than of a ValueSet that does not exist.
    let mut narrow = w.app.issuer.claims(custodian_auth::Role::Practitioner);
    narrow.organization = Some("Organization/h2".into());
    narrow.scope = "user/Observation.rs".into();
    let narrow = w.app.issuer.token(&narrow);
    assert_eq!(
        matches(&search(&w, &narrow, "/fhir/Observation?code=9999-9").await),
        vec!["c1"]
    );
    let hidden = get(
        &w,
        &narrow,
        "/fhir/Observation?code:in=ValueSet/vs-probe",
        false,
    )
    .await;
    assert_eq!(hidden.status, 400);
    let unknown = get(
        &w,
        &narrow,
        "/fhir/Observation?code:in=ValueSet/vs-nope",
        false,
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        hidden.text().replace("vs-probe", "X"),
        unknown.text().replace("vs-nope", "X")
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn list_keeps_its_visible_entries_for_visible_lists_only() {
    let w = world().await;
    put(&w.app, &w.h1, observation("a3", "Patient/alice", "5555-5")).await;
    // Alice's List (in her compartment, held by h1) names Carol's observation too.
    put(
        &w.app,
        &w.h1,
        json!({"resourceType": "List", "id": "l-alice", "status": "current", "mode": "working",
        "subject": {"reference": "Patient/alice"},
        "entry": [
            {"item": {"reference": "Observation/a1"}},
            {"item": {"reference": "Observation/c1"}},
            {"item": {"reference": "Observation/a3"}, "deleted": true},
            {"item": {"reference": "http://gateway.test/fhir/Observation/d1/_history/1"}},
            {"item": {"reference": "http://elsewhere.example/fhir/Observation/e1"}},
            {"item": {"reference": "Patient/alice"}}
        ]}),
    )
    .await;
    let b = search(&w, &w.h1, "/fhir/Observation?_list=List/l-alice").await;
    assert_eq!(matches(&b), vec!["a1", "d1"], "{b}");
    assert_eq!(b["total"], 2);
    assert_eq!(
        matches(&search(&w, &w.h1, "/fhir/Patient?_list=l-alice").await),
        vec!["alice"]
    );
    // With other parameters, ANDed.
    assert_eq!(
        matches(&search(&w, &w.h1, "/fhir/Observation?_list=l-alice&code=7777-7").await),
        vec!["d1"]
    );

    // Attacks. h2 may see c1 and d1, but not Alice's List: it names nothing for h2, exactly
    // as a List that does not exist.
    let hidden = search(&w, &w.h2, "/fhir/Observation?_list=List/l-alice").await;
    let missing = search(&w, &w.h2, "/fhir/Observation?_list=List/l-none").await;
    assert_eq!(hidden["total"], 0);
    assert!(matches(&hidden).is_empty());
    assert_eq!(hidden["entry"], missing["entry"]);
    // h2's own List (in no compartment) naming Alice's observation: only what h2 may see.
    put(
        &w.app,
        &w.h2,
        json!({"resourceType": "List", "id": "l-probe", "status": "current", "mode": "working",
               "entry": [{"item": {"reference": "Observation/a1"}}, {"item": {"reference": "Observation/c1"}}]}),
    )
    .await;
    let b = search(&w, &w.h2, "/fhir/Observation?_list=List/l-probe").await;
    assert_eq!(matches(&b), vec!["c1"]);
    assert_eq!(b["total"], 1);
    let b = search(&w, &w.h1, "/fhir/Observation?_list=List/l-probe").await;
    assert_eq!(
        matches(&b),
        vec!["a1"],
        "h1 may see the List and a1, not c1"
    );

    // Functional lists follow the handling; malformed values are a 400.
    let lenient = search(&w, &w.h1, "/fhir/Observation?_list=$current-problems").await;
    assert!(outcome(&lenient)
        .unwrap()
        .to_string()
        .contains("functional"));
    assert_eq!(
        get(&w, &w.h1, "/fhir/Observation?_list=$current-problems", true)
            .await
            .status,
        400
    );
    assert_eq!(
        get(&w, &w.h1, "/fhir/Observation?_list=Group/g", false)
            .await
            .status,
        400
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn revinclude_wildcard_includes_visible_referrers_only() {
    let w = world().await;
    let b = search(&w, &w.h1, "/fhir/Patient?_id=alice&_revinclude=*").await;
    assert_eq!(matches(&b), vec!["alice"]);
    assert_eq!(included(&b), vec!["a1", "enc-a"], "{b}");
    let b = search(&w, &w.h1, "/fhir/Observation?_id=a1&_revinclude=*").await;
    assert_eq!(included(&b), vec!["prov-a1"]);
    // With :iterate: from the Provenance back to... nothing refers to it; the Observation's
    // own referrers once.
    let b = search(&w, &w.h1, "/fhir/Patient?_id=alice&_revinclude:iterate=*").await;
    assert_eq!(included(&b), vec!["a1", "enc-a", "prov-a1"], "{b}");

    // Attacks. Erin's Patient is visible to h1, her Observation is not.
    let b = search(&w, &w.h1, "/fhir/Patient?_id=erin&_revinclude=*").await;
    assert_eq!(matches(&b), vec!["erin"]);
    assert!(included(&b).is_empty(), "{b}");
    assert!(!b.to_string().contains("8888-8"));
    // Welby is everyone's: h2 gets Carol (its own) as a referrer, never Alice.
    let b = search(&w, &w.h2, "/fhir/Practitioner?_id=welby&_revinclude=*").await;
    let inc = included(&b);
    assert!(inc.contains(&"carol".to_string()), "{b}");
    assert!(!inc.contains(&"alice".to_string()), "{b}");
    assert!(!b.to_string().contains("Peterson"), "{b}");
    let b = search(&w, &w.h1, "/fhir/Practitioner?_id=welby&_revinclude=*").await;
    let inc = included(&b);
    assert!(inc.contains(&"alice".to_string()) && !inc.contains(&"carol".to_string()));
    assert!(!b.to_string().contains("Secretname"));
    w.app.cleanup().await;
}

#[actix_web::test]
async fn cursor_pages_link_back_exactly() {
    let w = world().await;
    for i in 0..4 {
        put(
            &w.app,
            &w.h1,
            observation(&format!("a-{i}"), "Patient/alice", "1234-5"),
        )
        .await;
    }
    // h1 sees a1, d1, a-0..a-3 (c1 and e1, between them, are hidden).
    let mut forward: Vec<Vec<String>> = Vec::new();
    let mut path = Some("/fhir/Observation?_count=2&_total=accurate".to_string());
    let mut last = Value::Null;
    while let Some(p) = path.take() {
        let b = search(&w, &w.h1, &p).await;
        assert_eq!(b["total"], 6);
        if forward.is_empty() {
            assert!(link(&b, "previous").is_none(), "the first page has none");
        } else {
            let previous = link(&b, "previous").expect("a previous link");
            assert!(previous.contains("_cursor=before"), "{previous}");
        }
        forward.push(entry_ids(&b, "match"));
        path = link(&b, "next");
        last = b;
        assert!(forward.len() < 10);
    }
    assert_eq!(
        forward.concat(),
        vec!["a1", "d1", "a-0", "a-1", "a-2", "a-3"]
    );
    // Back from the last page: the same pages in reverse, then none before the first.
    let mut backward: Vec<Vec<String>> = Vec::new();
    let mut path = link(&last, "previous");
    while let Some(p) = path.take() {
        let b = search(&w, &w.h1, &p).await;
        assert_eq!(b["total"], 6);
        backward.push(entry_ids(&b, "match"));
        // Each page reached backwards links forward to the one it came from.
        assert!(link(&b, "next").is_some());
        path = link(&b, "previous");
        assert!(backward.len() < 10);
    }
    backward.reverse();
    assert_eq!(backward, forward[..forward.len() - 1].to_vec());
    // A page reached backwards pages forward the same way.
    let first_back = search(&w, &w.h1, &link(&last, "previous").unwrap()).await;
    let again = search(&w, &w.h1, &link(&first_back, "next").unwrap()).await;
    assert_eq!(entry_ids(&again, "match"), forward[forward.len() - 1]);

    // Hidden rows never make a link: for h2, a1 (hidden) is the only row before c1.
    let first = search(&w, &w.h2, "/fhir/Observation?_count=1").await;
    assert_eq!(entry_ids(&first, "match"), vec!["c1"]);
    let second = search(&w, &w.h2, &link(&first, "next").unwrap()).await;
    assert_eq!(entry_ids(&second, "match"), vec!["d1"]);
    let back = search(&w, &w.h2, &link(&second, "previous").unwrap()).await;
    assert_eq!(entry_ids(&back, "match"), vec!["c1"]);
    assert!(link(&back, "previous").is_none(), "{back}");
    w.app.cleanup().await;
}

#[actix_web::test]
async fn has_matches_exactly_as_before() {
    let w = world().await;
    // Ids that are prefixes of each other, one id in two types, a deleted referrer and a
    // versioned reference.
    put(
        &w.app,
        &w.h1,
        crate::helpers::patient_resource("al", "Short", "Al"),
    )
    .await;
    put(
        &w.app,
        &w.h1,
        json!({"resourceType": "Group", "id": "alice", "type": "person", "actual": false,
               "managingEntity": {"reference": "Organization/h1"}}),
    )
    .await;
    put(&w.app, &w.h1, observation("g1", "Group/alice", "4444-4")).await;
    put(
        &w.app,
        &w.h1,
        observation("al1", "Patient/al/_history/1", "3333-3"),
    )
    .await;
    put(
        &w.app,
        &w.h1,
        observation("gone", "Patient/alice", "2222-2"),
    )
    .await;
    let r = w.app.delete("/fhir/Observation/gone", &w.h1, &[]).await;
    assert!(r.status.is_success(), "{}", r.text());
    for (q, expected) in [
        ("/fhir/Patient?_has:Observation:subject:code=4444-4", vec![]),
        ("/fhir/Group?_has:Observation:subject:code=4444-4", vec!["alice"]),
        ("/fhir/Patient?_has:Observation:subject:code=3333-3", vec!["al"]),
        ("/fhir/Patient?_has:Observation:subject:code=2222-2", vec![]),
        (
            "/fhir/Patient?_has:Observation:subject:code=1234-5,3333-3",
            vec!["al", "alice"],
        ),
        (
            "/fhir/Patient?_has:Observation:patient:_has:Provenance:target:agent=Practitioner/welby",
            vec!["alice"],
        ),
        (
            "/fhir/Patient?_has:Observation:patient:_has:Provenance:target:agent=Practitioner/other",
            vec![],
        ),
        // Combined with a chain inside.
        (
            "/fhir/Practitioner?_has:Patient:general-practitioner:_has:Observation:patient:code=1234-5",
            vec!["welby"],
        ),
    ] {
        let b = search(&w, &w.h1, q).await;
        assert_eq!(matches(&b), expected, "{q}");
        assert_eq!(b["total"], expected.len(), "{q}");
    }
    // Nested through what h1 may not see: Carol's observation, Carol herself.
    assert!(matches(
        &search(
            &w,
            &w.h1,
            "/fhir/Practitioner?_has:Patient:general-practitioner:_has:Observation:patient:code=9999-9"
        )
        .await
    )
    .is_empty());
    assert_eq!(
        matches(
            &search(
                &w,
                &w.h2,
                "/fhir/Practitioner?_has:Patient:general-practitioner:_has:Observation:patient:code=9999-9"
            )
            .await
        ),
        vec!["welby"]
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn contained_and_full_text_are_refused_with_a_reason() {
    let w = world().await;
    let b = search(&w, &w.h1, "/fhir/Observation?_contained=false&code=1234-5").await;
    assert_eq!(matches(&b), vec!["a1"]);
    assert!(outcome(&b).is_none());
    for (q, says) in [
        ("_contained=true", "contained resources are not indexed"),
        ("_contained=both", "contained resources are not indexed"),
        ("_text=weight", "encrypted at rest"),
        ("_content=weight", "encrypted at rest"),
    ] {
        let lenient = search(&w, &w.h1, &format!("/fhir/Observation?{q}")).await;
        let o = outcome(&lenient).expect("an outcome").to_string();
        assert!(o.contains(says), "{q}: {o}");
        let strict = get(&w, &w.h1, &format!("/fhir/Observation?{q}"), true).await;
        assert_eq!(strict.status, 400, "{q}");
        assert!(strict.text().contains(says), "{q}: {}", strict.text());
    }
    assert_eq!(
        get(&w, &w.h1, "/fhir/Observation?_contained=perhaps", false)
            .await
            .status,
        400
    );
    w.app.cleanup().await;
}

#[actix_web::test]
async fn capability_statement_names_the_new_search_features() {
    let w = world().await;
    let cs = w.app.get_public("/fhir/metadata").await.json();
    let obs = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap()
        .clone();
    let params = obs["searchParam"].as_array().unwrap();
    assert!(params.iter().any(|p| p["name"] == "_list"));
    let code = params.iter().find(|p| p["name"] == "code").unwrap();
    assert!(code["documentation"].as_str().unwrap().contains(":not-in"));
    assert!(obs["searchRevInclude"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "*"));
    w.app.cleanup().await;
}
