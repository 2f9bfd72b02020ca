//! Relationships read from clinical data, published by records on `<prefix>:relationships`
//! (signed by records). Two kinds:
//!
//! - `membership`: who is in a container (CareTeam, Group, PractitionerRole) that consents may
//!   name as an actor. Each message carries the container's whole current member list (or says
//!   its membership is unknown), with the version of the resource it was read from: a replica
//!   keeps the newest version per container, so messages may arrive twice or out of order.
//! - `care`: who cares for which patient (Encounter participants and service provider, CareTeam
//!   members, `Patient.generalPractitioner`, EpisodeOfCare care manager, team and managing
//!   organisation), replacing every fact read from the same source resource. Published for the
//!   anomaly detector; nobody obeys them yet.
//! - `labels`: who the patient is, as her Patient resource's `meta.security` says (HL7 v3
//!   ActCode: `EMP` a member of staff, `CEL` a celebrity ...), replacing the labels of earlier
//!   versions. Published for the anomaly detector: the records the curious look for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One message on the relationships stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RelationshipEvent {
    Membership(MembershipChange),
    Care(CareChange),
    Labels(PatientLabels),
}

/// A patient's labels as of `version` of her Patient resource (empty once none are left, or
/// the resource is deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientLabels {
    /// `Patient/<id>`.
    pub patient: String,
    pub version: i64,
    /// Codes of `meta.security` in `http://terminology.hl7.org/CodeSystem/v3-ActCode`
    /// (`EMP`, `CEL`, ...), sorted, without duplicates.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// A container's members as of `version` of the resource they were read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// `CareTeam/<id>`, `Group/<id>` or `PractitionerRole/<id>`.
    pub container: String,
    /// The container resource's version (a deletion is a version too).
    pub version: i64,
    /// False when the members cannot be known (a Group with `actual = false`, a membership
    /// period that cannot be read): a deny naming it then fails closed.
    pub known: bool,
    /// Empty when the container is deleted, inactive or has no members.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// One member of a container, while `start..=end` (open where absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `Practitioner/..`, `Organization/..`, `PractitionerRole/..`, `CareTeam/..`, `Group/..`,
    /// `RelatedPerson/..`, `Patient/..`, `Device/..`.
    pub member: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// A PractitionerRole's practitioner is in the role only while acting for this
    /// organisation (the role's `organization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

/// Every care fact read from one resource, as of its `version` (empty once it is deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareChange {
    /// `Encounter/e1`, `CareTeam/ct1`, `Patient/p1`, `EpisodeOfCare/eoc1`.
    pub source: String,
    pub version: i64,
    #[serde(default)]
    pub facts: Vec<CareFact>,
}

/// `actor` takes part in `patient`'s care through `via` (the source resource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareFact {
    /// `Patient/<id>`.
    pub patient: String,
    /// `Practitioner/..`, `PractitionerRole/..`, `Organization/..`, `CareTeam/..`,
    /// `RelatedPerson/..` ...
    pub actor: String,
    /// The source resource (`Encounter/e1`).
    pub via: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_by_kind() {
        let event = RelationshipEvent::Membership(MembershipChange {
            container: "CareTeam/ct1".into(),
            version: 2,
            known: true,
            members: vec![Member {
                member: "Practitioner/p1".into(),
                start: None,
                end: None,
                organization: None,
            }],
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "membership");
        assert_eq!(
            json["members"][0],
            serde_json::json!({"member": "Practitioner/p1"})
        );
        let back: RelationshipEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        let care: RelationshipEvent = serde_json::from_value(serde_json::json!({
            "kind": "care", "source": "Encounter/e1", "version": 1,
            "facts": [{"patient": "Patient/a", "actor": "Practitioner/p1", "via": "Encounter/e1"}]
        }))
        .unwrap();
        assert!(matches!(care, RelationshipEvent::Care(c) if c.facts.len() == 1));
        let labels = RelationshipEvent::Labels(PatientLabels {
            patient: "Patient/a".into(),
            version: 4,
            labels: vec!["EMP".into()],
        });
        let json = serde_json::to_value(&labels).unwrap();
        assert_eq!(json["kind"], "labels");
        assert_eq!(json["labels"][0], "EMP");
        assert_eq!(
            serde_json::from_value::<RelationshipEvent>(json).unwrap(),
            labels
        );
    }
}
