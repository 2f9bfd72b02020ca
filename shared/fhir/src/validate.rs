//! Validation against the R4 4.0.1 JSON Schema, one compiled validator per resource type.
//!
//! The schema checks element names, types, primitive formats and `resourceType`; it does not
//! check invariants or terminology bindings. One known conflict: the specification's own
//! `json-edge-cases.json` example holds a U+202F in a string, which the schema's string pattern
//! (`[ \r\n\t\S]+`) rejects; we accept what the schema accepts (see README).

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
};

use serde_json::Value;

static SCHEMA_TEXT: &str = include_str!("../schema/fhir.schema.json");

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(SCHEMA_TEXT).unwrap_or(Value::Null))
}

type Validators = RwLock<HashMap<String, Arc<jsonschema::Validator>>>;

fn validators() -> &'static Validators {
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    VALIDATORS.get_or_init(|| RwLock::new(HashMap::new()))
}

/// Whether `resource_type` is an R4 resource type.
pub fn is_resource_type(resource_type: &str) -> bool {
    schema()
        .pointer("/discriminator/mapping")
        .and_then(|m| m.get(resource_type))
        .is_some()
}

/// Every R4 resource type, sorted.
pub fn resource_types() -> Vec<String> {
    let mut types: Vec<String> = schema()
        .pointer("/discriminator/mapping")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    types.sort();
    types
}

fn validator_for(resource_type: &str) -> Option<Arc<jsonschema::Validator>> {
    if let Some(v) = validators().read().ok()?.get(resource_type) {
        return Some(v.clone());
    }
    if !is_resource_type(resource_type) {
        return None;
    }
    let root = schema();
    let wrapper = serde_json::json!({
        "$schema": "http://json-schema.org/draft-06/schema#",
        "$ref": format!("#/definitions/{resource_type}"),
        "definitions": root.get("definitions").cloned().unwrap_or(Value::Null),
    });
    let compiled = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft6)
        .should_validate_formats(false)
        .build(&wrapper)
        .ok()?;
    let compiled = Arc::new(compiled);
    if let Ok(mut cache) = validators().write() {
        cache.insert(resource_type.to_string(), compiled.clone());
    }
    Some(compiled)
}

/// One schema violation: where (`Patient.name[0].given`) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationIssue {
    pub location: String,
    pub message: String,
}

fn fhir_path(resource_type: &str, pointer: &str) -> String {
    let mut path = resource_type.to_string();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.chars().all(|c| c.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            path.push('.');
            path.push_str(segment);
        }
    }
    path
}

/// Validates a resource against its type's schema. Err holds up to 20 issues.
pub fn validate_resource(resource: &Value) -> Result<(), Vec<ValidationIssue>> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err(vec![ValidationIssue { location: String::new(), message: "resourceType is missing".into() }]);
    };
    let Some(validator) = validator_for(resource_type) else {
        return Err(vec![ValidationIssue {
            location: String::new(),
            message: format!("{resource_type:?} is not an R4 resource type"),
        }]);
    };
    let issues: Vec<ValidationIssue> = validator
        .iter_errors(resource)
        .take(20)
        .map(|e| ValidationIssue {
            location: fhir_path(resource_type, &e.instance_path().to_string()),
            message: e.to_string(),
        })
        .collect();
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_valid_patient_and_rejects_bad_ones() {
        let ok = json!({"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1980-02-01",
            "name": [{"family": "Smith", "given": ["Alice"]}]});
        assert!(validate_resource(&ok).is_ok());
        let unknown = json!({"resourceType": "Patient", "colour": "blue"});
        assert!(validate_resource(&unknown).is_err());
        let wrong_type = json!({"resourceType": "Patient", "gender": 3});
        let issues = validate_resource(&wrong_type).unwrap_err();
        assert!(issues.iter().any(|i| i.location == "Patient.gender"), "{issues:?}");
        let bad_date = json!({"resourceType": "Patient", "birthDate": "yesterday"});
        assert!(validate_resource(&bad_date).is_err());
    }

    #[test]
    fn knows_r4_only_types() {
        assert!(is_resource_type("MedicinalProduct"));
        assert!(!is_resource_type("Banana"));
        assert!(validate_resource(&json!({"resourceType": "Banana"})).is_err());
    }
}
