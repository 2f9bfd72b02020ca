//! FHIR R4 `Consent` -> rules.
//!
//! Read: `status` (only `active` yields rules), `patient`, `provision.type`, `provision.period`,
//! `provision.actor[].reference`, `provision.purpose[].code`, `provision.class[].code`,
//! `provision.action[].coding[].code`, and nested `provision.provision[]` (exceptions, which
//! inherit the parent's period and narrow nothing else). A provision without `type` permits
//! when it is the root (the usual opt-in consent) and inverts its parent when nested.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::{ConsentRule, RuleEffect};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConsentParseError {
    #[error("Consent.patient.reference is required and must be Patient/<id>")]
    MissingPatient,
    #[error("Consent.provision.type must be 'deny' or 'permit'")]
    BadProvisionType,
    #[error("Consent.provision.period has an unparseable date: {0}")]
    BadDate(String),
}

/// The patient reference of a Consent (`Patient/<id>`).
pub fn consent_patient(consent: &Value) -> Result<String, ConsentParseError> {
    consent
        .pointer("/patient/reference")
        .and_then(Value::as_str)
        .filter(|r| r.starts_with("Patient/") && r.len() > "Patient/".len())
        .map(str::to_string)
        .ok_or(ConsentParseError::MissingPatient)
}

fn parse_instant(raw: &str, end_of_day: bool) -> Result<DateTime<Utc>, ConsentParseError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let padded = match raw.len() {
        4 => format!("{raw}-{}", if end_of_day { "12-31" } else { "01-01" }),
        7 => format!("{raw}-{}", if end_of_day { "28" } else { "01" }),
        _ => raw.to_string(),
    };
    let date = NaiveDate::parse_from_str(&padded, "%Y-%m-%d")
        .map_err(|_| ConsentParseError::BadDate(raw.to_string()))?;
    let time = if end_of_day {
        date.and_hms_opt(23, 59, 59)
    } else {
        date.and_hms_opt(0, 0, 0)
    };
    time.map(|t| t.and_utc())
        .ok_or_else(|| ConsentParseError::BadDate(raw.to_string()))
}

fn strings(value: Option<&Value>, pointer: &str) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.pointer(pointer).and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn action_codes(provision: &Value) -> Vec<String> {
    provision
        .get("action")
        .and_then(Value::as_array)
        .map(|actions| {
            actions
                .iter()
                .flat_map(|a| {
                    a.get("coding")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|c| c.get("code").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

struct Inherited {
    effect: RuleEffect,
    not_before: Option<DateTime<Utc>>,
    not_after: Option<DateTime<Utc>>,
}

fn walk(
    provision: &Value,
    consent: &str,
    patient: &str,
    parent: Option<&Inherited>,
    out: &mut Vec<ConsentRule>,
) -> Result<(), ConsentParseError> {
    let effect = match provision.get("type").and_then(Value::as_str) {
        Some("permit") => RuleEffect::Permit,
        Some("deny") => RuleEffect::Deny,
        Some(_) => return Err(ConsentParseError::BadProvisionType),
        None => match parent {
            None => RuleEffect::Permit,
            Some(p) if p.effect == RuleEffect::Permit => RuleEffect::Deny,
            Some(_) => RuleEffect::Permit,
        },
    };
    let not_before = match provision.pointer("/period/start").and_then(Value::as_str) {
        Some(raw) => Some(parse_instant(raw, false)?),
        None => parent.and_then(|p| p.not_before),
    };
    let not_after = match provision.pointer("/period/end").and_then(Value::as_str) {
        Some(raw) => Some(parse_instant(raw, true)?),
        None => parent.and_then(|p| p.not_after),
    };
    out.push(ConsentRule {
        consent: consent.to_string(),
        patient: patient.to_string(),
        effect,
        actors: strings(provision.get("actor"), "/reference/reference"),
        purposes: strings(provision.get("purpose"), "/code"),
        resource_types: strings(provision.get("class"), "/code"),
        actions: action_codes(provision),
        not_before,
        not_after,
    });
    let here = Inherited {
        effect,
        not_before,
        not_after,
    };
    if let Some(children) = provision.get("provision").and_then(Value::as_array) {
        for child in children {
            walk(child, consent, patient, Some(&here), out)?;
        }
    }
    Ok(())
}

/// The rules a Consent resource (with its server-assigned id) puts in force. An inactive
/// consent (`draft`, `proposed`, `rejected`, `inactive`, `entered-in-error`) has none.
pub fn rules_from_consent(consent: &Value) -> Result<Vec<ConsentRule>, ConsentParseError> {
    let patient = consent_patient(consent)?;
    let reference = format!(
        "Consent/{}",
        consent
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    let mut rules = Vec::new();
    let Some(provision) = consent.get("provision") else {
        return Ok(rules);
    };
    walk(provision, &reference, &patient, None, &mut rules)?;
    if consent.get("status").and_then(Value::as_str) != Some("active") {
        rules.clear();
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice_permits_h1() -> Value {
        json!({
            "resourceType": "Consent", "id": "c1", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/alice"},
            "provision": {
                "type": "permit",
                "period": {"start": "2020-01-01", "end": "2099-12-31"},
                "actor": [{"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": "Organization/h1"}}],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
                "provision": [{"type": "deny", "class": [{"code": "Observation"}], "purpose": [{"code": "HRESCH"}]}]
            }
        })
    }

    #[test]
    fn flattens_provisions() {
        let rules = rules_from_consent(&alice_permits_h1()).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].effect, RuleEffect::Permit);
        assert_eq!(rules[0].actors, vec!["Organization/h1"]);
        assert_eq!(rules[0].purposes, vec!["TREAT"]);
        assert_eq!(rules[1].effect, RuleEffect::Deny);
        assert_eq!(rules[1].resource_types, vec!["Observation"]);
        assert_eq!(
            rules[1].not_after, rules[0].not_after,
            "exceptions inherit the period"
        );
    }

    #[test]
    fn inactive_consents_have_no_rules() {
        let mut c = alice_permits_h1();
        c["status"] = "inactive".into();
        assert!(rules_from_consent(&c).unwrap().is_empty());
    }

    #[test]
    fn requires_a_patient() {
        let mut c = alice_permits_h1();
        c.as_object_mut().unwrap().remove("patient");
        assert_eq!(
            rules_from_consent(&c).unwrap_err(),
            ConsentParseError::MissingPatient
        );
    }

    #[test]
    fn rejects_bad_dates() {
        let mut c = alice_permits_h1();
        c["provision"]["period"]["end"] = "soon".into();
        assert!(matches!(
            rules_from_consent(&c),
            Err(ConsentParseError::BadDate(_))
        ));
    }
}
