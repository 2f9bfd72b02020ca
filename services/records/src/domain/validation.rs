//! Validation against the R4 4.0.1 JSON Schema with ONE compiled validator for every resource
//! type (each `resourceType` dispatches to its definition with `if`/`then`).
//!
//! Why not `custodian_fhir::validate_resource`: it compiles one validator per resource type, each
//! holding the whole schema's definitions; a server that sees every type (the specification's
//! examples) grew to about 1.8 GB resident. One dispatching validator stays small. Same schema,
//! same checks, same issue locations (`Patient.name[0].given`).

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

static SCHEMA_TEXT: &str = include_str!("../../../../shared/fhir/schema/fhir.schema.json");

fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let root: Value = serde_json::from_str(SCHEMA_TEXT).ok()?;
            let types: Vec<String> = root.pointer("/discriminator/mapping")?.as_object()?.keys().cloned().collect();
            let dispatch: Vec<Value> = types
                .iter()
                .map(|t| {
                    json!({
                        "if": {"properties": {"resourceType": {"const": t}}, "required": ["resourceType"]},
                        "then": {"$ref": format!("#/definitions/{t}")}
                    })
                })
                .collect();
            let wrapper = json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "definitions": root.get("definitions").cloned().unwrap_or(Value::Object(Map::new())),
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

/// Compiles the validator now (at start) rather than on the first write.
pub fn warm_up() -> bool {
    validator().is_some()
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

/// Validates a resource; Err holds up to 20 (location, message) issues.
pub fn validate(resource: &Value) -> Result<(), Vec<(String, String)>> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err(vec![(String::new(), "resourceType is missing".into())]);
    };
    if !custodian_fhir::validate::is_resource_type(resource_type) {
        return Err(vec![(
            String::new(),
            format!("{resource_type:?} is not an R4 resource type"),
        )]);
    }
    let Some(validator) = validator() else {
        return Err(vec![(
            String::new(),
            "the R4 schema is not available".into(),
        )]);
    };
    let issues: Vec<(String, String)> = validator
        .iter_errors(resource)
        .take(20)
        .map(|e| {
            (
                fhir_path(resource_type, &e.instance_path().to_string()),
                e.to_string(),
            )
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

    #[test]
    fn accepts_valid_and_locates_issues() {
        let ok = json!({"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1980-02-01",
            "name": [{"family": "Smith", "given": ["Alice"]}]});
        assert_eq!(validate(&ok), Ok(()));
        let issues = validate(&json!({"resourceType": "Patient", "gender": 3, "colour": "blue"}))
            .unwrap_err();
        assert!(
            issues.iter().any(|(l, _)| l == "Patient.gender"),
            "{issues:?}"
        );
        assert!(issues.len() >= 2, "{issues:?}");
        let nested = validate(
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": "heavy"}}),
        )
        .unwrap_err();
        assert!(
            nested
                .iter()
                .any(|(l, _)| l == "Observation.valueQuantity.value"),
            "{nested:?}"
        );
        assert!(validate(&json!({"resourceType": "Banana"})).is_err());
        // Same verdicts as the shared per-type validator.
        for v in [
            ok,
            json!({"resourceType": "Observation", "status": "nope", "code": {}}),
            json!({"resourceType": "MedicinalProduct"}),
            json!({"resourceType": "MedicinalProduct", "name": [{"productName": "x"}]}),
        ] {
            assert_eq!(
                validate(&v).is_ok(),
                custodian_fhir::validate_resource(&v).is_ok(),
                "{v}"
            );
        }
    }
}
