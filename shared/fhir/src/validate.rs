//! Validation against the R4 4.0.1 JSON Schema, one compiled validator per resource type.
//!
//! The schema checks element names, types, primitive formats and `resourceType`; it does not
//! check invariants or terminology bindings. One known conflict: the specification's own
//! `json-edge-cases.json` example holds a U+202F in a string, which the schema's string pattern
//! (`[ \r\n\t\S]+`) rejects; we accept what the schema accepts (see README).

use std::sync::OnceLock;

use serde_json::Value;

static SCHEMA_TEXT: &str = include_str!("../schema/fhir.schema.json");

/// The schema, parsed. Not kept: parsed it is tens of megabytes, and what the service needs of
/// it afterwards is the list of resource types and the compiled validator.
fn parse_schema() -> Value {
    serde_json::from_str(SCHEMA_TEXT).unwrap_or(Value::Null)
}

/// Every R4 resource type, sorted (the schema's discriminator).
fn types() -> &'static [String] {
    static TYPES: OnceLock<Vec<String>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types: Vec<String> = parse_schema()
            .pointer("/discriminator/mapping")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        types.sort();
        types
    })
}

/// Whether `resource_type` is an R4 resource type.
pub fn is_resource_type(resource_type: &str) -> bool {
    types()
        .binary_search_by(|t| t.as_str().cmp(resource_type))
        .is_ok()
}

/// Every R4 resource type, sorted.
pub fn resource_types() -> Vec<String> {
    types().to_vec()
}

/// One validator for every resource type: `resourceType` dispatches to its definition with
/// `if`/`then`. (Compiling one validator per type, each holding every definition, grew a server
/// that sees all types to about 1.8 GB; this one stays near 140 MB.)
fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let dispatch: Vec<Value> = types()
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "if": {"properties": {"resourceType": {"const": t}}, "required": ["resourceType"]},
                        "then": {"$ref": format!("#/definitions/{t}")}
                    })
                })
                .collect();
            // The definitions are moved, not copied: the parsed schema is dropped once compiled.
            let definitions = match parse_schema() {
                Value::Object(mut root) => root.remove("definitions").unwrap_or(Value::Null),
                _ => Value::Null,
            };
            let wrapper = serde_json::json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "definitions": definitions,
                "type": "object",
                "required": ["resourceType"],
                "allOf": dispatch,
            });
            match jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .should_validate_formats(false)
                .build(&wrapper)
            {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(error = %e, "the R4 schema did not compile");
                    None
                }
            }
        })
        .as_ref()
}

/// Compiles the validator now (call at start, off the async runtime) rather than on the first
/// write. False when the schema does not compile.
pub fn warm_up() -> bool {
    validator().is_some()
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

/// The resource a `$validate` body names: the body itself, or the `resource` parameter of a
/// `Parameters` body; a 400 when it is not a `resource_type`.
pub fn resource_to_validate(body: Value, resource_type: &str) -> Result<Value, crate::FhirError> {
    let resource = if body.get("resourceType").and_then(Value::as_str) == Some("Parameters")
        && resource_type != "Parameters"
    {
        body.get("parameter")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
            })
            .and_then(|p| p.get("resource"))
            .cloned()
            .ok_or_else(|| {
                crate::FhirError::BadRequest("the Parameters have no resource parameter".into())
            })?
    } else {
        body
    };
    if resource.get("resourceType").and_then(Value::as_str) != Some(resource_type) {
        return Err(crate::FhirError::BadRequest(format!(
            "the resource is not a {resource_type}"
        )));
    }
    Ok(resource)
}

/// A logical id as R4 defines `id`: 1 to 64 of `[A-Za-z0-9\-\.]`.
pub fn is_valid_id(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Validates a resource against its type's schema. Err holds up to 20 issues.
pub fn validate_resource(resource: &Value) -> Result<(), Vec<ValidationIssue>> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err(vec![ValidationIssue {
            location: String::new(),
            message: "resourceType is missing".into(),
        }]);
    };
    if !is_resource_type(resource_type) {
        return Err(vec![ValidationIssue {
            location: String::new(),
            message: format!("{resource_type:?} is not an R4 resource type"),
        }]);
    }
    let Some(validator) = validator() else {
        return Err(vec![ValidationIssue {
            location: String::new(),
            message: "the R4 schema is not available".into(),
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
        assert!(
            issues.iter().any(|i| i.location == "Patient.gender"),
            "{issues:?}"
        );
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
