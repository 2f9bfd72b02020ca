use std::time::Duration;

use crate::helpers::{event, spawn_app};

#[actix_web::test]
async fn events_on_the_access_stream_are_appended_exactly_once() {
    let mut app = spawn_app().await;
    let (_, empty) = app.verified_checkpoint().await;
    assert_eq!(empty.tree_size, 0, "a fresh ledger signs the empty tree");
    assert_eq!(empty.root_hash, ledger::tree::empty_root());

    let first = event(Some("Patient/alice"), "u1");
    let first_payload = app.publish(&first).await;
    for _ in 0..2 {
        app.publish(&event(Some("Patient/bob"), "u2")).await;
    }
    // The stream redelivers the first event (same id, same payload).
    app.publish_raw(&first.id.to_string(), &first_payload).await;

    app.wait_for_metric("ledger_duplicates_total", 1.0).await;
    let (_, cp) = app.wait_for_checkpoint(3).await;
    assert_eq!(cp.tree_size, 3, "the duplicate was not appended");
    assert_eq!(app.metric("ledger_appends_total").await, Some(3.0));
    assert_eq!(app.metric("ledger_tree_size").await, Some(3.0));

    // Leaf 0 is the first event, byte for byte.
    let res = app.get("/ledger/entries/0", Some(&app.auditor())).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let entry = res.json();
    assert_eq!(entry["payload"], first_payload.as_str());
    assert_eq!(entry["event"]["id"], first.id.to_string());
    let leaf = ledger::tree::leaf_hash(first_payload.as_bytes());
    assert_eq!(entry["leaf_hash"], base64_of(&leaf));

    // Nothing is signed twice for an unchanged tree.
    let signed = app
        .metric("ledger_checkpoints_signed_total")
        .await
        .unwrap_or(0.0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        app.metric("ledger_checkpoints_signed_total")
            .await
            .unwrap_or(0.0),
        signed
    );
    app.finish().await;
}

#[actix_web::test]
async fn malformed_events_are_dead_lettered_and_not_appended() {
    let mut app = spawn_app().await;
    app.publish_raw("x", r#"{"id":"not-a-uuid"}"#).await;
    app.publish_raw("y", "not json at all").await;
    app.publish(&event(Some("Patient/alice"), "u1")).await;
    app.wait_for_checkpoint(1).await;
    let dead: i64 = redis::cmd("XLEN")
        .arg(format!("{}:access:dead", app.prefix))
        .query_async(&mut app.redis)
        .await
        .expect("XLEN");
    assert_eq!(dead, 2);
    let (_, cp) = app.verified_checkpoint().await;
    assert_eq!(cp.tree_size, 1);
    app.finish().await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    STANDARD.encode(bytes)
}
