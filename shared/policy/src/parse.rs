//! FHIR R4 `Consent` JSON -> [`ParsedConsent`], or every reason it cannot be enforced exactly.
//!
//! The parser reads every element that bounds access and refuses, with the element's path,
//! whatever it cannot read or enforce: unknown elements inside `provision`, modifier
//! extensions, unparseable dates, actors without a literal reference or of another type,
//! classes that are not resource types, `data` meaning `authoredby`, and actor roles
//! that describe where data came from rather than who receives it. The enforceability rules
//! that hold for the typed model as a whole (references well formed, periods ordered ...) live in
//! [`crate::check`] and run on every value, parsed or deserialised.

use serde_json::{Map, Value};

use crate::{
    check,
    error::Issues,
    model::{
        Actor, ActorKind, Coding, Confidentiality, ConsentAction, ConsentScope, ConsentStatus,
        ParsedConsent, Period, Provision, ProvisionType, SecurityLabel, CONFIDENTIALITY_SYSTEM,
    },
    time::instant_range,
    ConsentError, ConsentIssue,
};

pub const CONSENT_SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
pub const CONSENT_ACTION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentaction";
pub const RESOURCE_TYPES_SYSTEM: &str = "http://hl7.org/fhir/resource-types";

/// How deep provisions may nest (far beyond any real consent; bounds the recursion).
pub const MAX_DEPTH: usize = 32;

/// Roles that say where the data came from (its author, custodian, informant, enterer), not
/// who receives it: enforcing them needs authorship facts the engine does not have.
const SOURCE_ROLES: [&str; 6] = ["AUT", "CST", "INF", "ENT", "AUTHEN", "LA"];

const CONSENT_ELEMENTS: [&str; 24] = [
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "identifier",
    "status",
    "scope",
    "category",
    "patient",
    "dateTime",
    "performer",
    "organization",
    "sourceAttachment",
    "sourceReference",
    "policy",
    "policyRule",
    "verification",
    "provision",
    // Not R4 (R5 moved the consent's own period here); read when present.
    "period",
];

const PROVISION_ELEMENTS: [&str; 14] = [
    "id",
    "extension",
    "modifierExtension",
    "type",
    "period",
    "actor",
    "action",
    "securityLabel",
    "purpose",
    "class",
    "code",
    "dataPeriod",
    "data",
    "provision",
];

const ACTOR_ELEMENTS: [&str; 5] = ["id", "extension", "modifierExtension", "role", "reference"];
const DATA_ELEMENTS: [&str; 5] = [
    "id",
    "extension",
    "modifierExtension",
    "meaning",
    "reference",
];
const PERIOD_ELEMENTS: [&str; 4] = ["id", "extension", "start", "end"];
const CODING_ELEMENTS: [&str; 7] = [
    "id",
    "extension",
    "system",
    "version",
    "code",
    "display",
    "userSelected",
];
const CONCEPT_ELEMENTS: [&str; 4] = ["id", "extension", "coding", "text"];
const REFERENCE_ELEMENTS: [&str; 6] = [
    "id",
    "extension",
    "reference",
    "type",
    "identifier",
    "display",
];

/// Entry point: `Consent::parse(&json)`.
pub struct Consent;

impl Consent {
    /// Reads a FHIR R4 Consent. `Ok` means the engine enforces exactly what it says; `Err`
    /// lists every element it refuses, with its path.
    pub fn parse(json: &Value) -> Result<ParsedConsent, ConsentError> {
        let mut issues = Issues::default();
        let parsed = parse_consent(json, &mut issues);
        if !issues.is_empty() {
            return Err(issues.into_error());
        }
        let consent = parsed.ok_or_else(|| {
            ConsentError::Unenforceable(vec![ConsentIssue::new(
                "Consent",
                "the Consent could not be read",
            )])
        })?;
        check::enforceable(&consent)?;
        Ok(consent)
    }
}

fn parse_consent(json: &Value, issues: &mut Issues) -> Option<ParsedConsent> {
    let Some(object) = json.as_object() else {
        issues.push("Consent", "a Consent is a JSON object");
        return None;
    };
    check_keys(object, "Consent", &CONSENT_ELEMENTS, issues);
    if object.contains_key("implicitRules") {
        issues.push(
            "Consent.implicitRules",
            "implicit rules change how the Consent must be read; none is understood here",
        );
    }
    match object.get("resourceType") {
        None | Some(Value::String(_)) => {}
        Some(_) => issues.push("Consent.resourceType", "must be the string \"Consent\""),
    }
    if let Some(Value::String(t)) = object.get("resourceType") {
        if t != "Consent" {
            issues.push(
                "Consent.resourceType",
                format!("expected Consent, got {t:?}"),
            );
        }
    }
    let id = match object.get("id") {
        None => None,
        Some(Value::String(id)) if check::is_fhir_id(id) => Some(format!("Consent/{id}")),
        Some(_) => {
            issues.push("Consent.id", "must be a FHIR id ([A-Za-z0-9-.]{1,64})");
            None
        }
    };
    let status = match object.get("status") {
        Some(Value::String(code)) => ConsentStatus::parse(code).or_else(|| {
            issues.push(
                "Consent.status",
                format!("{code:?} is not a Consent status (draft, proposed, active, rejected, inactive, entered-in-error)"),
            );
            None
        }),
        Some(_) => {
            issues.push("Consent.status", "must be a code");
            None
        }
        None => {
            issues.push("Consent.status", "is required");
            None
        }
    };
    let scope = match object.get("scope") {
        Some(value) => scope(value, issues),
        None => {
            issues.push(
                "Consent.scope",
                "is required (consentscope: patient-privacy, research, treatment, adr)",
            );
            None
        }
    };
    let patient = match object.get("patient") {
        Some(value) => patient(value, issues),
        None => {
            issues.push(
                "Consent.patient",
                "is required: the patient the Consent is about",
            );
            None
        }
    };
    let date_time = match object.get("dateTime") {
        None => None,
        Some(Value::String(raw)) => match instant_range(raw) {
            Some((first, _)) => Some(first),
            None => {
                issues.push(
                    "Consent.dateTime",
                    format!("{raw:?} is not a FHIR dateTime"),
                );
                None
            }
        },
        Some(_) => {
            issues.push("Consent.dateTime", "must be a FHIR dateTime string");
            None
        }
    };
    let period = object
        .get("period")
        .and_then(|v| period(v, "Consent.period", issues));
    let provision = object
        .get("provision")
        .and_then(|v| provision(v, "Consent.provision", None, 0, issues));
    Some(ParsedConsent {
        id,
        patient: patient?,
        status: status?,
        scope: scope?,
        date_time,
        period,
        provision,
    })
}

/// Flags unknown elements and modifier extensions. `_x` (a primitive's id and extensions) is
/// accepted for every known `x`.
fn check_keys(object: &Map<String, Value>, path: &str, allowed: &[&str], issues: &mut Issues) {
    for key in object.keys() {
        if key == "modifierExtension" {
            issues.push(
                format!("{path}.modifierExtension"),
                "modifier extensions change the meaning of the element; none is understood here",
            );
            continue;
        }
        let bare = key.strip_prefix('_').unwrap_or(key);
        if !allowed.contains(&bare) {
            issues.push(
                format!("{path}.{key}"),
                "is not an element this engine reads; it could change what the Consent means",
            );
        }
    }
}

fn object<'a>(value: &'a Value, path: &str, issues: &mut Issues) -> Option<&'a Map<String, Value>> {
    let object = value.as_object();
    if object.is_none() {
        issues.push(path, "must be a JSON object");
    }
    object
}

fn array<'a>(value: &'a Value, path: &str, issues: &mut Issues) -> &'a [Value] {
    match value.as_array() {
        Some(items) => items,
        None => {
            issues.push(path, "must be a JSON array");
            &[]
        }
    }
}

fn string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    issues: &mut Issues,
) -> Option<&'a str> {
    match object.get(key) {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
        Some(_) => {
            issues.push(format!("{path}.{key}"), "must be a non-empty string");
            None
        }
    }
}

fn coding(value: &Value, path: &str, issues: &mut Issues) -> Option<Coding> {
    let object = object(value, path, issues)?;
    check_keys(object, path, &CODING_ELEMENTS, issues);
    let system = string(object, "system", path, issues);
    let Some(code) = string(object, "code", path, issues) else {
        if !object.contains_key("code") {
            issues.push(
                format!("{path}.code"),
                "a coding needs a code to be compared",
            );
        }
        return None;
    };
    Some(Coding::new(system, code))
}

/// The codings of a CodeableConcept (text alone cannot be compared).
fn concept(value: &Value, path: &str, issues: &mut Issues) -> Vec<Coding> {
    let Some(object) = object(value, path, issues) else {
        return Vec::new();
    };
    check_keys(object, path, &CONCEPT_ELEMENTS, issues);
    let codings: Vec<Coding> = match object.get("coding") {
        Some(list) => array(list, &format!("{path}.coding"), issues)
            .iter()
            .enumerate()
            .filter_map(|(i, c)| coding(c, &format!("{path}.coding[{i}]"), issues))
            .collect(),
        None => Vec::new(),
    };
    if codings.is_empty() && object.get("coding").is_none() {
        issues.push(
            format!("{path}.coding"),
            "only codings can be compared; a concept given as text alone cannot",
        );
    }
    codings
}

fn scope(value: &Value, issues: &mut Issues) -> Option<ConsentScope> {
    let path = "Consent.scope";
    let codings = concept(value, path, issues);
    let mut found: Vec<ConsentScope> = Vec::new();
    for (i, c) in codings.iter().enumerate() {
        match c.system.as_deref() {
            Some(CONSENT_SCOPE_SYSTEM) | None => match ConsentScope::parse(&c.code) {
                Some(s) => found.push(s),
                None => issues.push(
                    format!("{path}.coding[{i}].code"),
                    format!(
                        "{:?} is not a consentscope code (patient-privacy, research, treatment, adr)",
                        c.code
                    ),
                ),
            },
            // A translation into another system, beside the consentscope coding.
            Some(_) => {}
        }
    }
    found.dedup();
    match found.as_slice() {
        [one] => Some(*one),
        [] => {
            issues.push(
                path,
                format!("needs a coding from {CONSENT_SCOPE_SYSTEM} (patient-privacy, research, treatment, adr)"),
            );
            None
        }
        _ => {
            issues.push(path, "names more than one consentscope code");
            None
        }
    }
}

/// `Type/id` with a FHIR id; `None` for absolute, contained, versioned or malformed references.
fn literal_reference(raw: &str) -> Option<(&str, &str)> {
    let (kind, id) = raw.split_once('/')?;
    (check::is_fhir_id(id) && !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphabetic()))
        .then_some((kind, id))
}

fn patient(value: &Value, issues: &mut Issues) -> Option<String> {
    let path = "Consent.patient";
    let object = object(value, path, issues)?;
    check_keys(object, path, &REFERENCE_ELEMENTS, issues);
    match string(object, "reference", path, issues) {
        Some(raw) => match literal_reference(raw) {
            Some(("Patient", id)) => Some(format!("Patient/{id}")),
            _ => {
                issues.push(
                    format!("{path}.reference"),
                    format!("{raw:?} is not a patient reference (Patient/<id>)"),
                );
                None
            }
        },
        None => {
            issues.push(
                format!("{path}.reference"),
                "is required: the patient must be named by a literal reference Patient/<id>",
            );
            None
        }
    }
}

fn period(value: &Value, path: &str, issues: &mut Issues) -> Option<Period> {
    let object = object(value, path, issues)?;
    check_keys(object, path, &PERIOD_ELEMENTS, issues);
    let bound = |key: &str, issues: &mut Issues| match object.get(key) {
        None => None,
        Some(Value::String(raw)) => {
            let range = instant_range(raw);
            if range.is_none() {
                issues.push(
                    format!("{path}.{key}"),
                    format!("{raw:?} is not a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD or a date-time with its zone)"),
                );
            }
            range
        }
        Some(_) => {
            issues.push(format!("{path}.{key}"), "must be a FHIR dateTime string");
            None
        }
    };
    let start = bound("start", issues).map(|(first, _)| first);
    let end = bound("end", issues).map(|(_, last)| last);
    Some(Period { start, end })
}

fn actor(value: &Value, path: &str, issues: &mut Issues) -> Option<Actor> {
    let object = object(value, path, issues)?;
    check_keys(object, path, &ACTOR_ELEMENTS, issues);
    let role = match object.get("role") {
        Some(role) => {
            let codings = concept(role, &format!("{path}.role"), issues);
            for (i, c) in codings.iter().enumerate() {
                if SOURCE_ROLES.contains(&c.code.as_str()) {
                    issues.push(
                        format!("{path}.role.coding[{i}]"),
                        format!(
                            "role {} says where the data came from (author, custodian, informant ...), not who receives it; that needs authorship facts the engine does not have",
                            c.code
                        ),
                    );
                }
            }
            codings
        }
        None => {
            issues.push(
                format!("{path}.role"),
                "is required (how the actor is involved)",
            );
            Vec::new()
        }
    };
    let reference_path = format!("{path}.reference");
    let Some(reference) = object.get("reference") else {
        issues.push(
            reference_path,
            "is required: the actor must be named by a literal reference",
        );
        return None;
    };
    let reference_object = self::object(reference, &reference_path, issues)?;
    check_keys(
        reference_object,
        &reference_path,
        &REFERENCE_ELEMENTS,
        issues,
    );
    let Some(raw) = string(reference_object, "reference", &reference_path, issues) else {
        issues.push(
            reference_path,
            "names the actor without a literal reference (by identifier or display only); the engine cannot tell who that is, and would otherwise match anyone",
        );
        return None;
    };
    let kind =
        literal_reference(raw).and_then(|(kind, _)| ActorKind::parse(kind).map(|k| (k, kind)));
    let Some((kind, type_name)) = kind else {
        issues.push(
            reference_path,
            format!("{raw:?} is not a reference to an Organization, Practitioner, PractitionerRole, CareTeam, RelatedPerson, Group, Patient or Device (Type/<id>)"),
        );
        return None;
    };
    if let Some(Value::String(stated)) = reference_object.get("type") {
        if stated != type_name {
            issues.push(
                format!("{reference_path}.type"),
                format!("says {stated} but the reference is a {type_name}"),
            );
        }
    }
    Some(Actor {
        reference: raw.to_string(),
        kind,
        role,
    })
}

fn action(value: &Value, path: &str, issues: &mut Issues) -> Option<ConsentAction> {
    let codings = concept(value, path, issues);
    let mut found: Vec<ConsentAction> = Vec::new();
    for (i, c) in codings.iter().enumerate() {
        match c.system.as_deref() {
            Some(CONSENT_ACTION_SYSTEM) | None => match ConsentAction::parse(&c.code) {
                Some(a) => found.push(a),
                None => issues.push(
                    format!("{path}.coding[{i}].code"),
                    format!("{:?} is not a consentaction code (collect, access, use, disclose, correct)", c.code),
                ),
            },
            Some(_) => {}
        }
    }
    found.dedup();
    match found.as_slice() {
        [one] => Some(*one),
        [] => {
            issues.push(
                path,
                format!("needs a coding from {CONSENT_ACTION_SYSTEM} (collect, access, use, disclose, correct)"),
            );
            None
        }
        _ => {
            issues.push(
                path,
                "one action names one consentaction code; list several actions instead",
            );
            None
        }
    }
}

fn security_label(value: &Value, path: &str, issues: &mut Issues) -> Option<SecurityLabel> {
    let c = coding(value, path, issues)?;
    if let Some(level) = Confidentiality::of(&c) {
        return Some(SecurityLabel::Confidentiality(level));
    }
    if c.system.as_deref() == Some(CONFIDENTIALITY_SYSTEM) {
        issues.push(
            format!("{path}.code"),
            format!(
                "{:?} is not a v3-Confidentiality code (U, L, M, N, R, V)",
                c.code
            ),
        );
        return None;
    }
    Some(SecurityLabel::Other(c))
}

fn class(value: &Value, path: &str, issues: &mut Issues) -> Option<String> {
    let c = coding(value, path, issues)?;
    match c.system.as_deref() {
        Some(RESOURCE_TYPES_SYSTEM) | None => {}
        Some(other) => {
            issues.push(
                format!("{path}.system"),
                format!("classes from {other} cannot be enforced; name FHIR resource types ({RESOURCE_TYPES_SYSTEM})"),
            );
            return None;
        }
    }
    if !crate::resource_types::is_resource_type(&c.code) {
        issues.push(
            format!("{path}.code"),
            format!("{:?} is not a FHIR R4 resource type", c.code),
        );
        return None;
    }
    Some(c.code)
}

/// `data.meaning` this engine enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Instance,
    Dependents,
    Related,
}

fn data(value: &Value, path: &str, issues: &mut Issues) -> Option<(Meaning, String)> {
    let object = object(value, path, issues)?;
    check_keys(object, path, &DATA_ELEMENTS, issues);
    let meaning = match object.get("meaning") {
        Some(Value::String(m)) if m == "instance" => Some(Meaning::Instance),
        Some(Value::String(m)) if m == "dependents" => Some(Meaning::Dependents),
        Some(Value::String(m)) if m == "related" => Some(Meaning::Related),
        Some(Value::String(m)) if m == "authoredby" => {
            issues.push(
                format!("{path}.meaning"),
                "meaning \"authoredby\" needs authorship facts the engine does not have (which element names the author differs per resource type); instance, related and dependents can be enforced exactly",
            );
            None
        }
        Some(other) => {
            issues.push(
                format!("{path}.meaning"),
                format!("{other} is not a consent-data-meaning code (instance, related, dependents, authoredby)"),
            );
            None
        }
        None => {
            issues.push(format!("{path}.meaning"), "is required");
            None
        }
    };
    let reference_path = format!("{path}.reference");
    let reference = match object.get("reference") {
        Some(r) => {
            let r = self::object(r, &reference_path, issues)?;
            check_keys(r, &reference_path, &REFERENCE_ELEMENTS, issues);
            let raw = string(r, "reference", &reference_path, issues);
            match raw.and_then(literal_reference) {
                Some((kind, id)) if crate::resource_types::is_resource_type(kind) => {
                    Some(format!("{kind}/{id}"))
                }
                _ => {
                    issues.push(
                        reference_path,
                        "must be a literal reference to a resource (Type/<id>)",
                    );
                    None
                }
            }
        }
        None => {
            issues.push(reference_path, "is required");
            None
        }
    };
    Some((meaning?, reference?))
}

fn list<T>(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    issues: &mut Issues,
    mut item: impl FnMut(&Value, &str, &mut Issues) -> Option<T>,
) -> Vec<T> {
    match object.get(key) {
        None => Vec::new(),
        Some(value) => {
            let list_path = format!("{path}.{key}");
            array(value, &list_path, issues)
                .iter()
                .enumerate()
                .filter_map(|(i, v)| item(v, &format!("{list_path}[{i}]"), issues))
                .collect()
        }
    }
}

fn provision(
    value: &Value,
    path: &str,
    parent: Option<ProvisionType>,
    depth: usize,
    issues: &mut Issues,
) -> Option<Provision> {
    if depth >= MAX_DEPTH {
        issues.push(path, format!("provisions nest more than {MAX_DEPTH} deep"));
        return None;
    }
    let object = object(value, path, issues)?;
    check_keys(object, path, &PROVISION_ELEMENTS, issues);
    let kind = match object.get("type") {
        Some(Value::String(t)) if t == "permit" => ProvisionType::Permit,
        Some(Value::String(t)) if t == "deny" => ProvisionType::Deny,
        Some(other) => {
            issues.push(
                format!("{path}.type"),
                format!("{other} is not deny or permit"),
            );
            return None;
        }
        // The root without a type permits; a nested provision without one is an exception to
        // its parent.
        None => parent.map_or(ProvisionType::Permit, ProvisionType::opposite),
    };
    let period = object
        .get("period")
        .and_then(|v| self::period(v, &format!("{path}.period"), issues));
    let data_period = object
        .get("dataPeriod")
        .and_then(|v| self::period(v, &format!("{path}.dataPeriod"), issues));
    let actors = list(object, "actor", path, issues, actor);
    let mut actions = list(object, "action", path, issues, action);
    actions.dedup();
    let security_labels = list(object, "securityLabel", path, issues, security_label);
    let purposes = list(object, "purpose", path, issues, |v, p, i| {
        coding(v, p, i).map(|c| c.code)
    });
    let classes = list(object, "class", path, issues, class);
    let codes: Vec<Coding> = list(object, "code", path, issues, |v, p, i| {
        Some(concept(v, p, i))
    })
    .into_iter()
    .flatten()
    .collect();
    let (mut data, mut dependents, mut related) = (Vec::new(), Vec::new(), Vec::new());
    for (meaning, reference) in list(object, "data", path, issues, self::data) {
        match meaning {
            Meaning::Instance => data.push(reference),
            Meaning::Dependents => dependents.push(reference),
            Meaning::Related => related.push(reference),
        }
    }
    let provisions = match object.get("provision") {
        None => Vec::new(),
        Some(value) => {
            let list_path = format!("{path}.provision");
            array(value, &list_path, issues)
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    provision(
                        v,
                        &format!("{list_path}[{i}]"),
                        Some(kind),
                        depth + 1,
                        issues,
                    )
                })
                .collect()
        }
    };
    Some(Provision {
        kind,
        period,
        actors,
        actions,
        security_labels,
        purposes,
        classes,
        codes,
        data_period,
        data,
        dependents,
        related,
        provisions,
    })
}
