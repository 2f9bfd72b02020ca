use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use custodian_auth::Role;
use ledger::tree::{leaf_hash, verify_inclusion};
use serde_json::Value;

use crate::helpers::{event, spawn_app, spawn_app_with_interval, TestApp};

/// Checks an `/ledger/accesses` answer: the checkpoint verifies with the published key, it is
/// the tree size and root the answer names, and every entry's leaf hash and inclusion proof
/// verify against that root. Returns the entries' event ids.
async fn verify_accesses(app: &TestApp, body: &Value) -> Vec<String> {
    let note = body["checkpoint"].as_str().expect("checkpoint note");
    let cp = ledger::verify_note(note, &app.verifier_key().await).expect("the checkpoint verifies");
    assert_eq!(body["tree_size"].as_u64(), Some(cp.tree_size));
    assert_eq!(
        body["root_hash"].as_str(),
        Some(STANDARD.encode(cp.root_hash).as_str())
    );
    let mut ids = Vec::new();
    for entry in body["entries"].as_array().expect("entries") {
        let index = entry["index"].as_u64().expect("index");
        assert!(index < cp.tree_size);
        let payload = entry["payload"].as_str().expect("payload");
        let leaf = STANDARD
            .decode(entry["leaf_hash"].as_str().expect("leaf_hash"))
            .expect("base64");
        assert_eq!(
            leaf,
            leaf_hash(payload.as_bytes()),
            "the leaf hash is the hash of the payload"
        );
        let parsed: Value = serde_json::from_str(payload).expect("payload is JSON");
        assert_eq!(parsed, entry["event"]);
        let proof: Vec<Vec<u8>> = entry["inclusion_proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|h| STANDARD.decode(h.as_str().expect("hash")).expect("base64"))
            .collect();
        verify_inclusion(index, cp.tree_size, &leaf, &proof, &cp.root_hash)
            .unwrap_or_else(|e| panic!("entry {index}: {e}"));
        // The proof does not prove a tampered payload.
        let forged = leaf_hash(payload.replace("Patient/", "Patient/x").as_bytes());
        assert!(verify_inclusion(index, cp.tree_size, &forged, &proof, &cp.root_hash).is_err());
        ids.push(entry["event"]["id"].as_str().expect("id").to_string());
    }
    ids
}

#[actix_web::test]
async fn patients_see_who_accessed_their_data_with_verifiable_proofs() {
    let mut app = spawn_app().await;
    let (doctor, doctor_token) = app.issuer.practitioner("Organization/h1");
    let (_, other_doctor_token) = app.issuer.practitioner("Organization/h2");
    let (_, alice) = app.issuer.patient("Patient/alice");
    let (_, bob) = app.issuer.patient("Patient/bob");

    let mut alice_ids = Vec::new();
    for i in 0..5 {
        let e = event(Some("Patient/alice"), &doctor.sub);
        alice_ids.push(e.id.to_string());
        app.publish(&e).await;
        // Interleave other patients' accesses so the proofs cover varied positions.
        app.publish(&event(Some(&format!("Patient/p{i}")), "someone-else"))
            .await;
    }
    let bob_event = event(Some("Patient/bob"), "someone-else");
    app.publish(&bob_event).await;
    app.wait_for_checkpoint(11).await;

    // Alice, with or without naming herself.
    for path in ["/ledger/accesses", "/ledger/accesses?patient=Patient/alice"] {
        let res = app.get(path, Some(&alice)).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let mut ids = verify_accesses(&app, &res.json()).await;
        ids.sort();
        let mut want = alice_ids.clone();
        want.sort();
        assert_eq!(ids, want);
    }

    // Bob sees his one access, and not Alice's.
    let res = app.get("/ledger/accesses", Some(&bob)).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        verify_accesses(&app, &res.json()).await,
        vec![bob_event.id.to_string()]
    );
    let res = app
        .get("/ledger/accesses?patient=Patient/alice", Some(&bob))
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert_eq!(res.json()["error"], "forbidden");

    // The practitioner sees their own accesses; another practitioner sees none of them.
    let res = app
        .get(
            "/ledger/accesses?patient=Patient/alice",
            Some(&doctor_token),
        )
        .await;
    assert_eq!(verify_accesses(&app, &res.json()).await.len(), 5);
    let res = app
        .get(
            "/ledger/accesses?patient=Patient/alice",
            Some(&other_doctor_token),
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(verify_accesses(&app, &res.json()).await.is_empty());

    // Auditors see everything; `_count` limits to the newest.
    let res = app
        .get("/ledger/accesses?_count=3", Some(&app.auditor()))
        .await;
    let body = res.json();
    verify_accesses(&app, &body).await;
    let indices: Vec<u64> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![10, 9, 8]);
    let res = app
        .get(
            "/ledger/accesses?since=2999-01-01T00:00:00Z",
            Some(&app.auditor()),
        )
        .await;
    assert!(res.json()["entries"].as_array().unwrap().is_empty());

    // Entries one by one follow the same rules.
    let res = app.get("/ledger/entries/0", Some(&alice)).await;
    assert_eq!(res.status, 200);
    assert_eq!(app.get("/ledger/entries/0", Some(&bob)).await.status, 403);
    assert_eq!(
        app.get("/ledger/entries/0", Some(&doctor_token))
            .await
            .status,
        200
    );
    assert_eq!(
        app.get("/ledger/entries/0", Some(&other_doctor_token))
            .await
            .status,
        403
    );
    assert_eq!(
        app.get("/ledger/entries/999", Some(&app.auditor()))
            .await
            .status,
        404
    );
    let res = app.get("/ledger/entries/abc", Some(&app.auditor())).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"], "invalid");

    // Tokens are required, and services read no entries.
    assert_eq!(app.get("/ledger/accesses", None).await.status, 401);
    assert_eq!(
        app.get("/ledger/accesses", Some("not-a-token"))
            .await
            .status,
        401
    );
    let service = app.issuer.token(&app.issuer.claims(Role::Service));
    assert_eq!(
        app.get("/ledger/accesses", Some(&service)).await.status,
        403
    );
    assert_eq!(
        app.get("/ledger/accesses?patient=bad%20ref", Some(&app.auditor()))
            .await
            .status,
        400
    );
    assert_eq!(
        app.get("/ledger/accesses?_count=0", Some(&app.auditor()))
            .await
            .status,
        400
    );
    app.finish().await;
}

#[actix_web::test]
async fn accesses_sign_a_fresh_checkpoint_when_entries_are_newer_than_the_latest() {
    // The periodic signer effectively never runs: only on-demand signing can cover the entry.
    let mut app = spawn_app_with_interval(Duration::from_secs(3600)).await;
    let (_, alice) = app.issuer.patient("Patient/alice");
    let e = event(Some("Patient/alice"), "u1");
    app.publish(&e).await;
    app.wait_for_metric("ledger_appends_total", 1.0).await;
    let (_, before) = app.verified_checkpoint().await;
    assert_eq!(before.tree_size, 0);

    let res = app.get("/ledger/accesses", Some(&alice)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let body = res.json();
    assert_eq!(body["tree_size"], 1);
    assert_eq!(verify_accesses(&app, &body).await, vec![e.id.to_string()]);
    let (_, after) = app.verified_checkpoint().await;
    assert_eq!(after.tree_size, 1, "the fresh checkpoint is the latest one");
    app.finish().await;
}
