//! History of consents: instance and type level, with `_since`, `_at`, `_count` and cursor
//! pages, each version shown only to those it is for.

use actix_web::http::StatusCode;
use custodian_auth::Role;
use serde_json::Value;

use crate::helpers::{consent_for, permitting, spawn_app, PUBLIC_URL};

/// (id, version) of a history Bundle's entries, in order.
fn versions(body: &Value) -> Vec<(String, String)> {
    body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let url = e["fullUrl"].as_str().unwrap();
            let mut parts = url.rsplit('/');
            let version = parts.next().unwrap().to_string();
            parts.next();
            (parts.next().unwrap().to_string(), version)
        })
        .collect()
}

fn next_link(body: &Value) -> Option<String> {
    body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .map(|l| {
            l["url"]
                .as_str()
                .unwrap()
                .strip_prefix(PUBLIC_URL)
                .unwrap()
                .to_string()
        })
}

#[actix_web::test]
async fn type_history_lists_the_versions_the_caller_may_see_newest_first_in_pages() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    // Alice's consent (names h1), then revised twice; Bob's names only h2.
    let alice = app
        .post_consent(&admin, &consent_for("Patient/alice"))
        .await;
    let alice_id = alice.body["id"].as_str().unwrap().to_string();
    let bob = app
        .post_consent(&admin, &permitting("Patient/bob", "Organization/h2"))
        .await;
    let bob_id = bob.body["id"].as_str().unwrap().to_string();
    let mut revised = consent_for("Patient/alice");
    revised["id"] = alice_id.clone().into();
    for status in ["inactive", "active"] {
        revised["status"] = status.into();
        let updated = app.put_consent(&admin, &alice_id, &revised, None).await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    }

    let h1 = app.practitioner_token("Organization/h1");
    let all = app.get("/fhir/Consent/_history", Some(&h1)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["type"], "history");
    assert_eq!(
        versions(&all.body),
        vec![
            (alice_id.clone(), "3".to_string()),
            (alice_id.clone(), "2".to_string()),
            (alice_id.clone(), "1".to_string()),
        ],
        "h1 sees Alice's versions, never Bob's"
    );
    assert_eq!(all.body["total"], 3);

    // Pages of one, by cursor, cover the same versions.
    let mut seen = Vec::new();
    let mut path = Some("/fhir/Consent/_history?_count=1".to_string());
    while let Some(p) = path {
        let page = app.get(&p, Some(&h1)).await;
        assert_eq!(page.status, StatusCode::OK, "{p}: {}", page.body);
        seen.extend(versions(&page.body));
        path = next_link(&page.body);
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert_eq!(seen, versions(&all.body));

    // `_since` the last write: only the newest version.
    let newest = all.body["entry"][0]["response"]["lastModified"]
        .as_str()
        .unwrap();
    let since = app
        .get(
            &format!(
                "/fhir/Consent/_history?_since={}",
                newest.replace('+', "%2B")
            ),
            Some(&h1),
        )
        .await;
    assert_eq!(
        versions(&since.body),
        vec![(alice_id.clone(), "3".to_string())]
    );

    // Bob finds his own only; a stranger and an administrator nothing.
    let bob_token = app.patient_token("Patient/bob");
    let own = app.get("/fhir/Consent/_history", Some(&bob_token)).await;
    assert_eq!(versions(&own.body), vec![(bob_id, "1".to_string())]);
    for token in [app.practitioner_token("Organization/h9"), admin.clone()] {
        let none = app.get("/fhir/Consent/_history", Some(&token)).await;
        assert_eq!(none.status, StatusCode::OK, "{}", none.body);
        assert!(versions(&none.body).is_empty(), "{}", none.body);
    }
    assert_eq!(
        app.get("/fhir/Consent/_history?_since=yesterday", Some(&h1))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    app.finish().await;
}

#[actix_web::test]
async fn instance_history_takes_count_since_and_at() {
    let app = spawn_app().await;
    let admin = app.token(Role::Admin);
    let created = app
        .post_consent(&admin, &consent_for("Patient/alice"))
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let mut revised = consent_for("Patient/alice");
    revised["id"] = id.clone().into();
    revised["status"] = "inactive".into();
    let updated = app.put_consent(&admin, &id, &revised, None).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let alice = app.patient_token("Patient/alice");

    let first = app
        .get(
            &format!("/fhir/Consent/{id}/_history?_count=1"),
            Some(&alice),
        )
        .await;
    assert_eq!(versions(&first.body), vec![(id.clone(), "2".to_string())]);
    let next = next_link(&first.body).expect("a next page");
    let second = app.get(&next, Some(&alice)).await;
    assert_eq!(versions(&second.body), vec![(id.clone(), "1".to_string())]);
    assert!(next_link(&second.body).is_none());

    // `_at` the first version's time: the version current then.
    let written = app
        .get(&format!("/fhir/Consent/{id}/_history/1"), Some(&alice))
        .await;
    let at = written.body["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    let then = app
        .get(
            &format!("/fhir/Consent/{id}/_history?_at={at}"),
            Some(&alice),
        )
        .await;
    assert_eq!(
        versions(&then.body),
        vec![(id.clone(), "1".to_string())],
        "{}",
        then.body
    );
    let later = app
        .get(
            &format!("/fhir/Consent/{id}/_history?_since=2999-01-01"),
            Some(&alice),
        )
        .await;
    assert_eq!(later.status, StatusCode::OK);
    assert!(versions(&later.body).is_empty());
    app.finish().await;
}
