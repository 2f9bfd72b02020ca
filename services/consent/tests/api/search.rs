//! Searching consents.

use actix_web::http::StatusCode;
use custodian_auth::Role;

use crate::helpers::{consent_for, permitting, spawn_app, PUBLIC_URL};

#[actix_web::test]
async fn search_by_patient_and_status_returns_a_searchset_bundle() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let alice = app.patient_token("Patient/alice");
    // Named by every consent below: it sees all of them.
    let h1 = app.practitioner_token("Organization/h1");
    let first = app.create_alice_consent().await;
    let mut inactive = consent_for("Patient/alice");
    inactive["status"] = "inactive".into();
    let second = app.post_consent(&admin, &inactive).await;
    assert_eq!(second.status, StatusCode::CREATED);
    let bobs = app.post_consent(&admin, &consent_for("Patient/bob")).await;
    assert_eq!(bobs.status, StatusCode::CREATED);

    let all_alice = app
        .get("/fhir/Consent?patient=Patient/alice", Some(&h1))
        .await;
    assert_eq!(all_alice.status, StatusCode::OK);
    let bundle = &all_alice.body;
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 2);
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["search"]["mode"], "match");
        assert_eq!(entry["resource"]["patient"]["reference"], "Patient/alice");
        let id = entry["resource"]["id"].as_str().unwrap();
        assert_eq!(entry["fullUrl"], format!("{PUBLIC_URL}/fhir/Consent/{id}"));
    }
    let self_link = bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "self")
        .expect("a self link");
    assert!(self_link["url"].as_str().unwrap().starts_with(&format!(
        "{PUBLIC_URL}/fhir/Consent?patient=Patient%2Falice"
    )));

    let active = app
        .get("/consent/Consent?patient=alice&status=active", Some(&alice))
        .await;
    assert_eq!(active.body["total"], 1);
    assert_eq!(active.body["entry"][0]["resource"]["id"], first["id"]);

    // Alice herself finds her two, never Bob's.
    let own = app.get("/fhir/Consent", Some(&alice)).await;
    assert_eq!(own.body["total"], 2);

    // Paging over what h1 may see.
    let page = app
        .get("/fhir/Consent?_count=1&_total=accurate", Some(&h1))
        .await;
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["entry"].as_array().unwrap().len(), 1);
    assert!(page.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "next"));

    // Deleted consents are not found.
    let id = bobs.body["id"].as_str().unwrap();
    assert_eq!(app.delete_consent(&admin, id).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/fhir/Consent?patient=bob", Some(&h1)).await.body["total"],
        0
    );

    // Unknown parameters: ignored and reported by default (real clients send their own),
    // refused under `Prefer: handling=strict`.
    let lenient = app.get("/fhir/Consent?colour=blue", Some(&alice)).await;
    assert_eq!(lenient.status, StatusCode::OK, "{}", lenient.body);
    let entries = lenient.body["entry"].as_array().unwrap();
    let outcome = entries
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry");
    assert!(outcome["resource"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("colour"));
    assert!(entries.iter().any(|e| e["search"]["mode"] == "match"));
    assert!(!lenient.body["link"][0]["url"]
        .as_str()
        .unwrap()
        .contains("colour"));
    let strict = app
        .send(
            app.request(
                actix_web::http::Method::GET,
                "/fhir/Consent?colour=blue",
                Some(&alice),
            )
            .insert_header(("Prefer", "handling=strict")),
            None,
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    strict.outcome();
    // Only JSON is served: XML, asked for either way, is a 406 before anything else.
    let by_accept = app
        .request(actix_web::http::Method::GET, "/fhir/Consent", Some(&alice))
        .insert_header(("Accept", "application/fhir+xml"));
    let by_format = app.request(
        actix_web::http::Method::GET,
        "/fhir/Consent?_format=xml",
        Some(&alice),
    );
    for request in [by_accept, by_format] {
        let refused = app.send(request, None).await;
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
        refused.outcome();
    }
    // A reference that is no id of ours matches nothing (as at records: it may be a URL).
    let no_patient = app.get("/fhir/Consent?patient=x%C3%A9", Some(&alice)).await;
    assert_eq!(no_patient.status, StatusCode::OK, "{}", no_patient.body);
    assert_eq!(no_patient.body["total"], 0);
    let bad_date = app.get("/fhir/Consent?date=x%C3%A9", Some(&alice)).await;
    assert_eq!(bad_date.status, StatusCode::BAD_REQUEST);
    app.finish().await;
}

/// The ids of a searchset's matches.
fn matched(body: &serde_json::Value) -> Vec<String> {
    body["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Consent is searched by the same engine as every resource at records: the specification's
/// parameters of Consent, modifiers, prefixes, sorting, cursor pages, `_total`, `_summary`,
/// `_elements`, `POST _search`.
#[actix_web::test]
async fn every_search_parameter_of_consent_works_as_at_records() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let h1 = app.practitioner_token("Organization/h1");
    let mut ids = Vec::new();
    for (patient, date, status) in [
        ("Patient/alice", "2024-03-01", "active"),
        ("Patient/bob", "2025-06-15", "active"),
        ("Patient/carol", "2026-01-20", "inactive"),
    ] {
        let mut consent = consent_for(patient);
        consent["dateTime"] = date.into();
        consent["status"] = status.into();
        let created = app.post_consent(&admin, &consent).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.push(created.body["id"].as_str().unwrap().to_string());
    }
    let search = |q: &'static str| {
        let app = &app;
        let h1 = h1.clone();
        async move {
            let found = app.get(&format!("/fhir/Consent?{q}"), Some(&h1)).await;
            assert_eq!(found.status, StatusCode::OK, "{q}: {}", found.body);
            found
        }
    };
    // Dates with prefixes, tokens with and without system, references, `:not`, `:missing`.
    assert_eq!(matched(&search("date=ge2025-01-01").await.body).len(), 2);
    assert_eq!(
        matched(&search("date=lt2025").await.body),
        vec![ids[0].clone()]
    );
    assert_eq!(
        matched(&search("category=http://loinc.org|59284-0").await.body).len(),
        3
    );
    assert_eq!(
        matched(&search("category=http://snomed.info/sct|59284-0").await.body).len(),
        0
    );
    assert_eq!(
        matched(&search("status:not=active").await.body),
        vec![ids[2].clone()]
    );
    assert_eq!(
        matched(&search("organization=Organization/h1").await.body).len(),
        3
    );
    assert_eq!(
        matched(&search("actor=Organization/h1&patient=bob").await.body),
        vec![ids[1].clone()]
    );
    assert_eq!(matched(&search("date:missing=true").await.body).len(), 0);
    let by_id = format!("_id={}", ids[1]);
    let found = app.get(&format!("/fhir/Consent?{by_id}"), Some(&h1)).await;
    assert_eq!(matched(&found.body), vec![ids[1].clone()]);
    // Sorting, newest consent date first; then cursor pages of the default order.
    assert_eq!(
        matched(&search("_sort=-date").await.body),
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let first = search("_count=2").await;
    assert_eq!(matched(&first.body), vec![ids[0].clone(), ids[1].clone()]);
    assert!(
        first.body.get("total").is_none(),
        "a partial first page has no free total"
    );
    let next = first.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .expect("a next link")
        .to_string();
    assert!(next.contains("_cursor="), "{next}");
    let path = next.strip_prefix(PUBLIC_URL).unwrap();
    let second = app.get(path, Some(&h1)).await;
    assert_eq!(matched(&second.body), vec![ids[2].clone()]);
    assert!(second.body["link"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["relation"] == "previous"));
    // Counts, summaries and elements as everywhere.
    assert_eq!(search("_summary=count").await.body["total"], 3);
    let elements = search("_elements=status&_count=1").await;
    let resource = &elements.body["entry"][0]["resource"];
    assert!(resource.get("provision").is_none() && resource["status"] == "active");
    // A form body searches as the query string does.
    let posted = app
        .send(
            app.request(
                actix_web::http::Method::POST,
                "/fhir/Consent/_search",
                Some(&h1),
            )
            .insert_header(("Content-Type", "application/x-www-form-urlencoded")),
            Some("status=inactive".into()),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    assert_eq!(matched(&posted.body), vec![ids[2].clone()]);
    // What only records holds: left out and reported (lenient), or a 400 (strict).
    let chained = search("patient.name=alice").await;
    assert_eq!(matched(&chained.body).len(), 3);
    assert!(chained.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["search"]["mode"] == "outcome"));
    let strict = app
        .send(
            app.request(
                actix_web::http::Method::GET,
                "/fhir/Consent?_include=Consent:patient",
                Some(&h1),
            )
            .insert_header(("Prefer", "handling=strict")),
            None,
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/fhir/Consent?status:in=http://x/vs", Some(&h1))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // An update is found by its new values only; a delete by none.
    let mut changed = consent_for("Patient/alice");
    changed["id"] = ids[0].clone().into();
    changed["status"] = "rejected".into();
    let updated = app.put_consent(&admin, &ids[0], &changed, None).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(
        matched(&search("status=rejected").await.body),
        vec![ids[0].clone()]
    );
    assert_eq!(matched(&search("date=lt2025").await.body).len(), 0);
    assert_eq!(
        app.delete_consent(&admin, &ids[1]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        matched(&search("actor=Organization/h1&patient=bob").await.body).len(),
        0
    );
    app.finish().await;
}

/// An attacker with a valid account finds, through any parameter, only consents she may
/// see: never a count, a page or a match of the others.
#[actix_web::test]
async fn no_parameter_reaches_a_consent_the_caller_may_not_see() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let alices = app.create_alice_consent();
    let alices = alices.await;
    let alice_id = alices["id"].as_str().unwrap().to_string();
    let bobs = app
        .post_consent(&admin, &permitting("Patient/bob", "Organization/h2"))
        .await;
    assert_eq!(bobs.status, StatusCode::CREATED);
    let bob_id = bobs.body["id"].as_str().unwrap().to_string();

    let h9 = app.practitioner_token("Organization/h9");
    let bob = app.patient_token("Patient/bob");
    for (token, query) in [
        (&h9, format!("_id={alice_id}")),
        (&h9, "actor=Organization/h1".to_string()),
        (&h9, "patient:missing=false&_total=accurate".to_string()),
        (&h9, "_summary=count".to_string()),
        (&bob, format!("_id={alice_id}")),
        (&bob, "actor=Organization/h1".to_string()),
        (&bob, format!("source-reference:Consent._id={alice_id}")),
    ] {
        let found = app
            .get(&format!("/fhir/Consent?{query}"), Some(token))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{query}: {}", found.body);
        let ids = matched(&found.body);
        assert!(!ids.contains(&alice_id), "{query}: {}", found.body);
        if found.body.get("total").is_some() {
            assert!(
                found.body["total"].as_u64().unwrap() <= 1,
                "{query}: {}",
                found.body
            );
        }
    }
    // Bob finds his own, by any route; Alice's never.
    let own = app
        .get("/fhir/Consent?actor=Organization/h2", Some(&bob))
        .await;
    assert_eq!(matched(&own.body), vec![bob_id]);
    let other = app
        .get("/fhir/Consent?patient=Patient/alice", Some(&bob))
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    app.finish().await;
}

/// Consents indexed by older code (or not at all) are indexed again for the running code.
#[actix_web::test]
async fn the_index_is_rewritten_for_the_running_code() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let h1 = app.practitioner_token("Organization/h1");
    app.create_alice_consent().await;
    let found =
        || async { matched(&app.get("/fhir/Consent?status=active", Some(&h1)).await.body).len() };
    assert_eq!(found().await, 1);
    let pool = custodian_database::pool(&app.database_url, 1).unwrap();
    let mut conn = pool.get().await.unwrap();
    for sql in [
        "DELETE FROM search_index",
        "DELETE FROM search_index_versions",
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    assert_eq!(found().await, 0);
    assert_eq!(consent::store::reindex(&mut conn).await.unwrap(), 1);
    assert_eq!(found().await, 1);
    assert_eq!(
        consent::store::reindex(&mut conn).await.unwrap(),
        0,
        "done once"
    );
    drop(conn);
    app.finish().await;
}
