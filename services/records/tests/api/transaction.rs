use custodian_events::{AccessAction, AccessOutcome};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, weight};

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
