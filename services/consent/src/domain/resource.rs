//! A FHIR R4 Consent that passed the specification's JSON Schema and the policy parser. The
//! client's JSON is kept as the record of truth; the server sets only `id` and `meta.versionId`,
//! `meta.lastUpdated`.

use chrono::{DateTime, SecondsFormat, Utc};
use custodian_policy::{parse::consent_patient, rules_from_consent, ConsentRule};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{PatientRef, VersionId};
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
    patient: PatientRef,
    status: String,
}

impl ConsentResource {
    /// Checks a request body: a JSON object of type Consent (400 otherwise), valid against the
    /// R4 schema, with a status, a `Patient/<id>` patient and provisions the policy understands
    /// (422 otherwise).
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
            return Err(ConsentError::unprocessable(
                issues
                    .into_iter()
                    .map(|i| (i.location, i.message))
                    .collect(),
            ));
        }
        let status = match body.get("status").and_then(Value::as_str) {
            Some(s) if STATUSES.contains(&s) => s.to_string(),
            _ => {
                return Err(ConsentError::unprocessable(vec![(
                    "Consent.status".into(),
                    "Consent.status is required".into(),
                )]))
            }
        };
        let patient = consent_patient(&body)
            .map_err(|e| {
                ConsentError::unprocessable(vec![("Consent.patient".into(), e.to_string())])
            })
            .and_then(|p| {
                PatientRef::parse(&p)
                    .map_err(|e| ConsentError::unprocessable(vec![("Consent.patient".into(), e)]))
            })?;
        if let Err(e) = rules_from_consent(&body) {
            return Err(ConsentError::unprocessable(vec![(
                "Consent.provision".into(),
                e.to_string(),
            )]));
        }
        Ok(Self {
            json: body,
            patient,
            status,
        })
    }

    /// A resource read back from the database (it passed [`parse`](Self::parse) when written).
    pub fn from_stored(json: Value) -> Result<Self, ConsentError> {
        let patient = consent_patient(&json)
            .ok()
            .and_then(|p| PatientRef::parse(&p).ok())
            .ok_or_else(|| ConsentError::Unexpected("stored consent has no patient".into()))?;
        let status = json
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            json,
            patient,
            status,
        })
    }

    /// The `id` the client put in the body, if any.
    pub fn id_in_body(&self) -> Option<&str> {
        self.json.get("id").and_then(Value::as_str)
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
        self
    }

    /// The rules this consent puts in force (none unless `active`).
    pub fn rules(&self) -> Result<Vec<ConsentRule>, ConsentError> {
        rules_from_consent(&self.json)
            .map_err(|e| ConsentError::Unexpected(format!("consent rules: {e}")))
    }

    pub fn patient(&self) -> &PatientRef {
        &self.patient
    }

    pub fn status(&self) -> &str {
        &self.status
    }

    pub fn json(&self) -> &Value {
        &self.json
    }

    pub fn into_json(self) -> Value {
        self.json
    }
}

/// A FHIR instant with milliseconds: `2026-11-23T04:22:58.123Z`.
pub fn format_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Now, truncated to milliseconds so `meta.lastUpdated` and the stored timestamp agree.
pub fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

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
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}
        })
    }

    fn message(err: ConsentError) -> String {
        match err {
            ConsentError::Fhir(e) => format!("{e:?}"),
            other => panic!("expected a FHIR error, got {other:?}"),
        }
    }

    #[test]
    fn parses_and_stamps_keeping_client_meta() {
        let parsed = ConsentResource::parse(consent()).unwrap();
        assert_eq!(parsed.patient().as_str(), "Patient/alice");
        assert_eq!(parsed.status(), "active");
        let id = Uuid::new_v4();
        let stamped = parsed.stamp(id, VersionId::FIRST, now_millis());
        assert_eq!(stamped.json()["id"], id.to_string());
        assert_eq!(stamped.json()["meta"]["versionId"], "1");
        assert_eq!(stamped.json()["meta"]["tag"][0]["code"], "HTEST");
        let rules = stamped.rules().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].consent, format!("Consent/{id}"));
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let mut c = consent();
        c["resourceType"] = "Patient".into();
        assert!(message(ConsentResource::parse(c).unwrap_err()).contains("BadRequest"));
        assert!(message(ConsentResource::parse(json!([1])).unwrap_err()).contains("BadRequest"));
    }

    #[test]
    fn schema_and_policy_violations_are_unprocessable() {
        let mut c = consent();
        c["status"] = "maybe".into();
        assert!(message(ConsentResource::parse(c).unwrap_err()).contains("Unprocessable"));
        let mut c = consent();
        c["patient"]["reference"] = "Group/g1".into();
        assert!(message(ConsentResource::parse(c).unwrap_err()).contains("Consent.patient"));
        let mut c = consent();
        c["provision"]["period"] = json!({"start": "2020-13-45"});
        assert!(message(ConsentResource::parse(c).unwrap_err()).contains("Unprocessable"));
    }
}
