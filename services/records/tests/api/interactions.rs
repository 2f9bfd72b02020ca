//! Conditional create/update/delete, PATCH, type and system history, and read preconditions,
//! through the HTTP API; a caller never learns of (or changes) what it may not see.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

const SYS: &str = "http://hospital.test/mrn";

fn patient(id: Option<&str>, mrn: &str, family: &str) -> Value {
    let mut p = json!({
        "resourceType": "Patient",
        "identifier": [{"system": SYS, "value": mrn}],
        "name": [{"family": family, "given": ["Ann"]}],
        "gender": "female", "birthDate": "1980-02-01"
    });
    if let Some(id) = id {
        p["id"] = json!(id);
    }
    p
}

fn cond(mrn: &str) -> String {
    format!("identifier={SYS}%7C{mrn}")
}

/// Creates a Patient with `mrn` and returns its id.
async fn create(app: &TestApp, token: &str, mrn: &str) -> String {
    let r = app
        .post("/fhir/Patient", token, &patient(None, mrn, "Doe"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

async fn count(app: &TestApp, token: &str, mrn: &str) -> u64 {
    let r = app
        .get(&format!("/fhir/Patient?{}", cond(mrn)), token, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["total"].as_u64().unwrap()
}

#[actix_web::test]
async fn conditional_create_creates_once_then_returns_the_match() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let body = patient(None, "1", "Doe").to_string();
    let header = format!("Patient?{}", cond("1"));
    let first = app
        .send_json(
            "POST",
            "/fhir/Patient",
            &token,
            &body,
            &[("If-None-Exist", &cond("1"))],
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_string();
    // One match: 200 with it, nothing written (with or without the `Type?` prefix).
    for h in [cond("1"), header] {
        let again = app
            .send_json(
                "POST",
                "/fhir/Patient",
                &token,
                &body,
                &[("If-None-Exist", &h)],
            )
            .await;
        assert_eq!(again.status, 200, "{}", again.text());
        assert_eq!(again.json()["id"], id.as_str());
        assert_eq!(again.header("etag").as_deref(), Some("W/\"1\""));
        assert!(again
            .header("location")
            .unwrap()
            .ends_with(&format!("/fhir/Patient/{id}/_history/1")));
    }
    assert_eq!(count(&app, &token, "1").await, 1);
    // Several: 412.
    create(&app, &token, "1").await;
    let several = app
        .send_json(
            "POST",
            "/fhir/Patient",
            &token,
            &body,
            &[("If-None-Exist", &cond("1"))],
        )
        .await;
    assert_eq!(several.status, 412, "{}", several.text());
    assert_eq!(count(&app, &token, "1").await, 2);
    // An invalid condition: 400, nothing written.
    for bad in ["nonsense=1", "", "Observation?code=x", "birthdate=notadate"] {
        let r = app
            .send_json(
                "POST",
                "/fhir/Patient",
                &token,
                &body,
                &[("If-None-Exist", bad)],
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(count(&app, &token, "1").await, 2);
}

#[actix_web::test]
async fn conditional_create_never_returns_a_hidden_match() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let hidden = create(&app, &h1, "7").await;
    // Hospital2 may not see Hospital1's patient: it creates its own.
    let r = app
        .send_json(
            "POST",
            "/fhir/Patient",
            &h2,
            &patient(None, "7", "Other").to_string(),
            &[("If-None-Exist", &cond("7"))],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_ne!(r.json()["id"], hidden.as_str());
    assert!(!r.text().contains(&hidden));
    assert_eq!(count(&app, &h1, "7").await, 1);
    assert_eq!(count(&app, &h2, "7").await, 1);
}

#[actix_web::test]
async fn conditional_update_creates_updates_or_refuses() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    // No match, no id: created with a server id.
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("1")),
            &token,
            &patient(None, "1", "A"),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    // No match, an unused id: created with it.
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("2")),
            &token,
            &patient(Some("mine-2"), "2", "B"),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["id"], "mine-2");
    // One match, no id in the body: updated.
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("1")),
            &token,
            &patient(None, "1", "A2"),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id.as_str());
    assert_eq!(r.json()["meta"]["versionId"], "2");
    assert_eq!(r.json()["name"][0]["family"], "A2");
    // One match, the match's id: updated, If-Match honoured.
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("1")),
            &token,
            &patient(Some(&id), "1", "A3"),
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("1")),
            &token,
            &patient(Some(&id), "1", "A3"),
            &[("If-Match", "W/\"2\"")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag").as_deref(), Some("W/\"3\""));
    // One match, another id: 400.
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("1")),
            &token,
            &patient(Some("mine-2"), "1", "A4"),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Several: 412.
    create(&app, &token, "1").await;
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("1")),
            &token,
            &patient(None, "1", "A5"),
            &[],
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    // No condition, or an invalid one: 400.
    let r = app
        .put("/fhir/Patient", &token, &patient(None, "1", "A6"), &[])
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = app
        .put(
            "/fhir/Patient?unknown-param=1",
            &token,
            &patient(None, "1", "A6"),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[actix_web::test]
async fn conditional_update_by_an_outsider_does_not_touch_the_hidden_match() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let id = create(&app, &h1, "9").await;
    // Hospital2 sees no match: it creates its own; with the hidden id in the body, a new id.
    let r = app
        .put(
            &format!("/fhir/Patient?{}", cond("9")),
            &h2,
            &patient(Some(&id), "9", "Mallory"),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_ne!(r.json()["id"], id.as_str());
    let mine = app.get(&format!("/fhir/Patient/{id}"), &h1, &[]).await;
    assert_eq!(mine.json()["meta"]["versionId"], "1");
    assert_eq!(mine.json()["name"][0]["family"], "Doe");
}

#[actix_web::test]
async fn conditional_delete_deletes_one_visible_match() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let id = create(&app, &h1, "3").await;
    // An outsider deletes nothing (it sees no match).
    let r = app
        .delete(&format!("/fhir/Patient?{}", cond("3")), &h2, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("nothing was deleted"), "{}", r.text());
    assert_eq!(
        app.get(&format!("/fhir/Patient/{id}"), &h1, &[])
            .await
            .status,
        200
    );
    // One match: deleted.
    let r = app
        .delete(
            &format!("/fhir/Patient?{}", cond("3")),
            &h1,
            &[("Prefer", "return=minimal")],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("etag").as_deref(), Some("W/\"2\""));
    assert_eq!(
        app.get(&format!("/fhir/Patient/{id}"), &h1, &[])
            .await
            .status,
        410
    );
    // None: nothing to do.
    let r = app
        .delete(&format!("/fhir/Patient?{}", cond("3")), &h1, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Several: 412, nothing deleted.
    create(&app, &h1, "4").await;
    create(&app, &h1, "4").await;
    let r = app
        .delete(&format!("/fhir/Patient?{}", cond("4")), &h1, &[])
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(count(&app, &h1, "4").await, 2);
    // No condition: 400.
    let r = app.delete("/fhir/Patient", &h1, &[]).await;
    assert_eq!(r.status, 400, "{}", r.text());
}
