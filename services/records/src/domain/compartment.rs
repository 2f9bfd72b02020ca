//! Which patient a resource belongs to (its Patient compartment) and how confidential it is.
//! Access control is decided on these two, so they are computed once per version and stored
//! beside it in plaintext.

use serde_json::Value;

use custodian_fhir_search::registry::Registry;

/// The search parameters that place a resource in a patient's compartment, tried in order (the
/// patient CompartmentDefinition's usual parameters). The first reference to `Patient/` wins.
const COMPARTMENT_PARAMS: &[&str] = &[
    "patient",
    "subject",
    "beneficiary",
    "individual",
    "for",
    "member",
    "actor",
    "who",
    "agent",
    "participant",
    "requester",
    "performer",
    "author",
    "recipient",
    "sender",
    "source",
    "focus",
    "owner",
    "link",
    "subscriber",
    "policy-holder",
    "payee",
    "context",
];

pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

/// Every other patient whose compartment the resource is also in (a Group's further members,
/// an Observation's `focus` on another patient, a Patient's `link`s): writing it puts data
/// into their records too. Distinct, without `primary`.
pub fn other_patients_of(
    registry: &Registry,
    resource_type: &str,
    resource: &Value,
    primary: Option<&str>,
) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let params: &[&str] = if resource_type == "Patient" {
        &["link"]
    } else {
        COMPARTMENT_PARAMS
    };
    for code in params {
        let Some(param) = registry.get(resource_type, code) else {
            continue;
        };
        for r in param.references(resource) {
            if r.strip_prefix("Patient/").is_some_and(super::is_valid_id)
                && Some(r.as_str()) != primary
                && !found.contains(&r)
            {
                found.push(r);
            }
        }
    }
    found
}

/// `Patient/<id>` the resource belongs to, if any. A Patient is its own.
pub fn patient_of(
    registry: &Registry,
    resource_type: &str,
    id: &str,
    resource: &Value,
) -> Option<String> {
    if resource_type == "Patient" {
        return Some(format!("Patient/{id}"));
    }
    for code in COMPARTMENT_PARAMS {
        let Some(param) = registry.get(resource_type, code) else {
            continue;
        };
        if let Some(found) = param
            .references(resource)
            .into_iter()
            .find(|r| r.strip_prefix("Patient/").is_some_and(super::is_valid_id))
        {
            return Some(found);
        }
    }
    None
}

fn rank(code: &str) -> Option<u8> {
    Some(match code {
        "U" => 0,
        "L" => 1,
        "M" => 2,
        "N" => 3,
        "R" => 4,
        "V" => 5,
        _ => return None,
    })
}

/// The most restrictive v3-Confidentiality code in `meta.security`.
pub fn confidentiality_of(resource: &Value) -> Option<String> {
    resource
        .pointer("/meta/security")
        .and_then(Value::as_array)?
        .iter()
        .filter(|c| c.get("system").and_then(Value::as_str) == Some(CONFIDENTIALITY_SYSTEM))
        .filter_map(|c| c.get("code").and_then(Value::as_str))
        .filter_map(|code| rank(code).map(|r| (r, code)))
        .max_by_key(|(r, _)| *r)
        .map(|(_, code)| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_patient_a_resource_names_is_found() {
        let r = Registry::global();
        let group = json!({"resourceType": "Group", "type": "person", "actual": true,
            "member": [{"entity": {"reference": "Patient/a"}}, {"entity": {"reference": "Patient/b"}},
                       {"entity": {"reference": "Patient/a"}}]});
        let primary = patient_of(r, "Group", "g", &group);
        assert_eq!(primary.as_deref(), Some("Patient/a"));
        assert_eq!(
            other_patients_of(r, "Group", &group, primary.as_deref()),
            vec!["Patient/b".to_string()]
        );
        let linked = json!({"resourceType": "Patient", "link": [{"other": {"reference": "Patient/twin"}, "type": "seealso"}]});
        assert_eq!(
            other_patients_of(r, "Patient", &linked, Some("Patient/me")),
            vec!["Patient/twin".to_string()]
        );
    }

    #[test]
    fn patients_own_themselves() {
        let p = json!({"resourceType": "Patient"});
        assert_eq!(
            patient_of(Registry::global(), "Patient", "a", &p).as_deref(),
            Some("Patient/a")
        );
    }

    #[test]
    fn finds_the_patient_reference() {
        let r = Registry::global();
        let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/alice"}, "performer": [{"reference": "Practitioner/x"}]});
        assert_eq!(
            patient_of(r, "Observation", "o", &obs).as_deref(),
            Some("Patient/alice")
        );
        let cov = json!({"resourceType": "Coverage", "beneficiary": {"reference": "Patient/bob"}});
        assert_eq!(
            patient_of(r, "Coverage", "c", &cov).as_deref(),
            Some("Patient/bob")
        );
        let allergy = json!({"resourceType": "AllergyIntolerance", "patient": {"reference": "http://h/fhir/Patient/carol"}});
        assert_eq!(
            patient_of(r, "AllergyIntolerance", "a", &allergy).as_deref(),
            Some("Patient/carol")
        );
        let group = json!({"resourceType": "Observation", "subject": {"reference": "Group/g"}});
        assert_eq!(patient_of(r, "Observation", "o", &group), None);
        let org = json!({"resourceType": "Organization", "name": "H1"});
        assert_eq!(patient_of(r, "Organization", "h1", &org), None);
    }

    #[test]
    fn confidentiality_takes_the_most_restrictive() {
        let v = json!({"meta": {"security": [
            {"system": CONFIDENTIALITY_SYSTEM, "code": "N"},
            {"system": CONFIDENTIALITY_SYSTEM, "code": "R"},
            {"system": "http://other", "code": "V"}
        ]}});
        assert_eq!(confidentiality_of(&v).as_deref(), Some("R"));
        assert_eq!(confidentiality_of(&json!({})), None);
    }
}
