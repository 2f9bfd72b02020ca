//! Signing keys from a file, rotated: sign with A, restart with [B, A], new checkpoints are
//! B's, old ones still verify with A, and `/ledger/key` lists both; a file without the key
//! of the latest checkpoint still starts, and the listing keeps the old keys.

use ledger::configuration::Settings;

use crate::{
    helpers::{event, spawn_app_configured, TestApp},
    witness::{key_file, log_signer},
};

/// `(verifier key, status)` of every key `/ledger/key` lists.
async fn listed_keys(app: &TestApp) -> Vec<(String, String)> {
    let res = app.get("/ledger/key", None).await;
    assert_eq!(res.status, 200);
    res.json()["verifier_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["verifier_key"].as_str().unwrap().to_string(),
                k["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits for a served checkpoint of at least `size` leaves signed by `key`.
async fn wait_for_signed_by(app: &TestApp, size: u64, key: &str) -> (String, ledger::Checkpoint) {
    for _ in 0..200 {
        let note = app.checkpoint().await;
        if let Ok(cp) = ledger::verify_note(&note, key) {
            if cp.tree_size >= size {
                return (note, cp);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no checkpoint of size {size} signed by {key} within 10 s");
}

#[actix_web::test]
async fn signing_keys_rotate_and_old_checkpoints_stay_verifiable() {
    let (a, b, c) = (log_signer(), log_signer(), log_signer());
    let (ka, kb, kc) = (a.verifier_key(), b.verifier_key(), c.verifier_key());
    let file_a = key_file(&[&a]);
    let mut app = spawn_app_configured(|s: &mut Settings| s.signing_key_file = Some(file_a)).await;
    for i in 0..3 {
        app.publish(&event(Some(&format!("Patient/p{i}")), "u1"))
            .await;
    }
    let (note_a, cp_a) = app.wait_for_checkpoint(3).await;
    assert_eq!(app.verifier_key().await, ka);
    assert_eq!(
        listed_keys(&app).await,
        vec![(ka.clone(), "current".into())]
    );

    // Rotation: B signs, A is retired.
    let file_ba = key_file(&[&b, &a]);
    let mut app = app
        .restart_with(|s: &mut Settings| s.signing_key_file = Some(file_ba))
        .await;
    assert_eq!(app.verifier_key().await, kb);
    assert_eq!(
        listed_keys(&app).await,
        vec![
            (kb.clone(), "current".into()),
            (ka.clone(), "retired".into())
        ]
    );
    // What A signed is still served until the log grows, and verifies with A.
    let served = app.checkpoint().await;
    assert_eq!(ledger::verify_note(&served, &ka).unwrap(), cp_a);
    app.publish(&event(Some("Patient/p3"), "u1")).await;
    let (note_b, cp_b) = wait_for_signed_by(&app, 4, &kb).await;
    assert!(ledger::verify_note(&note_b, &ka).is_err(), "B signs now");
    assert_eq!(ledger::verify_note(&note_a, &ka).unwrap(), cp_a);

    // A file without B (the key of the latest checkpoint) is a rotation too: it starts, and
    // the keys that signed before stay listed.
    let file_c = key_file(&[&c]);
    let app = app
        .restart_with(|s: &mut Settings| s.signing_key_file = Some(file_c))
        .await;
    let listed = listed_keys(&app).await;
    assert_eq!(listed[0], (kc.clone(), "current".into()));
    for old in [&ka, &kb] {
        assert!(
            listed.contains(&(old.clone(), "retired".into())),
            "{old} missing from {listed:?}"
        );
    }
    assert_eq!(
        ledger::verify_note(&app.checkpoint().await, &kb).unwrap(),
        cp_b
    );
    app.finish().await;
}
