//! A FHIR R4 Consent that passed the specification's JSON Schema and the policy engine's
//! parser ([`custodian_policy::Consent::parse`]): the engine enforces exactly what it says. The
//! client's JSON is kept as the record of truth; the server sets only `id` and
//! `meta.versionId`, `meta.lastUpdated`.

use chrono::{DateTime, Utc};
use custodian_access::{consents::ConsentView, PatientRef};
use custodian_policy::{Consent, ConsentStatus, ParsedConsent};
use serde_json::{json, Value};
use uuid::Uuid;

use super::VersionId;
use crate::error::ConsentError;

/// Consent statuses (R4 `consent-state-codes`).
pub const STATUSES: [&str; 6] = [
    "draft",
    "proposed",
    "active",
    "rejected",
    "inactive",
    "entered-in-error",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ConsentResource {
    json: Value,
    policy: ParsedConsent,
    patient: PatientRef,
}

impl ConsentResource {
    /// Checks a request body: a JSON object of type Consent (400 otherwise), valid against the
    /// R4 schema and enforceable exactly by the policy engine (422 otherwise, every issue with
    /// its element's path).
    pub fn parse(body: Value) -> Result<Self, ConsentError> {
        if !body.is_object() {
            return Err(ConsentError::bad_request("the body must be a JSON object"));
        }
        match body.get("resourceType").and_then(Value::as_str) {
            Some("Consent") => {}
            Some(other) => {
                return Err(ConsentError::bad_request(format!(
                    "expected resourceType Consent, got {other:?}"
                )))
            }
            None => return Err(ConsentError::bad_request("resourceType is missing")),
        }
        if let Err(issues) = custodian_fhir::validate_resource(&body) {
            return Err(ConsentError::Invalid(
                issues
                    .into_iter()
                    .map(|i| (i.location, i.message))
                    .collect(),
            ));
        }
        Self::read(body)
    }

    /// A resource read back from the database (it passed [`parse`](Self::parse) when written).
    /// A stored consent the engine cannot read any more is an error, never a wider rule.
    pub fn from_stored(json: Value) -> Result<Self, ConsentError> {
        Self::read(json)
    }

    fn read(json: Value) -> Result<Self, ConsentError> {
        let policy = Consent::parse(&json).map_err(|e| {
            ConsentError::Invalid(
                e.into_issues()
                    .into_iter()
                    .map(|i| (i.path, i.message))
                    .collect(),
            )
        })?;
        let patient = PatientRef::parse(policy.patient()).map_err(|e| {
            ConsentError::Invalid(vec![("Consent.patient.reference".into(), e.to_string())])
        })?;
        Ok(Self {
            json,
            policy,
            patient,
        })
    }

    /// The `id` the client put in the body, if any.
    pub fn id_in_body(&self) -> Option<&str> {
        self.json.get("id").and_then(Value::as_str)
    }

    /// The same resource naming `id` (a conditional update's match, when the body has none).
    pub fn with_id(mut self, id: Uuid) -> Self {
        if let Some(object) = self.json.as_object_mut() {
            object.insert("id".into(), json!(id.to_string()));
        }
        self
    }

    /// Sets the server's `id`, `meta.versionId` and `meta.lastUpdated`, keeping the client's
    /// other `meta` elements (tags, security labels, profiles).
    pub fn stamp(mut self, id: Uuid, version: VersionId, last_updated: DateTime<Utc>) -> Self {
        if let Some(object) = self.json.as_object_mut() {
            object.insert("id".into(), json!(id.to_string()));
            let meta = object.entry("meta").or_insert_with(|| json!({}));
            if !meta.is_object() {
                *meta = json!({});
            }
            meta["versionId"] = json!(version.to_string());
            meta["lastUpdated"] = json!(format_instant(last_updated));
        }
        self.policy = self.policy.with_reference(format!("Consent/{id}"));
        self
    }

    /// What the engine enforces while this version is current: the typed consent when it is
    /// active, `None` otherwise (draft, proposed, rejected, inactive, entered-in-error).
    pub fn in_force(&self) -> Option<ParsedConsent> {
        (self.policy.status() == ConsentStatus::Active).then(|| self.policy.clone())
    }

    pub fn policy(&self) -> &ParsedConsent {
        &self.policy
    }

    /// The actor references the provisions name, at any depth (who may see the consent).
    pub fn named_actors(&self) -> Vec<String> {
        self.policy.named_actors()
    }

    pub fn patient(&self) -> &PatientRef {
        &self.patient
    }

    pub fn status(&self) -> &str {
        self.policy.status().as_str()
    }

    pub fn json(&self) -> &Value {
        &self.json
    }

    pub fn into_json(self) -> Value {
        self.json
    }
}

/// The actor references a stored version's provisions name, at any depth, read leniently from
/// its JSON (the same rule as the `actors` column's migration): who may see that version.
pub fn named_in(json: &Value) -> Vec<String> {
    fn walk(provision: &Value, out: &mut Vec<String>, depth: usize) {
        if depth > 64 {
            return;
        }
        if let Some(actors) = provision.get("actor").and_then(Value::as_array) {
            out.extend(
                actors
                    .iter()
                    .filter_map(|a| a.pointer("/reference/reference").and_then(Value::as_str))
                    .map(str::to_string),
            );
        }
        if let Some(children) = provision.get("provision").and_then(Value::as_array) {
            for child in children {
                walk(child, out, depth + 1);
            }
        }
    }
    let mut named = Vec::new();
    if let Some(root) = json.get("provision") {
        walk(root, &mut named, 0);
    }
    named.sort();
    named.dedup();
    named
}

/// The consent as `view` lets the caller see it.
pub fn shown(view: &ConsentView, json: &Value) -> Value {
    match view {
        ConsentView::Whole => json.clone(),
        ConsentView::NamingOnly(actors) => redacted(json, actors),
    }
}

/// What a consent's named actor sees of it: the provisions that apply to it and the path to
/// them, with only its own entries in their `actor` lists, and none of what would name other
/// parties (narrative, contained resources, performer, organization, source, verification).
/// Whom else the patient trusts or excludes is hers to know. The version keeps its id and
/// `meta`, plus the `REDACTED` security label (v3-ObservationValue) saying parts were removed.
pub fn redacted(json: &Value, actors: &[String]) -> Value {
    /// Elements that say nothing about other parties.
    const KEPT: [&str; 11] = [
        "resourceType",
        "id",
        "meta",
        "language",
        "status",
        "scope",
        "category",
        "patient",
        "dateTime",
        "policy",
        "policyRule",
    ];
    let mut out = serde_json::Map::new();
    if let Some(object) = json.as_object() {
        for (name, value) in object {
            if KEPT.contains(&name.as_str()) {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    if let Some(provision) = json
        .get("provision")
        .and_then(|root| redact_provision(root, actors, false, 0))
    {
        out.insert("provision".into(), provision);
    }
    let label = json!({
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "REDACTED",
        "display": "redacted",
    });
    let meta = out.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let security = meta.entry("security").or_insert_with(|| json!([]));
        if let Some(labels) = security.as_array_mut() {
            labels.push(label);
        }
    }
    Value::Object(out)
}

/// One provision of [`redacted`]: kept when it names one of `actors`, when it names nobody and
/// applies to them through an ancestor (`inherited`), or when it is on the way to a provision
/// that is kept; dropped when it names only others.
fn redact_provision(
    node: &Value,
    actors: &[String],
    inherited: bool,
    depth: usize,
) -> Option<Value> {
    if depth > 64 {
        return None;
    }
    let named: Vec<&Value> = node
        .get("actor")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mine: Vec<Value> = named
        .iter()
        .filter(|a| {
            a.pointer("/reference/reference")
                .and_then(Value::as_str)
                .is_some_and(|r| actors.iter().any(|x| x == r))
        })
        .map(|a| (*a).clone())
        .collect();
    if !named.is_empty() && mine.is_empty() {
        return None;
    }
    let applies = inherited || !mine.is_empty();
    let children: Vec<Value> = node
        .get("provision")
        .and_then(Value::as_array)
        .map(|children| {
            children
                .iter()
                .filter_map(|c| redact_provision(c, actors, applies, depth + 1))
                .collect()
        })
        .unwrap_or_default();
    if !applies && children.is_empty() {
        return None;
    }
    let mut kept = node.as_object().cloned().unwrap_or_default();
    kept.remove("actor");
    kept.remove("provision");
    if !mine.is_empty() {
        kept.insert("actor".into(), Value::Array(mine));
    }
    if !children.is_empty() {
        kept.insert("provision".into(), Value::Array(children));
    }
    Some(Value::Object(kept))
}

pub use custodian_fhir::dates::{format_instant, now_millis};

#[cfg(test)]
mod tests {
    use super::*;

    fn consent() -> Value {
        json!({
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/alice"},
            "meta": {"tag": [{"code": "HTEST"}]},
            "provision": {"type": "permit", "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Organization/h1"}}],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
                "provision": [{"type": "deny", "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Practitioner/p9"}}]}]}
        })
    }

    #[test]
    fn a_named_actor_sees_only_the_provisions_that_apply_to_it() {
        let consent = json!({
            "resourceType": "Consent", "id": "c1", "status": "active",
            "meta": {"versionId": "2"},
            "text": {"status": "generated", "div": "<div>Alice trusts h2 and h3, not p9</div>"},
            "performer": [{"reference": "RelatedPerson/mum"}],
            "patient": {"reference": "Patient/alice"},
            "provision": {"type": "permit", "purpose": [{"code": "TREAT"}],
                "provision": [
                    {"type": "permit", "actor": [
                        {"reference": {"reference": "Organization/h2"}},
                        {"reference": {"reference": "Organization/h3"}}],
                     "provision": [
                        {"type": "deny", "securityLabel": [{"code": "R"}]},
                        {"type": "deny", "actor": [{"reference": {"reference": "Organization/h3"}}], "class": [{"code": "Condition"}]}]},
                    {"type": "deny", "actor": [{"reference": {"reference": "Practitioner/p9"}}]}]}
        });
        let seen = redacted(&consent, &["Organization/h2".to_string()]);
        let text = seen.to_string();
        for hidden in [
            "Organization/h3",
            "Practitioner/p9",
            "RelatedPerson/mum",
            "not p9",
        ] {
            assert!(!text.contains(hidden), "{hidden} leaked: {text}");
        }
        assert_eq!(seen["id"], "c1");
        assert_eq!(seen["meta"]["versionId"], "2");
        assert_eq!(seen["meta"]["security"][0]["code"], "REDACTED");
        let root = &seen["provision"];
        assert_eq!(
            root["purpose"][0]["code"], "TREAT",
            "the path to h2 keeps its conditions"
        );
        let theirs = root["provision"].as_array().unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0]["actor"].as_array().unwrap().len(), 1);
        // The exception that applies to h2 through its parent stays; h3's own does not.
        let exceptions = theirs[0]["provision"].as_array().unwrap();
        assert_eq!(exceptions.len(), 1);
        assert_eq!(exceptions[0]["securityLabel"][0]["code"], "R");

        let stranger = redacted(&consent, &["Organization/h9".to_string()]);
        assert!(stranger.get("provision").is_none());
    }

    fn issues(err: ConsentError) -> Vec<(String, String)> {
        match err {
            ConsentError::Invalid(issues) => issues,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn parses_and_stamps_keeping_client_meta() {
        let parsed = ConsentResource::parse(consent()).unwrap();
        assert_eq!(parsed.patient().as_str(), "Patient/alice");
        assert_eq!(parsed.status(), "active");
        assert_eq!(
            parsed.named_actors(),
            vec!["Organization/h1", "Practitioner/p9"]
        );
        assert_eq!(named_in(parsed.json()), parsed.named_actors());
        let id = Uuid::new_v4();
        let stamped = parsed.stamp(id, VersionId::FIRST, now_millis());
        assert_eq!(stamped.json()["id"], id.to_string());
        assert_eq!(stamped.json()["meta"]["versionId"], "1");
        assert_eq!(stamped.json()["meta"]["tag"][0]["code"], "HTEST");
        let policy = stamped.in_force().unwrap();
        assert_eq!(policy.reference(), Some(format!("Consent/{id}").as_str()));
    }

    #[test]
    fn only_active_consents_are_in_force() {
        let mut c = consent();
        c["status"] = "inactive".into();
        assert!(ConsentResource::parse(c).unwrap().in_force().is_none());
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let mut c = consent();
        c["resourceType"] = "Patient".into();
        assert!(matches!(
            ConsentResource::parse(c),
            Err(ConsentError::Fhir(_))
        ));
        assert!(matches!(
            ConsentResource::parse(json!([1])),
            Err(ConsentError::Fhir(_))
        ));
    }

    #[test]
    fn schema_and_policy_violations_are_unprocessable_with_paths() {
        let mut c = consent();
        c["status"] = "maybe".into();
        assert!(!issues(ConsentResource::parse(c).unwrap_err()).is_empty());
        let mut c = consent();
        c["patient"]["reference"] = "Group/g1".into();
        assert!(issues(ConsentResource::parse(c).unwrap_err())
            .iter()
            .any(|(path, _)| path == "Consent.patient.reference"));
        let mut c = consent();
        c["provision"]["provision"][0]["actor"][0]["reference"] =
            json!({"identifier": {"value": "p9"}});
        assert!(issues(ConsentResource::parse(c).unwrap_err())
            .iter()
            .any(|(path, _)| path == "Consent.provision.provision[0].actor[0].reference"));
    }
}
