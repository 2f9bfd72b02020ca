//! An alert as a FHIR R4 `DetectedIssue` (pure: the row and its feedback in, JSON out).
//!
//! | element | from |
//! |---|---|
//! | `status` | `preliminary` while open, `final` once acknowledged, `cancelled` once dismissed |
//! | `code` | the alert's kind, [`KIND_SYSTEM`] |
//! | `severity` | `high` at a score ≥ 0.92, `moderate` ≥ 0.8, `low` below (break-glass reviews) |
//! | `patient` | the access event's patient, as the ledger shows it to auditors |
//! | `identifiedDateTime` | the access event's time |
//! | `author` | `Device/custodian-anomaly`, the detector |
//! | `implicated` | `AuditEvent/<event id>`: the access event (its ledger entry), then the other events of its incident (taken in late, or alerting within the cooldown; at most 1,000) |
//! | `detail` | the plain-words explanation |
//! | `evidence` | one per feature that drove the score: `code` the feature ([`FEATURE_SYSTEM`]), extension [`CONTRIBUTION_URL`] its value and contribution |
//! | `mitigation` | `suspend-user` when identity was asked to suspend, then each `acknowledged` / `dismissed` with its reviewer and date ([`MITIGATION_SYSTEM`]) |
//! | `extension` | [`SCORE_URL`] the score, [`INCIDENT_URL`] the incident, [`ACTOR_URL`] the user (token `sub`) whose behaviour raised it |
//!
//! Nothing here goes beyond what the ledger shows auditors: user ids, a patient reference and
//! event ids, no clinical data.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    alerts::{AlertRecord, AlertStatus},
    feedback::{FeedbackAction, FeedbackRow},
    kind::{AlertKind, KIND_SYSTEM},
};

const BASE: &str = "https://custodian.example/fhir";
pub const FEATURE_SYSTEM: &str = "https://custodian.example/fhir/CodeSystem/anomaly-feature";
pub const MITIGATION_SYSTEM: &str = "https://custodian.example/fhir/CodeSystem/anomaly-mitigation";
pub const SCORE_URL: &str = "https://custodian.example/fhir/StructureDefinition/anomaly-score";
pub const INCIDENT_URL: &str =
    "https://custodian.example/fhir/StructureDefinition/anomaly-incident";
pub const ACTOR_URL: &str = "https://custodian.example/fhir/StructureDefinition/anomaly-actor";
pub const CONTRIBUTION_URL: &str =
    "https://custodian.example/fhir/StructureDefinition/anomaly-contribution";
/// The system of reviewers' and actors' identifiers (identity's user ids).
pub const USER_SYSTEM: &str = "https://custodian.example/fhir/NamingSystem/user";
/// The detector, as `DetectedIssue.author`.
pub const DETECTOR: &str = "Device/custodian-anomaly";

/// A score at or above it is `high` severity.
pub const HIGH_SEVERITY: f64 = 0.92;
/// A score at or above it is `moderate` (below: `low`).
pub const MODERATE_SEVERITY: f64 = 0.8;

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn status(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Open => "preliminary",
        AlertStatus::Acknowledged => "final",
        AlertStatus::Dismissed => "cancelled",
    }
}

pub fn severity(score: f64) -> &'static str {
    if score >= HIGH_SEVERITY {
        "high"
    } else if score >= MODERATE_SEVERITY {
        "moderate"
    } else {
        "low"
    }
}

fn user(id: &str) -> Value {
    json!({ "identifier": { "system": USER_SYSTEM, "value": id } })
}

fn mitigation(code: &str, display: &str, date: DateTime<Utc>, author: Value) -> Value {
    json!({
        "action": { "coding": [{ "system": MITIGATION_SYSTEM, "code": code, "display": display }] },
        "date": instant(date),
        "author": author,
    })
}

fn evidence(contribution: &Value) -> Option<Value> {
    let feature = contribution.get("feature")?.as_str()?;
    let value = contribution.get("value")?.as_f64()?;
    let part = contribution.get("contribution")?.as_f64()?;
    Some(json!({
        "code": [{ "coding": [{ "system": FEATURE_SYSTEM, "code": feature }], "text": feature }],
        "extension": [{
            "url": CONTRIBUTION_URL,
            "extension": [
                { "url": "value", "valueDecimal": value },
                { "url": "contribution", "valueDecimal": part },
            ],
        }],
    }))
}

/// The alert with its feedback (oldest first) as a `DetectedIssue`.
/// The alert's access event, then the other events of its incident.
fn implicated(event: Uuid, others: &[Uuid]) -> Value {
    let mut refs =
        vec![json!({ "reference": format!("AuditEvent/{event}"), "display": "the access event" })];
    refs.extend(
        others
            .iter()
            .filter(|id| **id != event)
            .map(|id| json!({ "reference": format!("AuditEvent/{id}"), "display": "an access event of the same incident" })),
    );
    Value::Array(refs)
}

pub fn render(alert: &AlertRecord, feedback: &[FeedbackRow], others: &[Uuid]) -> Value {
    let kind = AlertKind::parse(&alert.kind);
    let detector = json!({ "reference": DETECTOR, "display": "Custodian anomaly detector" });
    let mut mitigations = Vec::new();
    if alert.suspended {
        mitigations.push(mitigation(
            "suspend-user",
            "identity asked to suspend the user",
            alert.created_at,
            detector.clone(),
        ));
    }
    for row in feedback {
        let (code, display) = match FeedbackAction::parse(&row.action) {
            Some(FeedbackAction::Acknowledge) => ("acknowledged", "acknowledged by security staff"),
            Some(FeedbackAction::Dismiss) => ("dismissed", "dismissed as legitimate"),
            None => continue,
        };
        let mut m = mitigation(code, display, row.created_at, user(&row.author_id));
        if let Some(note) = row.note.as_deref() {
            m["action"]["text"] = json!(note);
        }
        mitigations.push(m);
    }
    let evidence: Vec<Value> = alert
        .contributions
        .as_array()
        .map(|a| a.iter().filter_map(evidence).collect())
        .unwrap_or_default();
    let detail = if alert.explanation.is_empty() {
        // Alerts stored before explanations: their reasons, joined.
        alert
            .reasons
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    } else {
        alert.explanation.clone()
    };
    let mut issue = json!({
        "resourceType": "DetectedIssue",
        "id": alert.id.to_string(),
        "meta": { "lastUpdated": instant(alert.updated_at) },
        "extension": [
            { "url": SCORE_URL, "valueDecimal": alert.score },
            { "url": INCIDENT_URL, "valueId": alert.incident_id.to_string() },
            { "url": ACTOR_URL, "valueIdentifier": { "system": USER_SYSTEM, "value": alert.user_id } },
        ],
        "status": status(alert.status()),
        "code": {
            "coding": [{ "system": KIND_SYSTEM, "code": kind.code(), "display": kind.display() }],
            "text": kind.display(),
        },
        "severity": severity(alert.score),
        "identifiedDateTime": instant(alert.event_time),
        "author": detector,
        "implicated": implicated(alert.event_id, others),
        "detail": detail,
    });
    if let Some(patient) = alert.patient_ref.as_deref() {
        issue["patient"] = json!({ "reference": patient });
    }
    if !evidence.is_empty() {
        issue["evidence"] = Value::Array(evidence);
    }
    if !mitigations.is_empty() {
        issue["mitigation"] = Value::Array(mitigations);
    }
    issue
}

/// A `searchset` Bundle of the issues, newest first.
pub fn bundle(issues: Vec<Value>, self_link: &str) -> Value {
    let entries: Vec<Value> = issues
        .into_iter()
        .map(|issue| {
            let url = format!(
                "{BASE}/DetectedIssue/{}",
                issue["id"].as_str().unwrap_or_default()
            );
            json!({ "fullUrl": url, "resource": issue, "search": { "mode": "match" } })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": self_link }],
        "entry": entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn alert() -> AlertRecord {
        let t = Utc::now();
        AlertRecord {
            id: Uuid::now_v7(),
            event_id: Uuid::new_v4(),
            user_id: "u1".into(),
            score: 0.95,
            reasons: json!(["no care relationship"]),
            event_time: t,
            created_at: t,
            suspended: true,
            kind: "snooping".into(),
            incident_id: Uuid::nil(),
            explanation: "first access to this VIP record, no care relationship".into(),
            contributions: json!([
                {"feature": "sensitive_unexplained", "value": 1.0, "contribution": 0.75},
                {"feature": "no_relationship", "value": 1.0, "contribution": 0.4}
            ]),
            patient_ref: Some("Patient/a".into()),
            status: "open".into(),
            updated_at: t,
        }
    }

    #[test]
    fn the_incidents_other_events_are_implicated_after_the_alerts_own() {
        let a = alert();
        let (x, y) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let issue = render(&a, &[], &[x, a.event_id, y]);
        let refs: Vec<&str> = issue["implicated"]
            .as_array()
            .expect("implicated")
            .iter()
            .filter_map(|r| r["reference"].as_str())
            .collect();
        assert_eq!(
            refs,
            [
                format!("AuditEvent/{}", a.event_id),
                format!("AuditEvent/{x}"),
                format!("AuditEvent/{y}")
            ]
        );
    }

    #[test]
    fn an_open_alert_is_a_preliminary_issue_with_evidence() {
        let a = alert();
        let issue = render(&a, &[], &[]);
        assert_eq!(issue["resourceType"], "DetectedIssue");
        assert_eq!(issue["status"], "preliminary");
        assert_eq!(issue["severity"], "high");
        assert_eq!(issue["code"]["coding"][0]["code"], "snooping");
        assert_eq!(issue["code"]["coding"][0]["system"], KIND_SYSTEM);
        assert_eq!(issue["patient"]["reference"], "Patient/a");
        assert_eq!(
            issue["implicated"][0]["reference"],
            format!("AuditEvent/{}", a.event_id)
        );
        assert_eq!(issue["author"]["reference"], DETECTOR);
        assert_eq!(issue["detail"], a.explanation);
        assert_eq!(issue["evidence"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            issue["evidence"][0]["code"][0]["coding"][0]["code"],
            "sensitive_unexplained"
        );
        assert_eq!(
            issue["mitigation"][0]["action"]["coding"][0]["code"],
            "suspend-user"
        );
        assert_eq!(issue["extension"][0]["valueDecimal"], 0.95);
    }

    #[test]
    fn feedback_becomes_status_and_mitigation() {
        let mut a = alert();
        a.status = "dismissed".into();
        a.suspended = false;
        a.score = 0.5;
        let row = FeedbackRow {
            id: Uuid::new_v4(),
            alert_id: a.id,
            action: "dismiss".into(),
            author_id: "auditor-1".into(),
            note: Some("covering for a colleague".into()),
            created_at: Utc::now(),
        };
        let issue = render(&a, &[row], &[]);
        assert_eq!(issue["status"], "cancelled");
        assert_eq!(issue["severity"], "low");
        assert_eq!(
            issue["mitigation"][0]["action"]["coding"][0]["code"],
            "dismissed"
        );
        assert_eq!(
            issue["mitigation"][0]["action"]["text"],
            "covering for a colleague"
        );
        assert_eq!(
            issue["mitigation"][0]["author"]["identifier"]["value"],
            "auditor-1"
        );
    }

    #[test]
    fn statuses_and_severities() {
        assert_eq!(status(AlertStatus::Acknowledged), "final");
        assert_eq!(severity(0.8), "moderate");
        assert_eq!(severity(0.92), "high");
        assert_eq!(severity(0.3), "low");
    }
}
