//! `GET /fhir/metadata`: the CapabilityStatement (public, no token), built from what this
//! service actually serves and the search parameters it actually indexes.

use std::collections::BTreeMap;

use actix_web::{http::StatusCode, web, HttpResponse};
use serde_json::{json, Value};

use super::{
    http,
    operations::{self, Operation},
};
use custodian_fhir_search::registry::{ParamType, Registry, SPECIAL};

use crate::{domain::ResourceType, state::AppState};

/// What token parameters take besides `system|code`.
const TOKEN_DOCUMENTATION: &str = "Modifiers :not, :text, :missing, :of-type (identifiers), \
     :in and :not-in (a ValueSet stored here and visible to the caller, by url, url|version or \
     ValueSet/id: its expansion, or its compose with concept lists, whole code systems, imports \
     and excludes; a filter or anything else not listable exactly is a 400). Codes compare by \
     system and code: values without a system (elements of type code) are in no ValueSet.";

/// `_list`.
const LIST_DOCUMENTATION: &str = "_list=List/id (or id): the resources its entries name \
     (relative or under this base; entries marked deleted are not in it), if the caller may see \
     the List (else, as for an unknown List, none). Functional lists ($current-...) are not \
     supported.";

/// An operation as the CapabilityStatement lists it.
fn listed(operation: &Operation) -> Value {
    let mut out = json!({"name": operation.name, "definition": operation.definition});
    if let Some(documentation) = operation.documentation() {
        out["documentation"] = json!(documentation);
    }
    out
}

/// The CapabilityStatement.
pub fn capability_statement(registry: &Registry, public_url: &str) -> Value {
    let revincludes = revincludes(registry);
    let mut resources: Vec<Value> = ResourceType::all()
        .iter()
        .map(|t| {
            let mut params: Vec<Value> = vec![
                json!({"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"}),
                json!({"name": "_lastUpdated", "type": "date", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"}),
                json!({"name": "_list", "type": "special", "documentation": LIST_DOCUMENTATION}),
            ];
            for p in registry.params(t.as_str()) {
                if SPECIAL.contains(&p.code.as_str()) {
                    continue;
                }
                let mut param = json!({"name": p.code, "type": p.kind.as_str(), "definition": p.url});
                if p.kind == ParamType::Token {
                    param["documentation"] = json!(TOKEN_DOCUMENTATION);
                }
                params.push(param);
            }
            for c in registry.composites(t.as_str()) {
                params.push(json!({"name": c.code, "type": "composite", "definition": c.url}));
            }
            let interactions: Vec<Value> = ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"]
                .iter()
                .map(|c| json!({"code": c}))
                .collect();
            let mut resource = json!({
                "type": t.as_str(),
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{t}"),
                "interaction": interactions,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchParam": params,
            });
            resource["searchInclude"] = json!(includes(registry, t.as_str()));
            let mut rev = vec!["*".to_string()];
            rev.extend(revincludes.get(t.as_str()).cloned().unwrap_or_default());
            resource["searchRevInclude"] = json!(rev);
            let operations: Vec<Value> = operations::of_type(t.as_str()).map(listed).collect();
            resource["operation"] = json!(operations);
            resource
        })
        .collect();
    // Served by the ledger and by consent through the same base (the gateway routes them).
    resources.push(audit_event_capability());
    resources.push(consent_capability(registry));
    resources.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Custodian",
        "kind": "instance",
        "software": {"name": "Custodian records", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Custodian FHIR R4 records", "url": format!("{public_url}/fhir")},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": false,
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "token", "valueUri": format!("{public_url}/auth/token")},
                        {"url": "revoke", "valueUri": format!("{public_url}/auth/revoke")}
                    ]
                }],
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR"
                }]}],
                "description": "OAuth2 bearer tokens issued by Custodian identity; access follows patients' consents"
            },
            "resource": resources,
            "operation": operations::of_rest().map(listed).collect::<Vec<_>>(),
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}]
        }]
    })
}

/// `_include` values a search of `resource_type` takes: `*`, `Type:*` and each reference
/// parameter (`:iterate` follows any of them from included resources).
fn includes(registry: &Registry, resource_type: &str) -> Vec<String> {
    let mut out = vec!["*".to_string(), format!("{resource_type}:*")];
    for p in registry.params(resource_type) {
        if p.kind == ParamType::Reference {
            out.push(format!("{resource_type}:{}", p.code));
        }
    }
    out
}

/// `_revinclude` values by target type: every `Source:param` whose targets include it.
fn revincludes(registry: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for source in ResourceType::all() {
        for p in registry.params(source.as_str()) {
            if p.kind != ParamType::Reference {
                continue;
            }
            for target in &p.targets {
                out.entry(target.clone())
                    .or_default()
                    .push(format!("{source}:{}", p.code));
            }
        }
    }
    out
}

/// `AuditEvent` is the ledger's log, served by the ledger (the gateway routes
/// `/fhir/AuditEvent` there): read and search only, with the parameters it supports.
fn audit_event_capability() -> Value {
    let params: Vec<Value> = [
        ("patient", "reference"),
        ("agent", "reference"),
        ("date", "date"),
        ("action", "token"),
        ("outcome", "token"),
    ]
    .iter()
    .map(|(name, kind)| {
        json!({
            "name": name,
            "type": kind,
            "definition": format!("http://hl7.org/fhir/SearchParameter/AuditEvent-{name}"),
        })
    })
    .collect();
    json!({
        "type": "AuditEvent",
        "profile": "http://hl7.org/fhir/StructureDefinition/AuditEvent",
        "documentation": "The access ledger, one AuditEvent per entry (IHE BALP); append-only",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "conditionalCreate": false,
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "searchParam": params,
    })
}

/// Consent, served by the consent service through the same base and searched by the same
/// engine (`custodian_fhir_search`): every R4 search parameter of Consent.
fn consent_capability(registry: &Registry) -> Value {
    let mut params: Vec<Value> = vec![
        json!({"name": "_id", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"}),
        json!({"name": "_lastUpdated", "type": "date", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"}),
    ];
    for p in registry.params("Consent") {
        if !SPECIAL.contains(&p.code.as_str()) {
            params.push(json!({"name": p.code, "type": p.kind.as_str(), "definition": p.url}));
        }
    }
    let interactions: Vec<Value> = [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .iter()
    .map(|c| json!({"code": c}))
    .collect();
    json!({
        "type": "Consent",
        "profile": "http://hl7.org/fhir/StructureDefinition/Consent",
        "documentation": "Patients' consents, enforced on every access (served by the consent \
            service). Searches see a patient's own consents, or those naming the caller. Chains, \
            _has and _include through other types, :in and _list are not answered for Consent \
            (those resources are held by records): lenient handling reports them, strict refuses.",
        "interaction": interactions,
        "versioning": "versioned",
        "readHistory": true,
        "updateCreate": false,
        "conditionalCreate": true,
        "conditionalUpdate": true,
        "conditionalDelete": "single",
        "searchParam": params,
        "operation": [{
            "name": "validate",
            "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
            "documentation": "The R4 schema and whether the consent engine can enforce the Consent exactly",
        }],
    })
}

/// The CapabilityStatement.
#[utoipa::path(
    get,
    path = "/fhir/metadata",
    tag = "fhir",
    responses((status = 200, description = "CapabilityStatement"))
)]
pub async fn metadata(
    state: web::Data<AppState>,
    capability: web::Data<Capability>,
) -> HttpResponse {
    state
        .metrics
        .operation("metadata", "CapabilityStatement", "ok");
    http::fhir(StatusCode::OK).body(capability.0.clone())
}

/// The rendered CapabilityStatement (built once at start).
pub struct Capability(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_type_with_search_params() {
        let cs = capability_statement(Registry::global(), "http://gw");
        let resources = cs["rest"][0]["resource"].as_array().unwrap();
        assert!(resources.len() > 140);
        // Consent (the consent service) with the engine's parameters, and nothing it lacks.
        let consent: Vec<&Value> = resources
            .iter()
            .filter(|r| r["type"] == "Consent")
            .collect();
        assert_eq!(consent.len(), 1);
        let names: Vec<&str> = consent[0]["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for n in [
            "_id",
            "_lastUpdated",
            "patient",
            "status",
            "actor",
            "category",
            "date",
        ] {
            assert!(names.contains(&n), "Consent lacks {n}");
        }
        assert_eq!(consent[0]["conditionalCreate"], true);
        assert_eq!(consent[0]["conditionalUpdate"], true);
        assert_eq!(consent[0]["conditionalDelete"], "single");
        assert!(consent[0].get("searchInclude").is_none());
        let obs = resources
            .iter()
            .find(|r| r["type"] == "Observation")
            .unwrap();
        let names: Vec<&str> = obs["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for n in [
            "_id",
            "_lastUpdated",
            "code",
            "subject",
            "patient",
            "date",
            "value-quantity",
            "code-value-quantity",
            "component-code-value-quantity",
            "combo-code-value-concept",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        let composite = obs["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "component-code-value-quantity")
            .unwrap();
        assert_eq!(composite["type"], "composite");
        assert_eq!(
            composite["definition"],
            "http://hl7.org/fhir/SearchParameter/Observation-component-code-value-quantity"
        );
        let operations: Vec<&str> = obs["operation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(operations, ["meta", "meta-add", "meta-delete"]);
        let includes = obs["searchInclude"].as_array().unwrap();
        assert!(includes.contains(&json!("Observation:subject")) && includes.contains(&json!("*")));
        let patient = resources.iter().find(|r| r["type"] == "Patient").unwrap();
        assert!(patient["searchRevInclude"]
            .as_array()
            .unwrap()
            .contains(&json!("Observation:subject")));
        assert!(patient["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "everything"));
        let doc = resources
            .iter()
            .find(|r| r["type"] == "DocumentReference")
            .unwrap();
        assert!(doc["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "relationship" && p["type"] == "composite"));
        let audit = resources
            .iter()
            .find(|r| r["type"] == "AuditEvent")
            .unwrap();
        assert_eq!(
            audit["interaction"],
            serde_json::json!([{"code": "read"}, {"code": "search-type"}])
        );
        let audit_params: Vec<&str> = audit["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            audit_params,
            ["patient", "agent", "date", "action", "outcome"]
        );
        assert_eq!(
            cs["rest"][0]["security"]["extension"][0]["extension"][0]["valueUri"],
            "http://gw/auth/token"
        );
        assert!(
            custodian_fhir::validate_resource(&cs).is_ok(),
            "{:?}",
            custodian_fhir::validate_resource(&cs)
        );
    }
}
