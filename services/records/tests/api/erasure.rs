//! A patient's right to erasure: per-patient data keys, `$erase` in two steps, and what is left.

use custodian_auth::Role;
use custodian_events::{AccessAction, AccessOutcome};
use diesel::{
    sql_query,
    sql_types::{Bytea, Int2, Int8, Nullable, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use records::crypto::{aad, RecordCipher};
use serde_json::{json, Value};

use crate::helpers::{condition, register, spawn_app, weight, TestApp};

#[derive(QueryableByName, Debug)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    resource_type: String,
    #[diesel(sql_type = Text)]
    resource_id: String,
    #[diesel(sql_type = Int8)]
    version: i64,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    deleted: bool,
    #[diesel(sql_type = Int2)]
    sealed_by: i16,
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Nullable<Bytea>)]
    wrapped_key: Option<Vec<u8>>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    erased: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Int8)]
    n: i64,
}

async fn db(app: &TestApp) -> AsyncPgConnection {
    AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap()
}

async fn versions_of(conn: &mut AsyncPgConnection, patient: &str) -> Vec<VersionRow> {
    sql_query(
        "SELECT resource_type, resource_id, version, body, deleted, sealed_by \
         FROM resource_versions WHERE patient_ref = $1 ORDER BY 1, 2, 3",
    )
    .bind::<Text, _>(patient)
    .load(conn)
    .await
    .unwrap()
}

async fn key_of(conn: &mut AsyncPgConnection, patient: &str) -> Option<KeyRow> {
    sql_query(
        "SELECT wrapped_key, erased_at IS NOT NULL AS erased FROM patient_keys WHERE patient_ref = $1",
    )
    .bind::<Text, _>(patient)
    .load(conn)
    .await
    .unwrap()
    .pop()
}

async fn count(conn: &mut AsyncPgConnection, sql: &str, patient: &str) -> i64 {
    sql_query(sql)
        .bind::<Text, _>(patient)
        .load::<Count>(conn)
        .await
        .unwrap()[0]
        .n
}

/// Index rows of her resources, or of any resource naming her.
const HER_INDEX_ROWS: &str = "SELECT count(*) AS n FROM search_index s \
     WHERE s.value = $1 OR EXISTS (SELECT 1 FROM resources r WHERE r.resource_type = s.resource_type \
     AND r.resource_id = s.resource_id AND r.patient_ref = $1)";

fn master(app: &TestApp) -> RecordCipher {
    RecordCipher::from_hex(&app.key_hex).unwrap()
}

fn param<'a>(parameters: &'a Value, name: &str) -> Option<&'a Value> {
    parameters["parameter"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

fn code_of(preview: &Value) -> String {
    param(preview, "confirm").unwrap()["valueString"]
        .as_str()
        .unwrap()
        .to_string()
}

fn count_of(parameters: &Value, resource_type: &str) -> i64 {
    parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "resources")
        .find(|p| p["part"][0]["valueCode"] == resource_type)
        .map(|p| p["part"][1]["valueInteger"].as_i64().unwrap())
        .unwrap_or(0)
}

async fn create(app: &TestApp, token: &str, path: &str, body: &str) -> String {
    let r = app.send_json("POST", path, token, body, &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn erasure_destroys_her_key_and_purges_her_index_and_leaves_others_untouched() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let (_, h2) = app.practitioner("Organization/h2");
    register(&app, &h1, "alice").await;
    register(&app, &h1, "bob").await;
    let obs1 = create(
        &app,
        &h1,
        "/fhir/Observation",
        &weight("Patient/alice", "61"),
    )
    .await;
    let obs2 = create(
        &app,
        &h1,
        "/fhir/Observation",
        &weight("Patient/alice", "62"),
    )
    .await;
    let cond = create(
        &app,
        &h1,
        "/fhir/Condition",
        &condition("Patient/alice", "44054006").to_string(),
    )
    .await;
    let bobs = create(&app, &h1, "/fhir/Observation", &weight("Patient/bob", "80")).await;
    // A second version of one of hers.
    let mut updated: Value = serde_json::from_str(&weight("Patient/alice", "63")).unwrap();
    updated["id"] = json!(obs2);
    let r = app
        .put(&format!("/fhir/Observation/{obs2}"), &h1, &updated, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Before: her rows are sealed with her data key, which the master key unwraps; the master
    // key alone opens none of them.
    let key = master(&app);
    let mut conn = db(&app).await;
    let wrapped = key_of(&mut conn, "Patient/alice").await.unwrap();
    assert!(!wrapped.erased);
    let wrapped = wrapped.wrapped_key.unwrap();
    let hers = key.unwrap_key("Patient/alice", &wrapped).unwrap();
    let rows = versions_of(&mut conn, "Patient/alice").await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    for row in &rows {
        assert_eq!(row.sealed_by, 1);
        let aad = aad(&row.resource_type, &row.resource_id, row.version);
        let plain = hers.open(&aad, &row.body).unwrap();
        assert!(serde_json::from_slice::<Value>(&plain).is_ok());
        assert!(key.open(&aad, &row.body).is_err());
    }
    assert!(count(&mut conn, HER_INDEX_ROWS, "Patient/alice").await > 0);

    // A token she gave an app to read her record erases nothing, not even a preview.
    let (_, reader) = app.patient("Patient/alice");
    let path = "/fhir/Patient/alice/$erase";
    let refused = app.send_json("POST", path, &reader, "", &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.text());

    // Step 1: she asks; nothing is erased yet.
    let (alice_claims, alice) = app.patient_erasing("Patient/alice");
    let preview = app.send_json("POST", path, &alice, "", &[]).await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    let preview = preview.json();
    assert_eq!(preview["resourceType"], "Parameters");
    assert_eq!(param(&preview, "total").unwrap()["valueInteger"], 4);
    assert_eq!(count_of(&preview, "Observation"), 2);
    assert_eq!(count_of(&preview, "Condition"), 1);
    assert_eq!(count_of(&preview, "Patient"), 1);
    let code = code_of(&preview);
    assert_eq!(
        app.get(&format!("/fhir/Observation/{obs1}"), &h1, &[])
            .await
            .status,
        200
    );

    // Wrong, expired, or someone else's codes erase nothing.
    let expired = records::routes::erase::confirmation_code(
        &key,
        "Patient/alice",
        &alice_claims.sub,
        chrono::Utc::now().timestamp() - 1,
    )
    .unwrap();
    let (_, mallory) = app.patient_erasing("Patient/mallory");
    let admin_claims = app.issuer.claims(Role::Admin);
    let admin = app.issuer.token(&admin_claims);
    let admins_code = code_of(&app.send_json("POST", path, &admin, "", &[]).await.json());
    for wrong in ["nope", "1.00", expired.as_str(), admins_code.as_str()] {
        let r = app
            .send_json(
                "POST",
                &format!("{path}?confirm={}", urlencoding(wrong)),
                &alice,
                "",
                &[],
            )
            .await;
        assert_eq!(r.status, 400, "{wrong}: {}", r.text());
    }
    // Nobody else may erase her: her custodian's practitioner (who may see her: 403), another
    // organisation's (404), another patient (404), even with her code.
    let r = app
        .send_json("POST", &format!("{path}?confirm={code}"), &h1, "", &[])
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    for other in [&h2, &mallory] {
        let r = app
            .send_json("POST", &format!("{path}?confirm={code}"), other, "", &[])
            .await;
        assert_eq!(r.status, 404, "{}", r.text());
    }
    assert_eq!(
        app.get(&format!("/fhir/Observation/{obs1}"), &h1, &[])
            .await
            .status,
        200
    );
    assert!(!key_of(&mut conn, "Patient/alice").await.unwrap().erased);

    // Step 2: confirmed (in a Parameters body).
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "confirm", "valueString": code}]});
    let done = app
        .send_json("POST", path, &alice, &body.to_string(), &[])
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(param(&done.json(), "total").unwrap()["valueInteger"], 4);

    // After: her key is gone, no key the service has opens any of her rows, and the index
    // holds nothing of hers.
    let erased = key_of(&mut conn, "Patient/alice").await.unwrap();
    assert!(erased.erased && erased.wrapped_key.is_none());
    let rows = versions_of(&mut conn, "Patient/alice").await;
    assert_eq!(
        rows.len(),
        9,
        "her versions kept, a deletion for each: {rows:?}"
    );
    for row in rows.iter().filter(|r| !r.deleted) {
        let aad = aad(&row.resource_type, &row.resource_id, row.version);
        assert!(key.open(&aad, &row.body).is_err());
        assert!(hers.open(&aad, &row.body).is_ok(), "ciphertext kept");
    }
    assert_eq!(count(&mut conn, HER_INDEX_ROWS, "Patient/alice").await, 0);
    for table in ["access_facts", "access_reference_sets"] {
        let sql = format!(
            "SELECT count(*) AS n FROM {table} t JOIN resources r USING (resource_type, resource_id) \
             WHERE r.patient_ref = $1"
        );
        assert_eq!(count(&mut conn, &sql, "Patient/alice").await, 0, "{table}");
    }

    // Reads answer 410, searches find nothing, history has nothing to show.
    for token in [&h1, &alice] {
        for p in [
            "/fhir/Patient/alice".to_string(),
            format!("/fhir/Observation/{obs1}"),
            format!("/fhir/Condition/{cond}"),
        ] {
            assert_eq!(app.get(&p, token, &[]).await.status, 410, "{p}");
        }
    }
    let search = app
        .get("/fhir/Observation?subject=Patient/alice", &h1, &[])
        .await;
    assert_eq!(search.status, 200);
    assert!(search.json()["entry"]
        .as_array()
        .is_none_or(|e| e.is_empty()));
    let by_code = app
        .get("/fhir/Observation?code=29463-7", &h1, &[])
        .await
        .json();
    let ids: Vec<&str> = by_code["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![bobs.as_str()]);
    let history = app
        .get(&format!("/fhir/Observation/{obs2}/_history"), &h1, &[])
        .await;
    assert_eq!(history.status, 200, "{}", history.text());
    let entries = history.json()["entry"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 3);
    assert!(
        entries.iter().all(|e| e.get("resource").is_none()),
        "{entries:?}"
    );
    let vread = app
        .get(&format!("/fhir/Observation/{obs1}/_history/1"), &h1, &[])
        .await;
    assert_eq!(vread.status, 410);
    let everything = app
        .get("/fhir/Patient/alice/$everything", &alice, &[])
        .await;
    assert_eq!(everything.status, 410);

    // Nothing more is written into her record (no new key is made for it).
    let r = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/alice", "64"),
            &[],
        )
        .await;
    assert_eq!(r.status, 410, "{}", r.text());
    let r = app
        .put(
            "/fhir/Patient/alice",
            &h1,
            &crate::helpers::patient_resource("alice", "Doe", "alice"),
            &[],
        )
        .await;
    assert_eq!(r.status, 410, "{}", r.text());
    assert!(key_of(&mut conn, "Patient/alice")
        .await
        .unwrap()
        .wrapped_key
        .is_none());
    // A second erasure finds nothing left.
    let again = app.send_json("POST", path, &alice, "", &[]).await;
    assert_eq!(again.status, 410);

    // Bob's record is untouched.
    let r = app
        .get(&format!("/fhir/Observation/{bobs}"), &h1, &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["valueQuantity"]["value"], 80);
    assert!(!key_of(&mut conn, "Patient/bob").await.unwrap().erased);
    assert!(count(&mut conn, HER_INDEX_ROWS, "Patient/bob").await > 0);

    // The ledger proves it: a permitted Delete of her record, on her own right, with the count.
    let events = app
        .wait_for_events(1, |e| {
            e.action == AccessAction::Delete
                && e.patient.as_deref() == Some("Patient/alice")
                && e.outcome == AccessOutcome::Permit
        })
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.id, alice_claims.sub);
    assert_eq!(events[0].count, 4);
    assert_eq!(
        events[0].decision.as_ref().map(|d| d.basis.as_str()),
        Some("own-record")
    );
    // The refused attempts are on the record too.
    app.wait_for_events(3, |e| {
        e.action == AccessAction::Delete
            && e.patient.as_deref() == Some("Patient/alice")
            && e.outcome == AccessOutcome::Deny
    })
    .await;
    app.cleanup().await;
}

#[actix_web::test]
async fn rows_sealed_with_the_master_key_still_open_and_are_erased_too() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    register(&app, &h1, "carol").await;
    let obs = create(
        &app,
        &h1,
        "/fhir/Observation",
        &weight("Patient/carol", "70"),
    )
    .await;
    // As a row written before data keys: sealed with the master key, sealed_by 0.
    let key = master(&app);
    let mut conn = db(&app).await;
    let hers = key
        .unwrap_key(
            "Patient/carol",
            &key_of(&mut conn, "Patient/carol")
                .await
                .unwrap()
                .wrapped_key
                .unwrap(),
        )
        .unwrap();
    let first = aad("Observation", &obs, 1);
    let row = versions_of(&mut conn, "Patient/carol")
        .await
        .into_iter()
        .find(|r| r.resource_id == obs)
        .unwrap();
    let legacy = key
        .seal(&first, &hers.open(&first, &row.body).unwrap())
        .unwrap();
    sql_query(
        "UPDATE resource_versions SET body = $1, sealed_by = 0 \
         WHERE resource_type = 'Observation' AND resource_id = $2",
    )
    .bind::<Bytea, _>(&legacy)
    .bind::<Text, _>(&obs)
    .execute(&mut conn)
    .await
    .unwrap();
    let r = app.get(&format!("/fhir/Observation/{obs}"), &h1, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["valueQuantity"]["value"], 70);

    // An administrator erases her (confirm in the query): her master-key row loses its
    // ciphertext, since the master key would still open it.
    let admin = app.token_for(Role::Admin);
    let path = "/fhir/Patient/carol/$erase";
    let preview = app.send_json("POST", path, &admin, "", &[]).await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    let code = code_of(&preview.json());
    let done = app
        .send_json("POST", &format!("{path}?confirm={code}"), &admin, "", &[])
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    for row in versions_of(&mut conn, "Patient/carol").await {
        let aad = aad(&row.resource_type, &row.resource_id, row.version);
        assert!(key.open(&aad, &row.body).is_err(), "{row:?}");
    }
    assert_eq!(
        app.get(&format!("/fhir/Observation/{obs}"), &h1, &[])
            .await
            .status,
        410
    );
    app.wait_for_events(1, |e| {
        e.action == AccessAction::Delete
            && e.patient.as_deref() == Some("Patient/carol")
            && e.outcome == AccessOutcome::Permit
            && e.decision.as_ref().is_some_and(|d| d.basis == "role")
    })
    .await;
    app.cleanup().await;
}

#[actix_web::test]
async fn erase_is_declared_and_refuses_bad_input() {
    let app = spawn_app().await;
    let (_, h1) = app.practitioner("Organization/h1");
    let metadata = app.get_public("/fhir/metadata").await.json();
    let patient = metadata["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    assert!(patient["operation"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["name"] == "erase"));
    let openapi = serde_json::to_value(records::openapi()).unwrap();
    assert!(openapi["paths"].get("/fhir/Patient/{id}/$erase").is_some());

    register(&app, &h1, "dora").await;
    let (_, dora) = app.patient("Patient/dora");
    let path = "/fhir/Patient/dora/$erase";
    for body in ["{", "{\"resourceType\":\"Patient\"}", "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"confirm\",\"valueInteger\":1}]}"] {
        let r = app.send_json("POST", path, &dora, body, &[]).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    let r = app
        .send_json("POST", "/fhir/Patient/nobody/$erase", &dora, "", &[])
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .send_json("POST", "/fhir/Patient/a$b/$erase", &dora, "", &[])
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(app.get(path, &dora, &[]).await.status, 405);
    assert_eq!(app.get("/fhir/Patient/dora", &dora, &[]).await.status, 200);
    app.cleanup().await;
}

fn urlencoding(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
