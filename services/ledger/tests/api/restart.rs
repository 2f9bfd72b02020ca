use base64::{engine::general_purpose::STANDARD, Engine as _};
use ledger::tree::verify_consistency;

use crate::helpers::{event, spawn_app};

#[actix_web::test]
async fn the_tree_survives_a_restart() {
    let mut app = spawn_app().await;
    for i in 0..5 {
        app.publish(&event(Some(&format!("Patient/p{i}")), "u1"))
            .await;
    }
    let (note, before) = app.wait_for_checkpoint(5).await;
    let key = app.verifier_key().await;

    let mut app = app.restart().await;
    assert_eq!(app.verifier_key().await, key, "the signing key persisted");
    let (note_after, after) = app.verified_checkpoint().await;
    assert_eq!(after, before, "same size and root after the restart");
    assert_eq!(note_after, note);

    // It keeps growing from where it was, consistently.
    app.publish(&event(Some("Patient/p9"), "u1")).await;
    let (_, grown) = app.wait_for_checkpoint(6).await;
    assert_eq!(grown.tree_size, 6);
    let res = app
        .get(
            "/ledger/proof/consistency?first=5&second=6",
            Some(&app.auditor()),
        )
        .await;
    let proof: Vec<Vec<u8>> = res.json()["consistency_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect();
    verify_consistency(5, 6, &proof, &before.root_hash, &grown.root_hash)
        .expect("consistent across the restart");
    app.finish().await;
}
