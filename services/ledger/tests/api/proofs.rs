use base64::{engine::general_purpose::STANDARD, Engine as _};
use ledger::tree::{verify_consistency, verify_inclusion};
use serde_json::Value;

use crate::helpers::{event, spawn_app};

fn hashes(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|h| {
            STANDARD
                .decode(h.as_str().expect("string"))
                .expect("base64")
        })
        .collect()
}

#[actix_web::test]
async fn consistency_proofs_between_checkpoints_verify() {
    let mut app = spawn_app().await;
    let token = app.auditor();
    for _ in 0..3 {
        app.publish(&event(Some("Patient/alice"), "u1")).await;
    }
    let (_, first) = app.wait_for_checkpoint(3).await;
    assert_eq!(first.tree_size, 3);
    for _ in 0..6 {
        app.publish(&event(Some("Patient/bob"), "u2")).await;
    }
    let (_, second) = app.wait_for_checkpoint(9).await;
    assert_eq!(second.tree_size, 9);

    let res = app
        .get("/ledger/proof/consistency?first=3&second=9", Some(&token))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let body = res.json();
    let proof = hashes(&body["consistency_proof"]);
    assert!(!proof.is_empty());
    // Verified against the roots the two signed checkpoints carry, not the answer's.
    verify_consistency(3, 9, &proof, &first.root_hash, &second.root_hash).expect("consistent");
    assert!(verify_consistency(3, 9, &proof, &second.root_hash, &first.root_hash).is_err());
    assert_eq!(
        body["first_root"].as_str(),
        Some(STANDARD.encode(first.root_hash).as_str())
    );

    // Inclusion of leaf 1 in the second checkpoint's tree.
    let res = app
        .get("/ledger/proof/inclusion?index=1&tree_size=9", Some(&token))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let body = res.json();
    let leaf = STANDARD
        .decode(body["leaf_hash"].as_str().unwrap())
        .unwrap();
    verify_inclusion(
        1,
        9,
        &leaf,
        &hashes(&body["inclusion_proof"]),
        &second.root_hash,
    )
    .expect("included");
    // Without tree_size: the latest checkpoint's.
    let res = app
        .get("/ledger/proof/inclusion?index=8", Some(&token))
        .await;
    assert_eq!(res.json()["tree_size"], 9);

    // Out of range: 400 for impossible requests, 404 for sizes the log does not have.
    for (path, status) in [
        ("/ledger/proof/consistency?first=0&second=3", 400),
        ("/ledger/proof/consistency?first=5&second=3", 400),
        ("/ledger/proof/consistency?first=3&second=100", 404),
        ("/ledger/proof/consistency?first=x&second=3", 400),
        ("/ledger/proof/consistency?first=3", 400),
        ("/ledger/proof/inclusion?index=9&tree_size=9", 400),
        ("/ledger/proof/inclusion?index=-1&tree_size=9", 400),
        ("/ledger/proof/inclusion?index=3&tree_size=100", 404),
    ] {
        let res = app.get(path, Some(&token)).await;
        assert_eq!(res.status, status, "{path}: {}", res.body);
        assert!(res.json()["message"].is_string(), "{path}: JSON error body");
    }
    assert_eq!(
        app.get("/ledger/proof/consistency?first=1&second=3", None)
            .await
            .status,
        401
    );
    app.finish().await;
}
