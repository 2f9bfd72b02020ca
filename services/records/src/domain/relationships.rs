//! Relationships read from clinical data: memberships (who is in a CareTeam, Group or
//! PractitionerRole, so consents naming one reach exactly its members) and care facts (who
//! takes part in a patient's care, published for the anomaly detector).
//!
//! Rules (FHIR R4):
//! - **PractitionerRole** (unless `active = false`): holds its `practitioner` during `period`,
//!   and only while the caller acts for its `organization` when it names one.
//! - **CareTeam** (unless `status` is `inactive` or `entered-in-error`): holds each
//!   `participant.member` during `participant.period`: Practitioner, PractitionerRole,
//!   Organization (every caller of it), RelatedPerson, Patient, CareTeam (nested).
//! - **Group**: only with `actual = true` (and unless `active = false`) are its members known:
//!   each `member.entity` not `inactive`, during `member.period`, nested Groups too. Otherwise
//!   its membership is unknown.
//! - A member named otherwise than by a literal `Type/id` reference (an identifier, a
//!   contained resource, another server's URL), or a period that cannot be read, makes the
//!   container's membership unknown: it is never guessed.
//! - A deleted container is known and empty.
//! - **RelatedPerson** is a person, not a container: it is in no one, and it matches a caller
//!   only if the caller's identity is that RelatedPerson (none is today: the roles are
//!   practitioner, patient, service, admin, auditor). Its writes yield no membership.
//!
//! Writes of a container outside any patient's compartment are allowed only to staff of an
//! organisation that [`managers`] names (checked in `routes::apply`).
//!
//! Care facts: Encounter `participant.individual` and `serviceProvider` with its Patient
//! `subject`; CareTeam members with its Patient `subject`; `Patient.generalPractitioner`;
//! EpisodeOfCare `careManager`, `team` and `managingOrganization` with its `patient`.
//!
//! Patient labels: the codes of a Patient's `meta.security` in the v3 ActCode system (`EMP` a
//! member of staff, `CEL` a celebrity ...), for the anomaly detector.

use chrono::{DateTime, Utc};
use custodian_events::{CareChange, CareFact, Member, MembershipChange, PatientLabels};
use custodian_policy::time::instant_range;
use serde_json::Value;

/// Whether a type is a container consents may name by membership.
pub fn is_container_type(resource_type: &str) -> bool {
    matches!(resource_type, "CareTeam" | "Group" | "PractitionerRole")
}

/// The organisations that manage a container (`PractitionerRole.organization`,
/// `CareTeam.managingOrganization`, `Group.managingEntity` when an Organization), read through
/// `field`: only their staff may change who is in it, or anyone could join a team a patient's
/// consent admits (or leave one her consent denies). A reference that is not a literal
/// Organization reference counts as a manager nobody acts for.
pub fn managers(resource_type: &str, field: impl Fn(&str) -> Option<Value>) -> Vec<String> {
    let named: Vec<Value> = match resource_type {
        "PractitionerRole" => field("organization").into_iter().collect(),
        "CareTeam" => match field("managingOrganization") {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
        "Group" => field("managingEntity")
            .filter(|e| {
                e.get("reference")
                    .and_then(Value::as_str)
                    .is_none_or(|r| r.starts_with("Organization/"))
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    named
        .iter()
        .map(|r| literal(r).unwrap_or_else(|| "?".to_string()))
        .collect()
}

/// What one version of a resource says about relationships.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub membership: Option<MembershipChange>,
    pub care: Option<CareChange>,
    pub labels: Option<PatientLabels>,
}

/// The code system of the labels published (`meta.security` codes of other systems are not).
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// A Patient's ActCode security labels, sorted and without duplicates.
fn patient_labels(value: &Value) -> Vec<String> {
    let mut labels: Vec<String> = value
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("system").and_then(Value::as_str) == Some(ACT_CODE))
        .filter_map(|c| c.get("code").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// Whether writes of this type carry relationships.
pub fn carries_relationships(resource_type: &str) -> bool {
    matches!(
        resource_type,
        "CareTeam" | "Group" | "PractitionerRole" | "Encounter" | "Patient" | "EpisodeOfCare"
    )
}

/// The relationships of `resource_type/id` at `version`; `value` is `None` for a deletion.
pub fn extract(resource_type: &str, id: &str, version: i64, value: Option<&Value>) -> Extracted {
    let reference = format!("{resource_type}/{id}");
    let membership = match resource_type {
        "CareTeam" | "Group" | "PractitionerRole" => {
            let members = match value {
                None => Some(Vec::new()),
                Some(v) => match resource_type {
                    "CareTeam" => care_team_members(v),
                    "Group" => group_members(v),
                    _ => role_members(v),
                },
            };
            Some(MembershipChange {
                container: reference.clone(),
                version,
                known: members.is_some(),
                members: members.unwrap_or_default(),
            })
        }
        _ => None,
    };
    let care = match resource_type {
        "CareTeam" | "Encounter" | "Patient" | "EpisodeOfCare" => Some(CareChange {
            facts: value
                .map(|v| care_facts(resource_type, &reference, v))
                .unwrap_or_default(),
            source: reference,
            version,
        }),
        _ => None,
    };
    let labels = (resource_type == "Patient").then(|| PatientLabels {
        patient: format!("Patient/{id}"),
        version,
        labels: value.map(patient_labels).unwrap_or_default(),
    });
    Extracted {
        membership,
        care,
        labels,
    }
}

/// `Type/id` exactly, when `value` is a Reference with such a literal reference.
fn literal(value: &Value) -> Option<String> {
    let raw = value.get("reference")?.as_str()?;
    let (kind, id) = raw.split_once('/')?;
    let valid = custodian_policy::resource_types::is_resource_type(kind)
        && custodian_policy::check::is_fhir_id(id);
    valid.then(|| raw.to_string())
}

/// A Period's first and last instant; Err when a bound cannot be read.
type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

fn period(value: Option<&Value>) -> Result<Bounds, ()> {
    let Some(p) = value else {
        return Ok((None, None));
    };
    let bound = |name: &str, last: bool| -> Result<Option<DateTime<Utc>>, ()> {
        match p.get(name) {
            None => Ok(None),
            Some(v) => {
                let (first, end) = v.as_str().and_then(instant_range).ok_or(())?;
                Ok(Some(if last { end } else { first }))
            }
        }
    };
    Ok((bound("start", false)?, bound("end", true)?))
}

fn items<'a>(value: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A member from a Reference and a Period; None (unknown) when either cannot be read.
fn member(reference: &Value, when: Option<&Value>, organization: Option<String>) -> Option<Member> {
    let member = literal(reference)?;
    let (start, end) = period(when).ok()?;
    Some(Member {
        member,
        start,
        end,
        organization,
    })
}

/// None when the membership cannot be known.
fn role_members(v: &Value) -> Option<Vec<Member>> {
    if v.get("active").and_then(Value::as_bool) == Some(false) {
        return Some(Vec::new());
    }
    let organization = match v.get("organization") {
        None => None,
        Some(o) => Some(literal(o).filter(|r| r.starts_with("Organization/"))?),
    };
    match v.get("practitioner") {
        None => Some(Vec::new()),
        Some(p) => Some(vec![member(p, v.get("period"), organization)?]),
    }
}

fn care_team_members(v: &Value) -> Option<Vec<Member>> {
    if matches!(
        v.get("status").and_then(Value::as_str),
        Some("inactive" | "entered-in-error")
    ) {
        return Some(Vec::new());
    }
    items(v, "participant")
        .filter_map(|p| p.get("member").map(|m| (m, p.get("period"))))
        .map(|(m, when)| member(m, when, None))
        .collect()
}

fn group_members(v: &Value) -> Option<Vec<Member>> {
    if v.get("actual").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    if v.get("active").and_then(Value::as_bool) == Some(false) {
        return Some(Vec::new());
    }
    items(v, "member")
        .filter(|m| m.get("inactive").and_then(Value::as_bool) != Some(true))
        .filter_map(|m| m.get("entity").map(|e| (e, m.get("period"))))
        .map(|(e, when)| member(e, when, None))
        .collect()
}

fn care_facts(resource_type: &str, via: &str, v: &Value) -> Vec<CareFact> {
    let patient_of = |name: &str| {
        v.get(name)
            .and_then(literal)
            .filter(|r| r.starts_with("Patient/"))
    };
    let fact = |patient: &str, actor: &Value, when: Option<&Value>| {
        let actor = literal(actor)?;
        // Care facts are not enforced: an unreadable period is left open.
        let (start, end) = period(when).unwrap_or((None, None));
        Some(CareFact {
            patient: patient.to_string(),
            actor,
            via: via.to_string(),
            start,
            end,
        })
    };
    let mut facts = Vec::new();
    match resource_type {
        "Encounter" => {
            if let Some(patient) = patient_of("subject") {
                for p in items(v, "participant") {
                    if let Some(individual) = p.get("individual") {
                        let when = p.get("period").or(v.get("period"));
                        facts.extend(fact(&patient, individual, when));
                    }
                }
                if let Some(provider) = v.get("serviceProvider") {
                    facts.extend(fact(&patient, provider, v.get("period")));
                }
            }
        }
        "CareTeam" => {
            if let Some(patient) = patient_of("subject") {
                for p in items(v, "participant") {
                    if let Some(m) = p.get("member") {
                        facts.extend(fact(&patient, m, p.get("period").or(v.get("period"))));
                    }
                }
            }
        }
        "Patient" => {
            let patient = via.to_string();
            for gp in items(v, "generalPractitioner") {
                facts.extend(fact(&patient, gp, None));
            }
        }
        "EpisodeOfCare" => {
            if let Some(patient) = patient_of("patient") {
                let when = v.get("period");
                for name in ["careManager", "managingOrganization"] {
                    if let Some(actor) = v.get(name) {
                        facts.extend(fact(&patient, actor, when));
                    }
                }
                for team in items(v, "team") {
                    facts.extend(fact(&patient, team, when));
                }
            }
        }
        _ => {}
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn members(e: &Extracted) -> (bool, Vec<&str>) {
        let m = e.membership.as_ref().unwrap();
        (
            m.known,
            m.members.iter().map(|m| m.member.as_str()).collect(),
        )
    }

    #[test]
    fn care_teams() {
        let team = json!({"resourceType": "CareTeam", "status": "active",
        "subject": {"reference": "Patient/alice"},
        "participant": [
            {"member": {"reference": "Practitioner/p1"}, "period": {"start": "2020", "end": "2030-06"}},
            {"member": {"reference": "CareTeam/inner"}},
            {"role": [{"text": "no member"}]}
        ]});
        let e = extract("CareTeam", "ct1", 3, Some(&team));
        assert_eq!(
            members(&e),
            (true, vec!["Practitioner/p1", "CareTeam/inner"])
        );
        let m = &e.membership.as_ref().unwrap().members[0];
        assert_eq!(m.start.unwrap().to_rfc3339(), "2020-01-01T00:00:00+00:00");
        assert!(m
            .end
            .unwrap()
            .to_rfc3339()
            .starts_with("2030-06-30T23:59:59"));
        let care = e.care.unwrap();
        assert_eq!(care.source, "CareTeam/ct1");
        assert_eq!(care.facts.len(), 2);
        assert_eq!(care.facts[0].patient, "Patient/alice");
        let mut gone = team.clone();
        gone["status"] = json!("entered-in-error");
        assert_eq!(
            members(&extract("CareTeam", "ct1", 4, Some(&gone))),
            (true, vec![])
        );
        assert_eq!(
            members(&extract("CareTeam", "ct1", 5, None)),
            (true, vec![])
        );
        let mut by_identifier = team;
        by_identifier["participant"][0]["member"] = json!({"identifier": {"value": "x"}});
        assert_eq!(
            members(&extract("CareTeam", "ct1", 6, Some(&by_identifier))),
            (false, vec![])
        );
    }

    #[test]
    fn groups_and_roles() {
        let group = json!({"resourceType": "Group", "type": "practitioner", "actual": true,
            "member": [{"entity": {"reference": "Practitioner/p1"}},
                       {"entity": {"reference": "Practitioner/p2"}, "inactive": true}]});
        assert_eq!(
            members(&extract("Group", "g1", 1, Some(&group))),
            (true, vec!["Practitioner/p1"])
        );
        let mut descriptive = group;
        descriptive["actual"] = json!(false);
        assert_eq!(
            members(&extract("Group", "g1", 2, Some(&descriptive))),
            (false, vec![])
        );
        let role = json!({"resourceType": "PractitionerRole",
            "practitioner": {"reference": "Practitioner/p1"},
            "organization": {"reference": "Organization/h2"}});
        let e = extract("PractitionerRole", "r1", 1, Some(&role));
        assert_eq!(members(&e), (true, vec!["Practitioner/p1"]));
        assert_eq!(
            e.membership.unwrap().members[0].organization.as_deref(),
            Some("Organization/h2")
        );
        assert!(e.care.is_none());
        let mut inactive = role;
        inactive["active"] = json!(false);
        assert_eq!(
            members(&extract("PractitionerRole", "r1", 2, Some(&inactive))),
            (true, vec![])
        );
        assert_eq!(
            extract("RelatedPerson", "rp1", 1, Some(&json!({}))),
            Extracted::default()
        );
    }

    #[test]
    fn managers_of_containers() {
        let of = |t: &str, v: Value| managers(t, |name| v.get(name).cloned());
        assert_eq!(
            of(
                "PractitionerRole",
                json!({"organization": {"reference": "Organization/h2"}})
            ),
            vec!["Organization/h2"]
        );
        assert_eq!(
            of(
                "CareTeam",
                json!({"managingOrganization": [{"reference": "Organization/h1"}, {"display": "x"}]})
            ),
            vec!["Organization/h1", "?"]
        );
        assert!(of(
            "Group",
            json!({"managingEntity": {"reference": "Practitioner/p1"}})
        )
        .is_empty());
        assert!(of("CareTeam", json!({})).is_empty());
    }

    #[test]
    fn care_facts_of_encounters_patients_and_episodes() {
        let encounter = json!({"resourceType": "Encounter", "subject": {"reference": "Patient/alice"},
            "period": {"start": "2024-01-01"},
            "participant": [{"individual": {"reference": "Practitioner/p1"}}],
            "serviceProvider": {"reference": "Organization/h1"}});
        let care = extract("Encounter", "e1", 1, Some(&encounter))
            .care
            .unwrap();
        let actors: Vec<_> = care.facts.iter().map(|f| f.actor.as_str()).collect();
        assert_eq!(actors, vec!["Practitioner/p1", "Organization/h1"]);
        assert!(care
            .facts
            .iter()
            .all(|f| f.via == "Encounter/e1" && f.start.is_some()));
        let patient = json!({"resourceType": "Patient",
            "generalPractitioner": [{"reference": "Practitioner/gp"}]});
        let care = extract("Patient", "alice", 1, Some(&patient)).care.unwrap();
        assert_eq!(care.facts[0].patient, "Patient/alice");
        let episode = json!({"resourceType": "EpisodeOfCare", "patient": {"reference": "Patient/alice"},
            "careManager": {"reference": "Practitioner/cm"}, "team": [{"reference": "CareTeam/ct1"}],
            "managingOrganization": {"reference": "Organization/h1"}});
        assert_eq!(
            extract("EpisodeOfCare", "eoc", 1, Some(&episode))
                .care
                .unwrap()
                .facts
                .len(),
            3
        );
        // A Patient's ActCode labels (not another system's), once each.
        let staff = json!({"resourceType": "Patient", "meta": {"security": [
            {"system": ACT_CODE, "code": "EMP"},
            {"system": ACT_CODE, "code": "EMP"},
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
            {"system": ACT_CODE, "code": "CEL"}]}});
        let labels = extract("Patient", "bob", 3, Some(&staff)).labels.unwrap();
        assert_eq!(
            (labels.patient.as_str(), labels.version, labels.labels),
            ("Patient/bob", 3, vec!["CEL".to_string(), "EMP".to_string()])
        );
        assert!(extract("Patient", "bob", 4, None)
            .labels
            .unwrap()
            .labels
            .is_empty());
        assert!(extract("Encounter", "e1", 1, Some(&encounter))
            .labels
            .is_none());
        // A deletion withdraws every fact of the source.
        assert!(extract("Encounter", "e1", 2, None)
            .care
            .unwrap()
            .facts
            .is_empty());
    }
}
