//! Validation against the R4 4.0.1 JSON Schema (`custodian_fhir`), as (location, message) pairs
//! for `FhirError::Unprocessable`.

use serde_json::Value;

/// Compiles the shared validator now (at start) rather than on the first write.
pub fn warm_up() -> bool {
    custodian_fhir::validate::warm_up()
}

/// Validates a resource; Err holds up to 20 (location, message) issues.
pub fn validate(resource: &Value) -> Result<(), Vec<(String, String)>> {
    custodian_fhir::validate_resource(resource).map_err(|issues| {
        issues
            .into_iter()
            .map(|i| (i.location, i.message))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        // R4-only types (absent from R4B) are served.
        assert!(validate(
            &json!({"resourceType": "MedicinalProduct", "name": [{"productName": "x"}]})
        )
        .is_ok());
        assert!(
            validate(&json!({"resourceType": "Observation", "status": "nope", "code": {}}))
                .is_err()
        );
    }
}
