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
    // A read entry is served: an unknown id is a 404, as GET Organization/x answers.
    assert!(statuses[3].starts_with("404"), "{statuses:?}");
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
/// ones before it wrote: a Patient and her Observation in one Bundle, and a denial that leaves
/// nothing behind (not even her data key). The same resource written twice fails the
/// transaction (R4 http.html#trules: identities must not overlap).
#[actix_web::test]
async fn entries_see_what_earlier_entries_of_their_transaction_wrote() {
    let app = spawn_app().await;
    let (claims, token) = app.practitioner("Organization/h1");
    let obs = |kg: &str| serde_json::from_str::<Value>(&weight("Patient/txp", kg)).unwrap();
    let mut second = obs("71.5");
    second["id"] = json!("txo");
    let mut first = obs("70.5");
    first["id"] = json!("txo");
    let twice = tx(
        "transaction",
        vec![
            json!({"resource": patient_resource("txp", "Batch", "Bea"),
                   "request": {"method": "PUT", "url": "Patient/txp"}}),
            json!({"resource": first.clone(), "request": {"method": "PUT", "url": "Observation/txo"}}),
            json!({"resource": second.clone(), "request": {"method": "PUT", "url": "Observation/txo"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &twice).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("Observation/txo"), "{}", resp.text());
    assert_eq!(app.get("/fhir/Patient/txp", &token, &[]).await.status, 404);
    // First the Patient and an Observation, then the Observation again: one write each.
    let bundle = tx(
        "transaction",
        vec![
            json!({"resource": patient_resource("txp", "Batch", "Bea"),
                   "request": {"method": "PUT", "url": "Patient/txp"}}),
            json!({"resource": first, "request": {"method": "PUT", "url": "Observation/txo"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let again = tx(
        "transaction",
        vec![json!({"resource": second, "request": {"method": "PUT", "url": "Observation/txo"}})],
    );
    let resp = app.post("/fhir", &token, &again).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    assert_eq!(out["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(
        out["entry"][0]["response"]["location"],
        "Observation/txo/_history/2"
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

/// A transaction runs its DELETEs, then its POSTs, then its PUTs and PATCHes, then its GETs
/// and HEADs, whatever their order in the Bundle; the response keeps the Bundle's order. A
/// read sees the transaction's writes, and returns the resource as stored (decimals as
/// written).
#[actix_web::test]
async fn transactions_run_in_the_specified_order_and_reads_see_their_writes() {
    let app = spawn_app().await;
    let (claims, token) = app.practitioner("Organization/h1");
    let r = app
        .put(
            "/fhir/Patient/ordp",
            &token,
            &patient_resource("ordp", "Before", "Ola"),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = app
        .put(
            "/fhir/Organization/gone",
            &token,
            &json!({"resourceType": "Organization", "id": "gone", "name": "Gone"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut obs = serde_json::from_str::<Value>(&weight("Patient/ordp", "60.5")).unwrap();
    obs["id"] = json!("ordo");
    // Reads first, then the writes they must see, in reverse of the processing order.
    let bundle = tx(
        "transaction",
        vec![
            json!({"request": {"method": "GET", "url": "Patient/ordp?_elements=name"}}),
            json!({"request": {"method": "GET", "url": "Observation/ordo"}}),
            json!({"request": {"method": "HEAD", "url": "Patient/ordp/_history/2"}}),
            json!({"resource": patient_resource("ordp", "After", "Ola"),
                   "request": {"method": "PUT", "url": "Patient/ordp"}}),
            json!({"resource": obs, "request": {"method": "PUT", "url": "Observation/ordo"}}),
            json!({"resource": {"resourceType": "Organization", "name": "New"},
                   "request": {"method": "POST", "url": "Organization"}}),
            json!({"request": {"method": "DELETE", "url": "Organization/gone"}}),
        ],
    );
    let text = bundle.to_string().replace("60.5", "60.50");
    let resp = app.send_json("POST", "/fhir", &token, &text, &[]).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    let statuses: Vec<&str> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "200 OK",
            "200 OK",
            "200 OK",
            "200 OK",
            "201 Created",
            "201 Created",
            "204 No Content"
        ]
    );
    // Only the elements asked for, of the version the PUT wrote.
    let patient = &out["entry"][0];
    assert_eq!(patient["resource"]["name"][0]["family"], "After");
    assert!(patient["resource"].get("birthDate").is_none(), "{patient}");
    assert_eq!(patient["response"]["location"], "Patient/ordp/_history/2");
    assert_eq!(patient["response"]["etag"], "W/\"2\"");
    let observation = &out["entry"][1];
    assert_eq!(observation["resource"]["meta"]["versionId"], "1");
    assert_eq!(
        observation["response"]["lastModified"],
        observation["resource"]["meta"]["lastUpdated"]
    );
    // As stored: 60.50, not 60.5.
    assert!(resp.text().contains(r#""value":60.50"#), "{}", resp.text());
    assert!(
        out["entry"][2].get("resource").is_none(),
        "HEAD returns none"
    );
    assert_eq!(out["entry"][2]["response"]["etag"], "W/\"2\"");
    // The reads are recorded as reads, with the writes.
    app.wait_for_events(3, |e| {
        e.actor.id == claims.sub
            && e.action == AccessAction::Read
            && e.outcome == AccessOutcome::Permit
    })
    .await;
    assert_eq!(
        app.get("/fhir/Organization/gone", &token, &[]).await.status,
        410
    );

    // A read that fails (here: a version that does not exist) fails the transaction.
    let bundle = tx(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Organization", "name": "Not kept"},
                   "request": {"method": "POST", "url": "Organization"}}),
            json!({"request": {"method": "GET", "url": "Patient/ordp/_history/9"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 404, "{}", resp.text());
    assert_eq!(
        app.get("/fhir/Organization?name=not", &token, &[])
            .await
            .json()["total"],
        0
    );
    // A search entry runs after the writes and sees them; its Bundle is the entry's resource.
    let bundle = tx(
        "transaction",
        vec![
            json!({"request": {"method": "GET", "url": "Patient?name=renamed&_total=accurate"}}),
            json!({"resource": patient_resource("ordp", "Renamed", "Ola"),
                   "request": {"method": "PUT", "url": "Patient/ordp"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let found = &resp.json()["entry"][0]["resource"];
    assert_eq!(found["type"], "searchset", "{found}");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["entry"][0]["resource"]["id"], "ordp");
    // In a batch too; a malformed search fails only its entry.
    let bundle = tx(
        "batch",
        vec![
            json!({"request": {"method": "GET", "url": "Patient?name=renamed"}}),
            json!({"request": {"method": "GET", "url": "Patient?birthdate=notadate"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    assert_eq!(
        out["entry"][0]["resource"]["entry"][0]["resource"]["id"],
        "ordp"
    );
    assert!(
        out["entry"][1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("400"),
        "{out}"
    );
    // Another organisation's valid account finds nothing of h1's through a Bundle either.
    let (_, other) = app.practitioner("Organization/h9");
    let bundle = tx(
        "batch",
        vec![json!({"request": {"method": "GET", "url": "Patient?name=renamed&_total=accurate"}})],
    );
    let resp = app.post("/fhir", &other, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let found = &resp.json()["entry"][0]["resource"];
    assert_eq!(found["total"], 0, "{found}");
    app.cleanup().await;
}

/// Conditions are matched on the state before the transaction: a conditional create that
/// matches a resource the same transaction deletes names it twice, which fails the transaction
/// (before, it answered 200 with the resource it deleted).
#[actix_web::test]
async fn a_condition_matching_what_the_transaction_deletes_fails_it() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let org = json!({"resourceType": "Organization", "id": "cond",
                     "identifier": [{"system": "urn:t", "value": "cond"}], "name": "Cond"});
    let r = app.put("/fhir/Organization/cond", &token, &org, &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bundle = tx(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Organization", "name": "Cond again",
                                "identifier": [{"system": "urn:t", "value": "cond"}]},
                   "request": {"method": "POST", "url": "Organization",
                               "ifNoneExist": "identifier=urn:t|cond"}}),
            json!({"request": {"method": "DELETE", "url": "Organization/cond"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(
        app.get("/fhir/Organization/cond", &token, &[]).await.status,
        200
    );
    // Without the delete it matches what was there before: nothing is created.
    let bundle = tx(
        "transaction",
        vec![
            json!({"request": {"method": "GET", "url": "Organization/cond"}}),
            json!({"resource": {"resourceType": "Organization", "name": "Cond again",
                                "identifier": [{"system": "urn:t", "value": "cond"}]},
                   "request": {"method": "POST", "url": "Organization",
                               "ifNoneExist": "identifier=urn:t|cond"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    assert_eq!(
        out["entry"][1]["response"]["location"],
        "Organization/cond/_history/1"
    );
    assert_eq!(out["entry"][0]["resource"]["name"], "Cond");
    app.cleanup().await;
}

fn meta_body(meta: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "meta", "valueMeta": meta}]})
}

/// `$meta-add`, `$meta-delete` and `$meta` as entries of transactions and batches: decided and
/// recorded as the operations are (an update in place, no new version; a read), a `$meta` read
/// after the change of its transaction.
#[actix_web::test]
async fn meta_operations_are_bundle_entries() {
    let app = spawn_app().await;
    let (h1_claims, h1) = app.practitioner("Organization/h1");
    let (h2_claims, h2) = app.practitioner("Organization/h2");
    crate::helpers::register(&app, &h1, "metap").await;
    let r = app
        .send_json(
            "POST",
            "/fhir/Observation",
            &h1,
            &weight("Patient/metap", "60"),
            &[],
        )
        .await;
    let obs = format!("Observation/{}", r.json()["id"].as_str().unwrap());
    let tag = json!({"tag": [{"system": "urn:custodian:test", "code": "reviewed"}]});
    let bundle = tx(
        "transaction",
        vec![
            json!({"request": {"method": "GET", "url": format!("{obs}/$meta")}}),
            json!({"resource": meta_body(tag.clone()),
                   "request": {"method": "POST", "url": format!("{obs}/$meta-add")}}),
        ],
    );
    let resp = app.post("/fhir", &h1, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    for e in out["entry"].as_array().unwrap() {
        assert_eq!(e["response"]["status"], "200 OK", "{out}");
        let meta = &e["resource"]["parameter"][0]["valueMeta"];
        assert_eq!(e["resource"]["parameter"][0]["name"], "return");
        assert_eq!(meta["tag"][0]["code"], "reviewed", "{out}");
        assert_eq!(meta["versionId"], "1", "in place: {out}");
    }
    let read = app.get(&format!("/fhir/{obs}"), &h1, &[]).await;
    assert_eq!(read.header("etag").as_deref(), Some("W/\"1\""));
    assert_eq!(read.json()["meta"]["tag"][0]["code"], "reviewed");
    app.wait_for_events(1, |e| {
        e.actor.id == h1_claims.sub
            && e.action == AccessAction::Update
            && e.outcome == AccessOutcome::Permit
    })
    .await;

    // Hospital2 may not see it: in a batch, the 404 of an unknown id, its denial recorded as
    // an update, nothing changed; a malformed change is a 400 of its own.
    let bundle = tx(
        "batch",
        vec![
            json!({"resource": meta_body(json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]})),
                   "request": {"method": "POST", "url": format!("{obs}/$meta-add")}}),
            json!({"resource": {"resourceType": "Parameters"},
                   "request": {"method": "POST", "url": format!("{obs}/$meta-delete")}}),
            json!({"request": {"method": "GET", "url": format!("{obs}/_history/1/$meta")}}),
        ],
    );
    let resp = app.post("/fhir", &h2, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    let statuses: Vec<&str> = out["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert!(statuses[0].starts_with("404"), "{statuses:?}");
    assert!(statuses[1].starts_with("400"), "{statuses:?}");
    assert!(statuses[2].starts_with("404"), "{statuses:?}");
    app.wait_for_events(1, |e| {
        e.actor.id == h2_claims.sub
            && e.action == AccessAction::Update
            && e.outcome == AccessOutcome::Deny
    })
    .await;
    let read = app.get(&format!("/fhir/{obs}"), &h1, &[]).await;
    assert!(read.json()["meta"].get("security").is_none());

    // The custodian takes the tag off again in a batch.
    let bundle = tx(
        "batch",
        vec![json!({"resource": meta_body(tag),
                    "request": {"method": "POST", "url": format!("{obs}/$meta-delete")}})],
    );
    let resp = app.post("/fhir", &h1, &bundle).await;
    assert_eq!(resp.json()["entry"][0]["response"]["status"], "200 OK");
    let read = app.get(&format!("/fhir/{obs}"), &h1, &[]).await;
    assert!(read.json()["meta"].get("tag").is_none(), "{}", read.text());
    app.cleanup().await;
}

/// Conditional creates of one transaction with the same condition make one resource (the
/// first creates, the others name it; references to any of their fullUrls go to it), and name
/// one resource when it exists, as HAPI FHIR does: not two resources, nor a 400 for writing
/// one resource twice.
#[actix_web::test]
async fn conditional_creates_with_one_condition_make_one_resource() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let org = json!({"resourceType": "Organization", "name": "Once",
                     "identifier": [{"system": "urn:t", "value": "once"}]});
    let entry = |full_url: &str| {
        json!({"fullUrl": full_url, "resource": org,
               "request": {"method": "POST", "url": "Organization",
                           "ifNoneExist": "identifier=urn:t|once"}})
    };
    let bundle = tx(
        "transaction",
        vec![
            entry("urn:uuid:5d8e4a2c-0000-4000-8000-000000000001"),
            json!({"resource": {"resourceType": "Location", "name": "Ward",
                                "managingOrganization": {"reference": "urn:uuid:5d8e4a2c-0000-4000-8000-000000000002"}},
                   "request": {"method": "POST", "url": "Location"}}),
            entry("urn:uuid:5d8e4a2c-0000-4000-8000-000000000002"),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    assert_eq!(
        out["entry"][0]["response"]["status"], "201 Created",
        "{out}"
    );
    assert_eq!(out["entry"][2]["response"]["status"], "200 OK", "{out}");
    let location = out["entry"][0]["response"]["location"].as_str().unwrap();
    assert_eq!(out["entry"][2]["response"]["location"], location);
    let found = app
        .get("/fhir/Organization?identifier=urn:t%7Conce", &token, &[])
        .await
        .json();
    assert_eq!(found["total"], 1, "{found}");
    let org_ref = location.split("/_history").next().unwrap();
    let ward = out["entry"][1]["response"]["location"].as_str().unwrap();
    let ward = app
        .get(
            &format!("/fhir/{}", ward.split("/_history").next().unwrap()),
            &token,
            &[],
        )
        .await
        .json();
    assert_eq!(ward["managingOrganization"]["reference"], org_ref);

    // Again, now that it exists: both name it.
    let resp = app
        .post(
            "/fhir",
            &token,
            &tx(
                "transaction",
                vec![
                    entry("urn:uuid:5d8e4a2c-0000-4000-8000-000000000003"),
                    entry("urn:uuid:5d8e4a2c-0000-4000-8000-000000000004"),
                ],
            ),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    for e in out["entry"].as_array().unwrap() {
        assert_eq!(e["response"]["status"], "200 OK", "{out}");
        assert_eq!(e["response"]["location"], location);
    }
    app.cleanup().await;
}

/// Conditional references are resolved after the writes before their entry (R4
/// http.html#trules, step 5): one naming what a POST of the transaction created finds it, one
/// naming what a DELETE of it removed finds nothing (412). Before, both were matched on the
/// state before the transaction: the first was a 412, the second referred to the deleted
/// resource.
#[actix_web::test]
async fn conditional_references_see_the_writes_before_them() {
    let app = spawn_app().await;
    let (_, token) = app.practitioner("Organization/h1");
    let mut patient = patient_resource("x", "Ref", "Rae");
    patient.as_object_mut().unwrap().remove("id");
    patient["identifier"] = json!([{"system": "urn:t", "value": "new"}]);
    let obs =
        serde_json::from_str::<Value>(&weight("Patient?identifier=urn:t|new", "61.0")).unwrap();
    let bundle = tx(
        "transaction",
        vec![
            json!({"resource": patient, "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": obs, "request": {"method": "POST", "url": "Observation"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let out = resp.json();
    let patient_ref = out["entry"][0]["response"]["location"]
        .as_str()
        .unwrap()
        .split("/_history")
        .next()
        .unwrap()
        .to_string();
    let obs_path = out["entry"][1]["response"]["location"].as_str().unwrap();
    let read = app
        .get(
            &format!("/fhir/{}", obs_path.split("/_history").next().unwrap()),
            &token,
            &[],
        )
        .await
        .json();
    assert_eq!(read["subject"]["reference"], patient_ref.as_str());

    let org = json!({"resourceType": "Organization", "id": "refgone", "name": "Gone",
                     "identifier": [{"system": "urn:t", "value": "refgone"}]});
    let r = app
        .put("/fhir/Organization/refgone", &token, &org, &[])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let bundle = tx(
        "transaction",
        vec![
            json!({"resource": {"resourceType": "Location", "name": "Ward",
                                "managingOrganization": {"reference": "Organization?identifier=urn:t|refgone"}},
                   "request": {"method": "POST", "url": "Location"}}),
            json!({"request": {"method": "DELETE", "url": "Organization/refgone"}}),
        ],
    );
    let resp = app.post("/fhir", &token, &bundle).await;
    assert_eq!(resp.status, 412, "{}", resp.text());
    assert_eq!(
        app.get("/fhir/Organization/refgone", &token, &[])
            .await
            .status,
        200
    );
    app.cleanup().await;
}
