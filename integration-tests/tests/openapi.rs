//! The committed `openapi/openapi.json` is the merge of every service's document; this test
//! fails when it is stale. `UPDATE_OPENAPI=1` (or `make openapi`) rewrites it.

use std::path::PathBuf;

fn merged() -> utoipa::openapi::OpenApi {
    let mut doc = gateway::openapi();
    for part in [
        identity::openapi(),
        consent::openapi(),
        records::openapi(),
        ledger::openapi(),
        anomaly::openapi(),
    ] {
        doc.merge(part);
    }
    doc.info.title = "Custodian".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Consented, audited FHIR R4 records. One gateway in front of identity (OAuth2/JWT), consent, \
         records (FHIR R4), ledger (Merkle audit log) and anomaly (alerts)."
            .into(),
    );
    doc
}

#[test]
fn committed_openapi_document_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let generated = serde_json::to_string_pretty(&merged()).expect("serialisable") + "\n";
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    );
}

#[test]
fn every_service_documents_its_public_paths() {
    let doc = merged();
    for path in [
        "/auth/token",
        "/fhir/{type}",
        "/fhir/Consent",
        "/ledger/checkpoint",
        "/anomaly/alerts",
        "/fhir/metadata",
    ] {
        assert!(
            doc.paths
                .paths
                .keys()
                .any(|p| p == path || p.starts_with(path)),
            "no documented path starts with {path}"
        );
    }
}
