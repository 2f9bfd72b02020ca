use custodian_events::{AccessAction, AccessOutcome};
use diesel::{
    sql_query,
    sql_types::{BigInt, SmallInt, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};

use crate::helpers::{patient_resource, spawn_app, weight};

fn tx(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

#[actix_web::test]
async fn transactions_resolve_references_and_are_all_or_nothing() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let bundle = tx(
        "transaction",
        vec![
            json!({"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
                   "resource": {"resourceType": "Patient", "name": [{"family": "Tx"}]},
                   "request": {"method": "POST", "url": "Patient"}}),
            json!({"fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059",
                   "resource": serde_json::from_str::<Value>(&weight("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "72.30")).unwrap(),
                   "request": {"method": "POST", "url": "Observation"}}),
            json!({"resource": {"resourceType": "Organization", "id": "org1", "name": "Org One"},
                   "request": {"method": "PUT", "url": "Organization/org1"}}),
        ],
    );
    // Sent as text so the decimal's form (72.30) is what the client wrote.
    let text = bundle.to_string().replace("72.3", "72.30");
    let resp = app.send_json("POST", "/fhir", &token, &text, &[]).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    assert_eq!(out["type"], "transaction-response");
    let entries = out["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries {
        assert_eq!(e["response"]["status"], "201 Created", "{out}");
    }
    let patient_location = entries[0]["response"]["location"].as_str().unwrap();
    let patient_ref = patient_location
        .split("/_history")
        .next()
        .unwrap()
        .to_string();
    assert!(patient_ref.starts_with("Patient/"));
    let obs_location = entries[1]["response"]["location"].as_str().unwrap();
    let obs_path = format!("/fhir/{}", obs_location.split("/_history").next().unwrap());
    let obs = app
        .get(&obs_path, &token, &[("X-Break-Glass", "check")])
        .await;
    assert_eq!(obs.status, 200);
    assert_eq!(
        obs.json()["subject"]["reference"],
        patient_ref.as_str(),
        "urn:uuid reference rewritten"
    );
    assert!(obs.text().contains("72.30"));
    assert_eq!(
        entries[2]["response"]["location"],
        "Organization/org1/_history/1"
    );

    // One invalid entry: nothing is written.
    let bad = tx(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Organization", "name": "Should not exist"}, "request": {"method": "POST", "url": "Organization"}}),
            json!({"resource": {"resourceType": "Patient", "gender": 7}, "request": {"method": "POST", "url": "Patient"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bad).await;
    assert_eq!(resp.status, 422, "{}", resp.text());
    assert_eq!(
        app.get("/fhir/Organization?name=should", &token, &[])
            .await
            .json()["total"],
        0
    );

    // A denied entry fails the whole transaction, and the denial is recorded.
    let (h2_claims, h2) = app.practitioner("Organization/h2");
    let denied = tx(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Organization", "name": "Also not"}, "request": {"method": "POST", "url": "Organization"}}),
            json!({"request": {"method": "DELETE", "url": obs_path.trim_start_matches("/fhir/")}}),
        ],
    );
    let resp = app.post("/fhir", &h2, &denied).await;
    // Hospital2 may not even see it: the answer an unknown id gets.
    assert_eq!(resp.status, 404, "{}", resp.text());
    assert_eq!(
        app.get("/fhir/Organization?name=also", &token, &[])
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        app.get(&obs_path, &token, &[("X-Break-Glass", "check")])
            .await
            .status,
        200
    );
    let events = app
        .wait_for_events(1, |e| {
            e.actor.id == h2_claims.sub && e.outcome == AccessOutcome::Deny
        })
        .await;
    assert_eq!(events[0].action, AccessAction::Delete);

    // Not a transaction or batch.
    assert_eq!(
        app.post("/fhir", &token, &tx("collection", vec![]))
            .await
            .status,
        400
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn batches_answer_per_entry() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let bundle = tx(
        "batch",
        vec![
            json!({"resource": {"resourceType": "Organization", "name": "Batch Org"}, "request": {"method": "POST", "url": "Organization"}}),
            json!({"resource": {"resourceType": "Patient", "gender": 7}, "request": {"method": "POST", "url": "Patient"}}),
            json!({"request": {"method": "DELETE", "url": "Organization/missing"}}),
            json!({"request": {"method": "GET", "url": "Organization/x"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    assert_eq!(out["type"], "batch-response");
    let statuses: Vec<&str> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses[0], "201 Created");
    assert!(statuses[1].starts_with("422"), "{statuses:?}");
    assert!(statuses[2].starts_with("404"), "{statuses:?}");
    assert!(statuses[3].starts_with("400"), "{statuses:?}");
    assert_eq!(
        out["entry"][1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(
        app.get("/fhir/Organization?name=batch", &token, &[])
            .await
            .json()["total"],
        1
    );
    app.cleanup().await;
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Sealed {
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = SmallInt)]
    sealed_by: i16,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    patient_ref: Option<String>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Entries are written together at the end of a transaction, yet each is decided on what the
/// ones before it wrote: a Patient and her Observation in one Bundle, the same resource
/// written twice, and a denial that leaves nothing behind (not even her data key).
#[actix_web::test]
async fn entries_see_what_earlier_entries_of_their_transaction_wrote() {
    let app = spawn_app().await;
    let (claims, token) = app.practitioner("Organization/h1");
    let obs = |kg: &str| serde_json::from_str::<Value>(&weight("Patient/txp", kg)).unwrap();
    let mut second = obs("71.5");
    second["id"] = json!("txo");
    let mut first = obs("70.5");
    first["id"] = json!("txo");
    let bundle = tx(
        "transaction",
        vec![
            json!({"resource": patient_resource("txp", "Batch", "Bea"),
                   "request": {"method": "PUT", "url": "Patient/txp"}}),
            json!({"resource": first, "request": {"method": "PUT", "url": "Observation/txo"}}),
            json!({"resource": second, "request": {"method": "PUT", "url": "Observation/txo"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    let answers: Vec<(&str, &str)> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["response"]["status"].as_str().unwrap(),
                e["response"]["location"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            ("201 Created", "Patient/txp/_history/1"),
            ("201 Created", "Observation/txo/_history/1"),
            ("200 OK", "Observation/txo/_history/2"),
        ]
    );
    let read = app.get("/fhir/Observation/txo", &token, &[]).await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["valueQuantity"]["value"], 71.5);
    assert_eq!(read.json()["meta"]["versionId"], "2");
    // Her custodian was the writer's organisation when the Observation was decided.
    let found = app
        .get("/fhir/Observation?subject=Patient/txp", &token, &[])
        .await;
    assert_eq!(found.json()["total"], 1, "{}", found.text());
    let mut conn = AsyncPgConnection::establish(&app.database_url)
        .await
        .unwrap();
    let sealed: Vec<Sealed> = sql_query(
        "SELECT version, sealed_by, patient_ref FROM resource_versions \
         WHERE resource_id = 'txo' ORDER BY version",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let hers = |version| Sealed {
        version,
        sealed_by: 1,
        patient_ref: Some("Patient/txp".into()),
    };
    assert_eq!(sealed, [hers(1), hers(2)], "sealed with her own data key");
    let facts: Vec<Count> = sql_query(
        "SELECT version AS n FROM access_facts WHERE resource_id = 'txo' \
         UNION ALL SELECT version FROM access_reference_sets WHERE resource_id = 'txo'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(facts.iter().map(|c| c.n).collect::<Vec<_>>(), [2, 2]);
    let writes = app
        .wait_for_events(3, |e| {
            e.actor.id == claims.sub
                && e.outcome == AccessOutcome::Permit
                && matches!(e.action, AccessAction::Create | AccessAction::Update)
        })
        .await;
    assert_eq!(writes.len(), 3, "one event per entry");

    // Another organisation's Bundle: a Patient of its own, then an Observation in h1's
    // patient's record, which it may not write. Nothing of it stays.
    let (h2_claims, h2) = app.practitioner("Organization/h2");
    let denied = tx(
        "transaction",
        vec![
            json!({"resource": patient_resource("txq", "Other", "Oli"),
                   "request": {"method": "PUT", "url": "Patient/txq"}}),
            json!({"resource": obs("80.0"), "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let resp = app.post("/fhir", &h2, &denied).await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(app.get("/fhir/Patient/txq", &h2, &[]).await.status, 404);
    let left: Vec<Count> = sql_query(
        "SELECT count(*) AS n FROM patient_keys WHERE patient_ref = 'Patient/txq' \
         UNION ALL SELECT count(*) FROM resources WHERE resource_id = 'txq'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(left.iter().map(|c| c.n).collect::<Vec<_>>(), [0, 0]);
    app.wait_for_events(1, |e| {
        e.actor.id == h2_claims.sub
            && e.outcome == AccessOutcome::Deny
            && e.action == AccessAction::Create
    })
    .await;
    app.cleanup().await;
}
