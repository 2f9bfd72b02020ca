//! The committed `openapi/openapi.json` is the merge of every service's document, as the gateway
//! serves it: this test fails when it is stale (`UPDATE_OPENAPI=1`, or `make openapi`, rewrites
//! it), when it does not validate (`openapi-spec-validator`, installed into `var/api-venv` by
//! `scripts/ensure-api-tools.sh`), and when it breaks the rules below (unique operation ids,
//! tags declared once, the security scheme on exactly the paths that need a token).

#![allow(clippy::expect_used)] // test code

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use serde_json::Value;

/// Paths served without a token (the gateway's `routing::is_public`, and its own endpoints).
const PUBLIC: [&str; 14] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/auth/token",
    "/auth/revoke",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/smart-configuration",
    "/fhir/.well-known/smart-configuration",
    "/fhir/metadata",
    "/ledger/checkpoint",
    "/ledger/key",
];

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
    // The gateway never forwards `/internal/*`: not part of the API it serves.
    doc.paths
        .paths
        .retain(|path, _| !path.starts_with("/internal"));
    // Several services declare the same tag (`operations`, `fhir`): once each, the first
    // description, and only tags some operation uses.
    let used: Vec<String> = doc
        .paths
        .paths
        .values_mut()
        .flat_map(custodian_auth::openapi::operations_mut)
        .flat_map(|op| op.tags.clone().unwrap_or_default())
        .collect();
    if let Some(tags) = doc.tags.as_mut() {
        let mut seen = Vec::new();
        tags.retain(|tag| {
            let keep = used.contains(&tag.name) && !seen.contains(&tag.name);
            seen.push(tag.name.clone());
            keep
        });
    }
    doc.info.title = "Custodian".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Consented, audited FHIR R4 records. One gateway in front of identity (OAuth2/JWT), consent, \
         records (FHIR R4), ledger (Merkle audit log) and anomaly (alerts). Authenticated \
         operations need a bearer token from POST /auth/token (security scheme `smart`). Methods \
         a path does not declare are answered 405 with an `Allow` header. FHIR errors are \
         OperationOutcome resources."
            .into(),
    );
    doc
}

/// The merged document with the FHIR services' rules for parameters, bodies and error answers
/// applied (`custodian_fhir::openapi`): what the gateway serves.
fn merged_json() -> Value {
    let mut doc = serde_json::to_value(merged()).expect("serialisable");
    let types = records::served_types();
    custodian_fhir::openapi::tighten(
        &mut doc,
        &custodian_fhir::openapi::FhirDocument { types: &types },
    );
    doc
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method != "parameters" && method != "summary" && method != "description" {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn committed_openapi_document_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let generated = serde_json::to_string_pretty(&merged_json()).expect("serialisable") + "\n";
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
fn the_document_validates_with_openapi_spec_validator() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tools = Command::new(root.join("scripts/ensure-api-tools.sh"))
        .output()
        .expect("run scripts/ensure-api-tools.sh");
    assert!(
        tools.status.success(),
        "scripts/ensure-api-tools.sh failed: {}",
        String::from_utf8_lossy(&tools.stderr)
    );
    let bin = PathBuf::from(String::from_utf8_lossy(&tools.stdout).trim());
    let dir = root.join("var/openapi-test");
    std::fs::create_dir_all(&dir).expect("var/openapi-test");
    let file = dir.join(format!("openapi-{}.json", std::process::id()));
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&merged_json()).expect("serialisable"),
    )
    .expect("write the document");
    let validated = Command::new(bin.join("openapi-spec-validator"))
        .args(["--validation-errors", "all"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    let _ = std::fs::remove_file(&file);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
    assert!(
        validated.status.success(),
        "the document is invalid:\n{said}"
    );
    assert!(said.contains("OK"), "{said}");
}

#[test]
fn operation_ids_are_unique_and_every_response_is_described() {
    let doc = merged_json();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_string();
        if let Some(other) = ids.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId {id} of {method} {path} is also {other}'s");
        }
        for (status, response) in op["responses"].as_object().expect("responses") {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {status} has no description"
            );
        }
    }
}

#[test]
fn tags_are_declared_once_with_a_description() {
    let doc = merged_json();
    let tags = doc["tags"].as_array().expect("tags");
    let names: Vec<&str> = tags.iter().filter_map(|t| t["name"].as_str()).collect();
    for (i, tag) in tags.iter().enumerate() {
        assert!(
            !names[i + 1..].contains(&names[i]),
            "tag {} twice",
            names[i]
        );
        assert!(
            tag["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{tag}"
        );
    }
    for (path, method, op) in operations(&doc) {
        for tag in op["tags"].as_array().cloned().unwrap_or_default() {
            let tag = tag.as_str().unwrap_or_default();
            assert!(
                names.contains(&tag),
                "{method} {path}: undeclared tag {tag}"
            );
        }
    }
}

#[test]
fn the_smart_scheme_is_required_exactly_where_the_gateway_wants_a_token() {
    let doc = merged_json();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes.keys().collect::<Vec<_>>(), ["smart"]);
    assert_eq!(schemes["smart"]["type"], "oauth2");
    for (path, method, op) in operations(&doc) {
        let public = PUBLIC.contains(&path.as_str())
            // The ledger's hash tiles carry hashes only; its entry bundles need a token.
            || path == "/ledger/tile/{tile}";
        let required: Vec<String> = op["security"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .flat_map(|r| {
                r.as_object()
                    .cloned()
                    .unwrap_or_default()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        if public {
            assert!(
                required.is_empty(),
                "{method} {path} is public: {required:?}"
            );
        } else {
            assert_eq!(required, ["smart"], "{method} {path}");
        }
    }
    assert_eq!(doc["servers"][0]["url"], "/");
    assert!(doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .all(|p| !p.starts_with("/internal")));
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
