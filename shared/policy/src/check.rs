//! Enforceability rules that hold for a whole typed Consent, whoever built it: the parser runs
//! them after reading the JSON, and deserialisation (a `ConsentChange` from the stream, a
//! snapshot) runs them again, so a value the engine evaluates has always passed them.

use crate::{
    error::Issues,
    model::{ParsedConsent, Period, Provision},
    parse::MAX_DEPTH,
    resource_types::is_resource_type,
    ConsentError,
};

/// A FHIR id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `Type/<id>` with exactly this type.
fn is_reference_to(reference: &str, type_name: &str) -> bool {
    reference
        .strip_prefix(type_name)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(is_fhir_id)
}

fn check_period(period: Option<&Period>, path: String, issues: &mut Issues) {
    if let Some(Period {
        start: Some(start),
        end: Some(end),
    }) = period
    {
        if start > end {
            issues.push(path, "starts after it ends");
        }
    }
}

/// Checks a typed Consent; every issue names its element.
pub fn enforceable(consent: &ParsedConsent) -> Result<(), ConsentError> {
    let mut issues = Issues::default();
    if !is_reference_to(&consent.patient, "Patient") {
        issues.push("Consent.patient.reference", "must be Patient/<id>");
    }
    if let Some(id) = &consent.id {
        if !is_reference_to(id, "Consent") {
            issues.push("Consent.id", "must be a FHIR id");
        }
    }
    check_period(
        consent.period.as_ref(),
        "Consent.period".into(),
        &mut issues,
    );
    match &consent.provision {
        None if consent.scope.yields_access_rules() => issues.push(
            "Consent.provision",
            "a privacy or research Consent states its rules in provision; without one (a bare policyRule such as OPTOUT) there is nothing the engine can enforce exactly",
        ),
        None => {}
        Some(root) => provision(root, "Consent.provision", 0, &mut issues),
    }
    issues.into_result(())
}

fn provision(p: &Provision, path: &str, depth: usize, issues: &mut Issues) {
    if depth >= MAX_DEPTH {
        issues.push(path, format!("provisions nest more than {MAX_DEPTH} deep"));
        return;
    }
    // Denies may name containers (CareTeam, Group, PractitionerRole) and related persons:
    // evaluation knows their members, or answers Undetermined where it does not.
    for (i, actor) in p.actors.iter().enumerate() {
        let at = format!("{path}.actor[{i}].reference");
        let type_name = format!("{:?}", actor.kind);
        if !is_reference_to(&actor.reference, &type_name) {
            issues.push(at, format!("must be {type_name}/<id>"));
        }
    }
    for (i, purpose) in p.purposes.iter().enumerate() {
        if purpose.trim().is_empty() {
            issues.push(format!("{path}.purpose[{i}].code"), "is empty");
        }
    }
    for (i, class) in p.classes.iter().enumerate() {
        if !is_resource_type(class) {
            issues.push(
                format!("{path}.class[{i}].code"),
                format!("{class:?} is not a FHIR R4 resource type"),
            );
        }
    }
    for (i, code) in p.codes.iter().enumerate() {
        if code.code.trim().is_empty() {
            issues.push(format!("{path}.code[{i}]"), "a coding needs a code");
        }
    }
    // Entries of every meaning, in the order `data` is rebuilt from them (paths are indicative
    // after deserialisation, where the original order is gone).
    for (i, data) in p
        .data
        .iter()
        .chain(&p.dependents)
        .chain(&p.related)
        .enumerate()
    {
        let valid = data
            .split_once('/')
            .is_some_and(|(kind, id)| is_resource_type(kind) && is_fhir_id(id));
        if !valid {
            issues.push(
                format!("{path}.data[{i}].reference"),
                "must be a literal reference to a resource (Type/<id>)",
            );
        }
    }
    check_period(p.period.as_ref(), format!("{path}.period"), issues);
    check_period(p.data_period.as_ref(), format!("{path}.dataPeriod"), issues);
    for (i, child) in p.provisions.iter().enumerate() {
        provision(child, &format!("{path}.provision[{i}]"), depth + 1, issues);
    }
}
