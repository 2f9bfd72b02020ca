use crate::helpers::{event, spawn_app};

#[actix_web::test]
async fn metrics_show_the_tree_size_and_probes_answer() {
    let mut app = spawn_app().await;
    app.publish(&event(None, "u1")).await;
    app.publish(&event(Some("Patient/a"), "u1")).await;
    app.wait_for_checkpoint(2).await;
    let metrics = app.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("custodian_ledger_tree_size"))
        .unwrap_or_else(|| panic!("no ledger_tree_size in\n{metrics}"));
    assert!(line.ends_with(" 2"), "{line}");
    assert!(metrics.contains("custodian_ledger_checkpoints_signed_total"));
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    app.finish().await;
}

#[test]
fn the_openapi_document_names_every_endpoint() {
    let doc = serde_json::to_value(ledger::openapi()).expect("serialisable");
    for path in [
        "/ledger/checkpoint",
        "/ledger/key",
        "/ledger/accesses",
        "/ledger/entries/{index}",
        "/ledger/entries",
        "/ledger/checkpoints",
        "/ledger/proof/inclusion",
        "/ledger/proof/consistency",
        "/ledger/tile/{tile}",
        "/ledger/tile/entries/{tile}",
        "/fhir/AuditEvent",
        "/fhir/AuditEvent/{id}",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    // Identity defines the `smart` scheme in the merged document; the ledger's operations name it.
    assert_eq!(
        doc["paths"]["/ledger/entries"]["get"]["security"][0]["smart"],
        serde_json::json!([])
    );
    assert!(doc["paths"]["/ledger/checkpoint"]["get"]["security"].is_null());
}
