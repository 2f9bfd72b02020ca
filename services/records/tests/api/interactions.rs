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

const JSON_PATCH: &str = "application/json-patch+json";

#[actix_web::test]
async fn merge_patches_and_json_patches_sent_as_json_are_told_apart_by_shape() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let id = create(&app, &h1, "p1").await;
    let path = format!("/fhir/Patient/{id}");
    // An object sent as application/json is a JSON Merge Patch (what fhirpy sends).
    let merge = json!({"birthDate": "1979-12-31", "gender": null}).to_string();
    let r = app
        .request("PATCH", &path, &h1, Some(("application/json", &merge)), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["birthDate"], "1979-12-31");
    assert!(body.get("gender").is_none(), "null removes: {body}");
    assert_eq!(body["name"][0]["given"][0], "Ann", "the rest is kept");
    // An array sent as application/json is a JSON Patch.
    let ops = json!([{"op": "replace", "path": "/birthDate", "value": "1978-01-01"}]).to_string();
    let r = app
        .request("PATCH", &path, &h1, Some(("application/json", &ops)), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["birthDate"], "1978-01-01");
    // application/merge-patch+json takes objects only; a merge patch cannot change the id.
    let r = app
        .request(
            "PATCH",
            &path,
            &h1,
            Some(("application/merge-patch+json", "[]")),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let moved = json!({"id": "elsewhere"}).to_string();
    let r = app
        .request(
            "PATCH",
            &path,
            &h1,
            Some(("application/merge-patch+json", &moved)),
            &[],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // Another hospital cannot merge-patch what it may not see: 404, nothing changes.
    let r = app
        .request("PATCH", &path, &h2, Some(("application/json", &merge)), &[])
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = app.request("GET", &path, &h1, None, &[]).await;
    assert_eq!(r.json()["birthDate"], "1978-01-01");
}

#[actix_web::test]
async fn json_patch_updates_through_the_update_path() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let id = create(&app, &h1, "p1").await;
    let path = format!("/fhir/Patient/{id}");
    let ops = json!([
        {"op": "test", "path": "/birthDate", "value": "1980-02-01"},
        {"op": "replace", "path": "/birthDate", "value": "1981-03-04"},
        {"op": "add", "path": "/name/0/given/-", "value": "Beth"}
    ])
    .to_string();
    let r = app
        .request(
            "PATCH",
            &path,
            &h1,
            Some((JSON_PATCH, &ops)),
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag").as_deref(), Some("W/\"2\""));
    let body = r.json();
    assert_eq!(body["birthDate"], "1981-03-04");
    assert_eq!(body["name"][0]["given"], json!(["Ann", "Beth"]));
    assert_eq!(body["meta"]["versionId"], "2");
    // The custodian the update path keeps.
    assert_eq!(body["managingOrganization"]["reference"], "Organization/h1");
    // A stale If-Match: 412, nothing written.
    let r = app
        .request(
            "PATCH",
            &path,
            &h1,
            Some((JSON_PATCH, &ops)),
            &[("If-Match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    // A failed test op: 422.
    let failed = json!([{"op": "test", "path": "/birthDate", "value": "1900-01-01"},
                        {"op": "remove", "path": "/birthDate"}])
    .to_string();
    let r = app
        .request("PATCH", &path, &h1, Some((JSON_PATCH, &failed)), &[])
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // A path that does not exist: 422; a malformed patch: 400; another media type: 415.
    let missing = json!([{"op": "replace", "path": "/telecom/3", "value": {}}]).to_string();
    let r = app
        .request("PATCH", &path, &h1, Some((JSON_PATCH, &missing)), &[])
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = app
        .request("PATCH", &path, &h1, Some((JSON_PATCH, "{\"op\":1}")), &[])
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = app
        .request("PATCH", &path, &h1, Some(("text/plain", "x")), &[])
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    // A result that is not valid R4, or changes the id: 422.
    for bad in [
        json!([{"op": "replace", "path": "/birthDate", "value": "yesterday"}]),
        json!([{"op": "replace", "path": "/id", "value": "other"}]),
        json!([{"op": "replace", "path": "/resourceType", "value": "Group"}]),
    ] {
        let r = app
            .request(
                "PATCH",
                &path,
                &h1,
                Some((JSON_PATCH, &bad.to_string())),
                &[],
            )
            .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
    }
    let read = app.get(&path, &h1, &[]).await;
    assert_eq!(read.json()["meta"]["versionId"], "2");
    // Unknown: 404.
    let r = app
        .request(
            "PATCH",
            "/fhir/Patient/nobody",
            &h1,
            Some((JSON_PATCH, &ops)),
            &[],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[actix_web::test]
async fn patch_by_an_outsider_is_an_unknown_resource() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let id = create(&app, &h1, "p2").await;
    let path = format!("/fhir/Patient/{id}");
    // Even a patch that would fail its test answers as for an unknown id.
    for ops in [
        json!([{"op": "replace", "path": "/birthDate", "value": "1999-01-01"}]),
        json!([{"op": "test", "path": "/birthDate", "value": "nope"}]),
    ] {
        let r = app
            .request(
                "PATCH",
                &path,
                &h2,
                Some((JSON_PATCH, &ops.to_string())),
                &[],
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(!r.text().contains("birthDate"));
    }
    // A conditional patch sees no match either.
    let ops = json!([{"op": "replace", "path": "/birthDate", "value": "1999-01-01"}]).to_string();
    let r = app
        .request(
            "PATCH",
            &format!("/fhir/Patient?{}", cond("p2")),
            &h2,
            Some((JSON_PATCH, &ops)),
            &[],
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        app.get(&path, &h1, &[]).await.json()["birthDate"],
        "1980-02-01"
    );
    // The custodian's conditional patch works; several matches are a 412.
    let r = app
        .request(
            "PATCH",
            &format!("/fhir/Patient?{}", cond("p2")),
            &h1,
            Some((JSON_PATCH, &ops)),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id.as_str());
    create(&app, &h1, "p2").await;
    let r = app
        .request(
            "PATCH",
            &format!("/fhir/Patient?{}", cond("p2")),
            &h1,
            Some((JSON_PATCH, &ops)),
            &[],
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
}

#[actix_web::test]
async fn fhirpath_patch_simple_paths() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let id = create(&app, &h1, "p3").await;
    let path = format!("/fhir/Patient/{id}");
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": "Patient.birthDate"},
            {"name": "value", "valueDate": "1970-05-06"}]},
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "insert"},
            {"name": "path", "valueString": "Patient.name[0].given"},
            {"name": "index", "valueInteger": 0},
            {"name": "value", "valueString": "Zoe"}]},
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "add"},
            {"name": "path", "valueString": "Patient"},
            {"name": "name", "valueString": "active"},
            {"name": "value", "valueBoolean": true}]}
    ]})
    .to_string();
    let r = app
        .request(
            "PATCH",
            &path,
            &h1,
            Some(("application/fhir+json", &params)),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["birthDate"], "1970-05-06");
    assert_eq!(body["name"][0]["given"], json!(["Zoe", "Ann"]));
    assert_eq!(body["active"], true);
    // where(child='value') selects one repetition.
    let by_system = json!({"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": format!("Patient.identifier.where(system='{SYS}').value")},
            {"name": "value", "valueString": "p3-new"}]}]})
    .to_string();
    let r = app
        .request(
            "PATCH",
            &path,
            &h1,
            Some(("application/fhir+json", &by_system)),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["identifier"][0]["value"], "p3-new");
    // Other functions are refused with a 400.
    let unsupported = json!({"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "delete"},
            {"name": "path", "valueString": "Patient.identifier.first()"}]}]})
    .to_string();
    let r = app
        .request(
            "PATCH",
            &path,
            &h1,
            Some(("application/fhir+json", &unsupported)),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

/// The path of an absolute link.
fn local(url: &str) -> String {
    url.strip_prefix(crate::helpers::PUBLIC_URL)
        .unwrap()
        .to_string()
}

/// Every entry of a history, following `next` links: ("Type/id/version" or "... DELETE").
async fn history_all(app: &TestApp, token: &str, path: &str) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next = Some(path.to_string());
    while let Some(p) = next.take() {
        let r = app.get(&p, token, &[]).await;
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        let b = r.json();
        assert_eq!(b["type"], "history");
        pages += 1;
        for e in b["entry"].as_array().cloned().unwrap_or_default() {
            let url = e["fullUrl"].as_str().unwrap();
            let tail: Vec<&str> = url.rsplit('/').take(2).collect();
            let etag = e["response"]["etag"].as_str().unwrap();
            let method = e["request"]["method"].as_str().unwrap();
            assert_eq!(e.get("resource").is_none(), method == "DELETE", "{e}");
            seen.push(format!("{}/{}/{etag}/{method}", tail[1], tail[0]));
        }
        next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| local(l["url"].as_str().unwrap()));
    }
    (seen, pages)
}

#[actix_web::test]
async fn type_and_system_history_list_only_visible_versions_with_paging() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    crate::helpers::register(&app, &h1, "alice").await;
    crate::helpers::register(&app, &h2, "mallory").await;
    let obs = |p: &str| crate::helpers::weight(p, "60");
    let a = app
        .send_json("POST", "/fhir/Observation", &h1, &obs("Patient/alice"), &[])
        .await;
    let a_id = a.json()["id"].as_str().unwrap().to_string();
    let mut changed = a.json();
    changed["status"] = json!("amended");
    let r = app
        .put(&format!("/fhir/Observation/{a_id}"), &h1, &changed, &[])
        .await;
    assert_eq!(r.status, 200);
    let b = app
        .send_json("POST", "/fhir/Observation", &h1, &obs("Patient/alice"), &[])
        .await;
    let b_id = b.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.delete(&format!("/fhir/Observation/{b_id}"), &h1, &[])
            .await
            .status,
        200
    );
    let c = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h2,
            &obs("Patient/mallory"),
            &[],
        )
        .await;
    let c_id = c.json()["id"].as_str().unwrap().to_string();

    // Hospital1: its four Observation versions, newest first, on pages of two.
    let expected = vec![
        format!("Observation/{b_id}/W/\"2\"/DELETE"),
        format!("Observation/{b_id}/W/\"1\"/POST"),
        format!("Observation/{a_id}/W/\"2\"/PUT"),
        format!("Observation/{a_id}/W/\"1\"/POST"),
    ];
    let (all, pages) = history_all(&app, &h1, "/fhir/Observation/_history").await;
    assert_eq!(all, expected);
    assert_eq!(pages, 1);
    let (paged, pages) = history_all(&app, &h1, "/fhir/Observation/_history?_count=2").await;
    assert_eq!(paged, expected);
    assert!(pages >= 2, "{pages}");
    let (one_by_one, _) = history_all(&app, &h1, "/fhir/Observation/_history?_count=1").await;
    assert_eq!(one_by_one, expected);
    // Hospital2 sees its own only; never Alice's.
    let (theirs, _) = history_all(&app, &h2, "/fhir/Observation/_history?_count=1").await;
    assert_eq!(theirs, vec![format!("Observation/{c_id}/W/\"1\"/POST")]);
    // System history: every type, still only what each may see.
    let (system, _) = history_all(&app, &h1, "/fhir/_history?_count=3").await;
    assert_eq!(system.len(), 5, "{system:?}");
    assert_eq!(system[..4], expected[..]);
    assert_eq!(system[4], "Patient/alice/W/\"1\"/POST");
    let (system2, _) = history_all(&app, &h2, "/fhir/_history").await;
    assert!(
        system2
            .iter()
            .all(|e| !e.contains("alice") && !e.contains(&a_id) && !e.contains(&b_id)),
        "{system2:?}"
    );
    assert_eq!(system2.len(), 2, "{system2:?}");

    // _since: versions written at or after an instant.
    let since = changed_last_updated(&app, &h1, &a_id).await;
    let (recent, _) = history_all(
        &app,
        &h1,
        &format!("/fhir/Observation/_history?_since={}", urlencode(&since)),
    )
    .await;
    assert_eq!(recent, expected[..3].to_vec());
    // _at: the versions current at that instant (A v2; B did not exist yet... or just then).
    let (at, _) = history_all(
        &app,
        &h1,
        &format!(
            "/fhir/Observation/{a_id}/_history?_at={}",
            urlencode(&since)
        ),
    )
    .await;
    assert_eq!(at, vec![format!("Observation/{a_id}/W/\"2\"/PUT")]);
    // Instance history pages too.
    let (inst, pages) = history_all(
        &app,
        &h1,
        &format!("/fhir/Observation/{a_id}/_history?_count=1"),
    )
    .await;
    assert_eq!(inst, expected[2..].to_vec());
    assert_eq!(pages, 2);

    // Unknown parameters: ignored, or a 400 when strict; bad values: 400.
    let r = app
        .get("/fhir/Observation/_history?_list=x", &h1, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .get(
            "/fhir/Observation/_history?_list=x",
            &h1,
            &[("Prefer", "handling=strict")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    for bad in ["_since=yesterday", "_count=x", "_at=sa2020", "_cursor=zz"] {
        let r = app.get(&format!("/fhir/_history?{bad}"), &h1, &[]).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // History of an unknown type: 404.
    assert_eq!(
        app.get("/fhir/Nonsense/_history", &h1, &[]).await.status,
        404
    );
}

async fn changed_last_updated(app: &TestApp, token: &str, id: &str) -> String {
    let r = app
        .get(&format!("/fhir/Observation/{id}"), token, &[])
        .await;
    r.json()["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_string()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn bundle(kind: &str, entries: Vec<Value>) -> String {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries}).to_string()
}

fn observation_of(reference: &str) -> Value {
    serde_json::from_str(&crate::helpers::weight(reference, "70")).unwrap()
}

#[actix_web::test]
async fn transactions_resolve_conditions_and_conditional_references() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let existing = create(&app, &h1, "t1").await;
    let ifne = |mrn: &str, full_url: &str| {
        json!({"fullUrl": full_url, "resource": patient(None, mrn, "Tx"),
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": cond(mrn)}})
    };
    // A conditional create that matches (t1), one that does not (t2); an Observation referring
    // to each: by fullUrl, and by a conditional reference.
    let text = bundle(
        "transaction",
        vec![
            ifne("t1", "urn:uuid:00000000-0000-0000-0000-000000000001"),
            ifne("t2", "urn:uuid:00000000-0000-0000-0000-000000000002"),
            json!({"resource": observation_of("urn:uuid:00000000-0000-0000-0000-000000000001"),
                   "request": {"method": "POST", "url": "Observation"}}),
            json!({"resource": observation_of(&format!("Patient?{}", cond("t2"))),
                   "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h1, &text, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    let statuses: Vec<&str> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["200 OK", "201 Created", "201 Created", "201 Created"]
    );
    assert_eq!(
        out["entry"][0]["response"]["location"],
        format!("Patient/{existing}/_history/1")
    );
    let new_patient = out["entry"][1]["response"]["location"]
        .as_str()
        .unwrap()
        .split("/_history")
        .next()
        .unwrap()
        .to_string();
    let subject = |i: usize| {
        let loc = out["entry"][i]["response"]["location"].as_str().unwrap();
        format!("/fhir/{}", loc.split("/_history").next().unwrap())
    };
    let o1 = app.get(&subject(2), &h1, &[]).await.json();
    assert_eq!(o1["subject"]["reference"], format!("Patient/{existing}"));
    let o2 = app.get(&subject(3), &h1, &[]).await.json();
    assert_eq!(o2["subject"]["reference"], new_patient.as_str());
    assert_eq!(count(&app, &h1, "t1").await, 1);
    assert_eq!(count(&app, &h1, "t2").await, 1);

    // Conditional update and delete entries.
    let text = bundle(
        "transaction",
        vec![
            json!({"resource": patient(None, "t1", "Renamed"),
                   "request": {"method": "PUT", "url": format!("Patient?{}", cond("t1"))}}),
            json!({"request": {"method": "DELETE", "url": format!("Patient?{}", cond("t2"))}}),
            json!({"request": {"method": "DELETE", "url": format!("Patient?{}", cond("none"))}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h1, &text, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["entry"][0]["response"]["status"], "200 OK", "{out}");
    assert_eq!(
        out["entry"][1]["response"]["status"], "204 No Content",
        "{out}"
    );
    assert_eq!(
        out["entry"][2]["response"]["status"], "204 No Content",
        "{out}"
    );
    let renamed = app
        .get(&format!("/fhir/Patient/{existing}"), &h1, &[])
        .await
        .json();
    assert_eq!(renamed["name"][0]["family"], "Renamed");
    assert_eq!(count(&app, &h1, "t2").await, 0);

    // A conditional reference matching nothing, or several: 412, nothing written.
    create(&app, &h1, "dup").await;
    create(&app, &h1, "dup").await;
    for reference in [
        format!("Patient?{}", cond("nobody")),
        format!("Patient?{}", cond("dup")),
    ] {
        let text = bundle(
            "transaction",
            vec![
                json!({"resource": patient(None, "t9", "Nine"),
                       "request": {"method": "POST", "url": "Patient"}}),
                json!({"resource": observation_of(&reference),
                       "request": {"method": "POST", "url": "Observation"}}),
            ],
        );
        let r = app.send_json("POST", "/fhir", &h1, &text, &[]).await;
        assert_eq!(r.status, 412, "{reference}: {}", r.text());
        assert_eq!(count(&app, &h1, "t9").await, 0);
    }
    // Several matches of ifNoneExist fail the transaction; in a batch, just the entry.
    let entries = vec![
        ifne("dup", "urn:uuid:00000000-0000-0000-0000-000000000003"),
        json!({"resource": patient(None, "t10", "Ten"), "request": {"method": "POST", "url": "Patient"}}),
    ];
    let r = app
        .send_json(
            "POST",
            "/fhir",
            &h1,
            &bundle("transaction", entries.clone()),
            &[],
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(count(&app, &h1, "t10").await, 0);
    let r = app
        .send_json("POST", "/fhir", &h1, &bundle("batch", entries), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert!(
        out["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("412"),
        "{out}"
    );
    assert_eq!(
        out["entry"][1]["response"]["status"], "201 Created",
        "{out}"
    );
}

#[actix_web::test]
async fn transaction_conditions_never_match_hidden_resources() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let hidden = create(&app, &h1, "x1").await;
    // Hospital2 cannot point at, delete or return Hospital1's patient through conditions.
    let text = bundle(
        "transaction",
        vec![
            json!({"resource": observation_of(&format!("Patient?{}", cond("x1"))),
                    "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h2, &text, &[]).await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert!(!r.text().contains(&hidden));
    let text = bundle(
        "transaction",
        vec![
            json!({"request": {"method": "DELETE", "url": format!("Patient?{}", cond("x1"))}}),
            json!({"resource": patient(None, "x1", "Mine"),
                   "request": {"method": "POST", "url": "Patient", "ifNoneExist": cond("x1")}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h2, &text, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(
        out["entry"][0]["response"]["status"], "204 No Content",
        "{out}"
    );
    assert_eq!(
        out["entry"][1]["response"]["status"], "201 Created",
        "{out}"
    );
    assert!(!r.text().contains(&hidden));
    assert_eq!(
        app.get(&format!("/fhir/Patient/{hidden}"), &h1, &[])
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn read_preconditions_answer_304_after_access_is_decided() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let id = create(&app, &h1, "r1").await;
    let path = format!("/fhir/Patient/{id}");
    let read = app.get(&path, &h1, &[]).await;
    let last_modified = read.header("last-modified").unwrap();
    // Current: 304 with the ETag and no body.
    for headers in [
        [("If-None-Match", "W/\"1\"")],
        [("If-None-Match", "*")],
        [("If-Modified-Since", last_modified.as_str())],
    ] {
        let r = app.get(&path, &h1, &headers).await;
        assert_eq!(r.status, 304, "{headers:?}: {}", r.text());
        assert_eq!(r.header("etag").as_deref(), Some("W/\"1\""));
        assert!(r.body.is_empty());
    }
    // Not current: 200.
    let r = app.get(&path, &h1, &[("If-None-Match", "W/\"0\"")]).await;
    assert_eq!(r.status, 200);
    let r = app
        .get(
            &path,
            &h1,
            &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        )
        .await;
    assert_eq!(r.status, 200);
    // A caller who may not see it gets the 404 of an unknown id, whatever it sends.
    let r = app.get(&path, &h2, &[("If-None-Match", "W/\"1\"")]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Each 304 is a read, recorded.
    let reads = app
        .wait_for_events(5, |e| {
            e.action == custodian_events::AccessAction::Read
                && e.outcome == custodian_events::AccessOutcome::Permit
        })
        .await;
    assert!(reads.len() >= 5, "{}", reads.len());

    // PUT with If-None-Match: * creates only.
    let body = patient(Some("fresh"), "r2", "Fresh");
    let r = app
        .put("/fhir/Patient/fresh", &h1, &body, &[("If-None-Match", "*")])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app
        .put("/fhir/Patient/fresh", &h1, &body, &[("If-None-Match", "*")])
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    // Not an oracle: an outsider gets the same 404 as without the header.
    let r = app
        .put("/fhir/Patient/fresh", &h2, &body, &[("If-None-Match", "*")])
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[actix_web::test]
async fn patch_entries_in_transactions() {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let id = create(&app, &h1, "tp").await;
    let other = create(&app, &h1, "tp2").await;
    let binary = |ops: Value| {
        json!({"resourceType": "Binary", "contentType": JSON_PATCH,
               "data": STANDARD.encode(ops.to_string())})
    };
    let replace = binary(json!([{"op": "replace", "path": "/birthDate", "value": "1990-09-09"}]));
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "operation", "part": [
            {"name": "type", "valueCode": "add"},
            {"name": "path", "valueString": "Patient"},
            {"name": "name", "valueString": "active"},
            {"name": "value", "valueBoolean": false}]}]});
    // Two patches of one resource (the condition matches it): the identities of a
    // transaction's writes overlap, which fails it (R4 http.html#trules).
    let twice = bundle(
        "transaction",
        vec![
            json!({"resource": replace, "request": {"method": "PATCH", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}}),
            json!({"resource": params, "request": {"method": "PATCH", "url": format!("Patient?{}", cond("tp"))}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h1, &twice, &[]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let text = bundle(
        "transaction",
        vec![
            json!({"resource": replace, "request": {"method": "PATCH", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}}),
            json!({"resource": params, "request": {"method": "PATCH", "url": format!("Patient?{}", cond("tp2"))}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h1, &text, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["entry"][0]["response"]["etag"], "W/\"2\"", "{out}");
    assert_eq!(out["entry"][1]["response"]["etag"], "W/\"2\"", "{out}");
    assert_eq!(
        out["entry"][1]["response"]["location"],
        format!("Patient/{other}/_history/2")
    );
    let read = app
        .get(&format!("/fhir/Patient/{id}"), &h1, &[])
        .await
        .json();
    assert_eq!(read["birthDate"], "1990-09-09");
    let read = app
        .get(&format!("/fhir/Patient/{other}"), &h1, &[])
        .await
        .json();
    assert_eq!(read["active"], false);
    // A failing patch fails the transaction; an outsider's patch is a 404.
    let failing = bundle(
        "transaction",
        vec![
            json!({"resource": binary(json!([{"op": "test", "path": "/birthDate", "value": "x"}])),
                    "request": {"method": "PATCH", "url": format!("Patient/{id}")}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h1, &failing, &[]).await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = app.send_json("POST", "/fhir", &h2, &text, &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let read = app
        .get(&format!("/fhir/Patient/{id}"), &h1, &[])
        .await
        .json();
    assert_eq!(read["meta"]["versionId"], "2");
}

/// The events of one request (by its `X-Request-Id`), once `n` have arrived.
async fn events_of(
    app: &TestApp,
    request_id: &str,
    n: usize,
) -> Vec<custodian_events::AccessEvent> {
    let id = request_id.to_string();
    let events = app
        .wait_for_events(n, move |e| e.request_id.as_deref() == Some(id.as_str()))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let id = request_id.to_string();
    let again = app
        .wait_for_events(n, move |e| e.request_id.as_deref() == Some(id.as_str()))
        .await;
    assert_eq!(events.len(), again.len(), "events kept arriving");
    again
}

#[actix_web::test]
async fn conditional_interactions_record_the_matching_and_the_write_once() {
    use custodian_events::{AccessAction as A, AccessOutcome as O};
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    let id = create(&app, &h1, "e1").await;
    let body = patient(None, "e1", "Doe").to_string();
    let patient_ref = format!("Patient/{id}");

    // A conditional create that matched: one search returning her, nothing written.
    let r = app
        .send_json(
            "POST",
            "/fhir/Patient",
            &h1,
            &body,
            &[
                ("If-None-Exist", &cond("e1")),
                ("X-Request-Id", "req-create"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let events = events_of(&app, "req-create", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].action, events[0].outcome, events[0].count),
        (A::Search, O::Permit, 1)
    );
    assert_eq!(events[0].patient.as_deref(), Some(patient_ref.as_str()));

    // A conditional update: the search, then the update, each once.
    let r = app
        .send_json(
            "PUT",
            &format!("/fhir/Patient?{}", cond("e1")),
            &h1,
            &body,
            &[("X-Request-Id", "req-update")],
        )
        .await;
    assert_eq!(r.status, 200);
    let events = events_of(&app, "req-update", 2).await;
    let actions: Vec<_> = events.iter().map(|e| (e.action, e.outcome)).collect();
    assert_eq!(
        actions,
        [(A::Search, O::Permit), (A::Update, O::Permit)],
        "{events:?}"
    );

    // An outsider's conditional delete: its search found nothing of hers; nothing deleted.
    let r = app
        .request(
            "DELETE",
            &format!("/fhir/Patient?{}", cond("e1")),
            &h2,
            None,
            &[("X-Request-Id", "req-delete")],
        )
        .await;
    assert_eq!(r.status, 200);
    let events = events_of(&app, "req-delete", 1).await;
    assert!(events.iter().all(|e| e.action == A::Search), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| e.outcome == O::Permit && e.patient.as_deref() == Some(patient_ref.as_str())),
        "{events:?}"
    );

    // A patch: one update event.
    let ops = json!([{"op": "replace", "path": "/birthDate", "value": "1999-01-01"}]).to_string();
    let r = app
        .request(
            "PATCH",
            &format!("/fhir/{patient_ref}"),
            &h1,
            Some((JSON_PATCH, &ops)),
            &[("X-Request-Id", "req-patch")],
        )
        .await;
    assert_eq!(r.status, 200);
    let events = events_of(&app, "req-patch", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].action, events[0].outcome, events[0].count),
        (A::Update, O::Permit, 1)
    );

    // A type history: searches, one per (type, patient); never a permit for her to Hospital2.
    let r = app
        .get(
            "/fhir/Patient/_history",
            &h2,
            &[("X-Request-Id", "req-history")],
        )
        .await;
    assert_eq!(r.status, 200);
    let events = events_of(&app, "req-history", 1).await;
    assert!(events.iter().all(|e| e.action == A::Search), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| e.outcome == O::Permit && e.patient.as_deref() == Some(patient_ref.as_str())),
        "{events:?}"
    );
}

/// FHIR decimals keep their precision as written (R4 datatypes.html#decimal) through PATCH:
/// what a patch sets (JSON Patch, merge patch, FHIRPath Patch, in a transaction too) and what
/// it leaves alone; a `test` compares numbers by value. Before, the resource went through
/// f64s: 1.50 came back as 1.5, the other decimals of the resource likewise. (A patched
/// resource's keys come back sorted, so each `value` here follows its `unit`.)
#[actix_web::test]
async fn patches_keep_decimals_as_written() {
    use base64::{engine::general_purpose::STANDARD, Engine};
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    crate::helpers::register(&app, &h1, "decp").await;
    let obs = r#"{"resourceType":"Observation","id":"deco","status":"final",
        "code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},
        "subject":{"reference":"Patient/decp"},
        "valueQuantity":{"value":72.30,"unit":"kg"},
        "referenceRange":[{"low":{"value":60.50,"unit":"kg"},"high":{"value":1E2,"unit":"kg"}}]}"#;
    let r = app
        .send_json("PUT", "/fhir/Observation/deco", &h1, obs, &[])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let read = || async { app.get("/fhir/Observation/deco", &h1, &[]).await.text() };

    // JSON Patch: a test of 72.3 passes on 72.30; 1.50 is set as written.
    let patch = r#"[{"op":"test","path":"/valueQuantity/value","value":72.3},
                    {"op":"replace","path":"/valueQuantity/value","value":1.50}]"#;
    let r = app
        .request(
            "PATCH",
            "/fhir/Observation/deco",
            &h1,
            Some((JSON_PATCH, patch)),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = read().await;
    assert!(text.contains(r#""value":1.50}"#), "{text}");
    assert!(text.contains(r#""value":60.50}"#), "untouched: {text}");
    assert!(text.contains(r#""value":1E2}"#), "untouched: {text}");
    // A failed test still fails (by value: 1.5 is not 1.05).
    let failing = r#"[{"op":"test","path":"/valueQuantity/value","value":1.05}]"#;
    let r = app
        .request(
            "PATCH",
            "/fhir/Observation/deco",
            &h1,
            Some((JSON_PATCH, failing)),
            &[],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());

    // More digits than an f64 holds.
    let precise = "0.12345678901234567890123";
    let patch = format!(r#"[{{"op":"replace","path":"/valueQuantity/value","value":{precise}}}]"#);
    let r = app
        .request(
            "PATCH",
            "/fhir/Observation/deco",
            &h1,
            Some((JSON_PATCH, &patch)),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(read().await.contains(precise));

    // Merge patch and FHIRPath Patch.
    let r = app
        .request(
            "PATCH",
            "/fhir/Observation/deco",
            &h1,
            Some((
                "application/merge-patch+json",
                r#"{"valueQuantity":{"value":2.50,"unit":"kg"}}"#,
            )),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(read().await.contains(r#""value":2.50}"#));
    let fhirpath = r#"{"resourceType":"Parameters","parameter":[{"name":"operation","part":[
        {"name":"type","valueCode":"replace"},
        {"name":"path","valueString":"Observation.valueQuantity.value"},
        {"name":"value","valueDecimal":3.10}]}]}"#;
    let r = app
        .request(
            "PATCH",
            "/fhir/Observation/deco",
            &h1,
            Some(("application/fhir+json", fhirpath)),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(read().await.contains(r#""value":3.10}"#));

    // In a transaction, from a Binary.
    let ops = r#"[{"op":"replace","path":"/valueQuantity/value","value":4.20}]"#;
    let text = bundle(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Binary", "contentType": JSON_PATCH,
                                 "data": STANDARD.encode(ops)},
                    "request": {"method": "PATCH", "url": "Observation/deco"}}),
        ],
    );
    let r = app.send_json("POST", "/fhir", &h1, &text, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = read().await;
    assert!(text.contains(r#""value":4.20}"#), "{text}");
    assert!(text.contains(r#""value":60.50}"#), "{text}");
    app.cleanup().await;
}

/// A read with `_elements` or `_summary` returns the kept elements as stored: decimals as
/// written (before, the subset went through f64s: 60.50 came back as 60.5).
#[actix_web::test]
async fn read_subsets_keep_decimals_as_written() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    crate::helpers::register(&app, &h1, "subp").await;
    let r = app
        .send_json(
            "PUT",
            "/fhir/Observation/subo",
            &h1,
            &crate::helpers::weight("Patient/subp", "60.50").replace(
                r#""resourceType":"Observation","#,
                r#""resourceType":"Observation","id":"subo","#,
            ),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    for query in ["_elements=valueQuantity", "_summary=true", "_summary=data"] {
        let r = app
            .get(&format!("/fhir/Observation/subo?{query}"), &h1, &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.text().contains(r#""value":60.50"#),
            "{query}: {}",
            r.text()
        );
    }
    let r = app
        .get("/fhir/Observation/subo?_elements=valueQuantity", &h1, &[])
        .await;
    assert!(r.json().get("effectiveDateTime").is_none(), "{}", r.text());
    app.cleanup().await;
}
