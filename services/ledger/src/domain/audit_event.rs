//! One ledger leaf as a FHIR R4 `AuditEvent`, after IHE Basic Audit Log Patterns (BALP).
//!
//! The leaf is the access event exactly as logged; this view is derived from it, never stored.
//! Codes follow BALP's RESTful patterns: `type` is `rest` with the FHIR interaction as
//! `subtype`; a login is DICOM's User Authentication / Login and a break-glass request DICOM's
//! Security Alert / Emergency Override Started. The user is the requesting agent (an
//! information recipient, with the client's address and the purpose of use), the service that
//! served the request the destination agent and the observer, the patient and the resource type
//! touched are entities, and the request id is BALP's `XrequestId` entity. The id is the event's
//! (what anomaly's `DetectedIssue.implicated` already names: `AuditEvent/<event id>`). An
//! extension names the leaf (index and hash) and where its entry and inclusion proof are
//! served, so an auditor can check the event is in the signed log.

use chrono::{DateTime, SecondsFormat, Utc};
use custodian_events::{AccessAction, AccessEvent, AccessOutcome};
use serde_json::{json, Map, Value};

/// The extension carrying the ledger leaf behind an `AuditEvent`.
pub const LEDGER_LEAF_EXTENSION: &str =
    "https://custodian.local/fhir/StructureDefinition/ledger-leaf";
/// The identifier system of users (the token's `sub`, identity's user id).
pub const USER_SYSTEM: &str = "https://custodian.local/fhir/sid/user";

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const PURPOSE_OF_USE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const BALP_ENTITY_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";

/// `AuditEvent.action` (audit-event-action): Create, Read, Update, Delete, Execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FhirAction {
    C,
    R,
    U,
    D,
    E,
}

impl FhirAction {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "C" => Some(Self::C),
            "R" => Some(Self::R),
            "U" => Some(Self::U),
            "D" => Some(Self::D),
            "E" => Some(Self::E),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::C => "C",
            Self::R => "R",
            Self::U => "U",
            Self::D => "D",
            Self::E => "E",
        }
    }

    /// BALP: reads are R; searches, operations (export), logins and overrides are E.
    pub fn of(action: AccessAction) -> Self {
        match action {
            AccessAction::Read => Self::R,
            AccessAction::Create => Self::C,
            AccessAction::Update => Self::U,
            AccessAction::Delete => Self::D,
            AccessAction::Search
            | AccessAction::Export
            | AccessAction::Login
            | AccessAction::BreakGlass => Self::E,
        }
    }

    /// The logged actions this code stands for.
    pub fn actions(self) -> Vec<AccessAction> {
        AccessAction::ALL
            .into_iter()
            .filter(|a| Self::of(*a) == self)
            .collect()
    }
}

/// `AuditEvent.outcome` (audit-event-outcome): 0 success, 4 minor failure (a client error: a
/// refusal is answered 403), 8 serious failure (the server failed), 12 major failure (never
/// logged here: the service did not survive to log it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FhirOutcome {
    Success,
    MinorFailure,
    SeriousFailure,
    MajorFailure,
}

impl FhirOutcome {
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "0" => Some(Self::Success),
            "4" => Some(Self::MinorFailure),
            "8" => Some(Self::SeriousFailure),
            "12" => Some(Self::MajorFailure),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "0",
            Self::MinorFailure => "4",
            Self::SeriousFailure => "8",
            Self::MajorFailure => "12",
        }
    }

    pub fn of(outcome: AccessOutcome) -> Self {
        match outcome {
            AccessOutcome::Permit => Self::Success,
            AccessOutcome::Deny => Self::MinorFailure,
            AccessOutcome::Error => Self::SeriousFailure,
        }
    }

    /// The logged outcomes this code stands for.
    pub fn outcomes(self) -> Vec<AccessOutcome> {
        AccessOutcome::ALL
            .into_iter()
            .filter(|o| Self::of(*o) == self)
            .collect()
    }
}

/// Where the leaf sits in the log.
#[derive(Debug, Clone, Copy)]
pub struct LeafInfo<'a> {
    pub index: u64,
    pub leaf_hash_base64: &'a str,
}

/// `(type, subtype)` codings of an action.
fn type_and_subtype(action: AccessAction) -> (Value, Value) {
    let rest = json!({"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"});
    let interaction =
        |code: &str| json!({"system": RESTFUL_INTERACTION, "code": code, "display": code});
    match action {
        AccessAction::Read => (rest, interaction("read")),
        AccessAction::Search => (rest, interaction("search-type")),
        AccessAction::Create => (rest, interaction("create")),
        AccessAction::Update => (rest, interaction("update")),
        AccessAction::Delete => (rest, interaction("delete")),
        AccessAction::Export => (rest, interaction("operation")),
        AccessAction::Login => (
            json!({"system": DCM, "code": "110114", "display": "User Authentication"}),
            json!({"system": DCM, "code": "110122", "display": "Login"}),
        ),
        AccessAction::BreakGlass => (
            json!({"system": DCM, "code": "110113", "display": "Security Alert"}),
            json!({"system": DCM, "code": "110127", "display": "Emergency Override Started"}),
        ),
    }
}

/// The service that served (and logged) the access: identity logs logins, consent its own
/// resources, records everything else.
fn observer(event: &AccessEvent) -> &'static str {
    match (event.action, event.resource_type.as_deref()) {
        (AccessAction::Login, _) => "custodian-identity",
        (_, Some("Consent")) => "custodian-consent",
        _ => "custodian-records",
    }
}

fn instant(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn outcome_desc(event: &AccessEvent) -> Option<String> {
    let decision = event.decision.as_ref()?;
    let verdict = match event.outcome {
        AccessOutcome::Permit => "permitted",
        AccessOutcome::Deny => "denied",
        AccessOutcome::Error => "failed",
    };
    let mut text = format!("{verdict} ({})", decision.basis);
    if !decision.consents.is_empty() {
        text.push_str(&format!(" by {}", decision.consents.join(", ")));
    }
    Some(text)
}

fn user_agent(event: &AccessEvent) -> Value {
    let actor = &event.actor;
    let mut who = Map::new();
    if let Some(practitioner) = &actor.practitioner {
        who.insert("reference".into(), json!(practitioner));
    }
    who.insert(
        "identifier".into(),
        json!({"system": USER_SYSTEM, "value": actor.id}),
    );
    // Where the user acts for would need a Location; the roles' text keeps it.
    let mut roles = vec![json!({"text": actor.role})];
    if let Some(org) = &actor.organization {
        roles.push(json!({"text": format!("on behalf of {org}")}));
    }
    if let Some(department) = &actor.department {
        roles.push(json!({"text": format!("department {department}")}));
    }
    let mut agent = json!({
        "type": {"coding": [{"system": PARTICIPATION_TYPE, "code": "IRCP", "display": "information recipient"}]},
        "role": roles,
        "who": who,
        "requestor": true,
    });
    // The consents that decided: the policy that authorised (or refused) the access.
    if let Some(decision) = event.decision.as_ref().filter(|d| !d.consents.is_empty()) {
        agent["policy"] = json!(decision.consents);
    }
    if let Some(ip) = event.source.ip.as_deref().filter(|ip| !ip.is_empty()) {
        // network.type 2: an IP address.
        agent["network"] = json!({"address": ip, "type": "2"});
    }
    if !event.purpose.is_empty() {
        agent["purposeOfUse"] =
            json!([{"coding": [{"system": PURPOSE_OF_USE, "code": event.purpose}]}]);
    }
    agent
}

fn server_agent(service: &str, user_agent: Option<&str>) -> Value {
    let mut agent = json!({
        "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"display": service},
        "requestor": false,
    });
    if let Some(ua) = user_agent.filter(|ua| !ua.is_empty()) {
        // The client software, as it named itself: BALP has no slot for it on the server side.
        agent["name"] = json!(format!("serving {ua}"));
    }
    agent
}

fn entities(event: &AccessEvent) -> Vec<Value> {
    let mut entities = Vec::new();
    if let Some(patient) = &event.patient {
        entities.push(json!({
            "what": {"reference": patient},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
        }));
    }
    if let Some(resource_type) = &event.resource_type {
        let mut entity = json!({
            "what": {"type": resource_type},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            "description": format!("{} {resource_type} resource(s)", event.count),
        });
        if let Some(code) = &event.confidentiality {
            entity["securityLabel"] = json!([{"system": CONFIDENTIALITY, "code": code}]);
        }
        let mut detail = vec![json!({"type": "count", "valueString": event.count.to_string()})];
        if let Some(decision) = &event.decision {
            detail.push(json!({"type": "decision-basis", "valueString": decision.basis}));
            if let Some(reason) = &decision.break_glass_reason {
                detail.push(json!({"type": "break-glass-reason", "valueString": reason}));
            }
        }
        if event.break_glass {
            detail.push(json!({"type": "break-glass", "valueString": "true"}));
        }
        entity["detail"] = json!(detail);
        entities.push(entity);
    } else if let Some(reason) = event
        .decision
        .as_ref()
        .and_then(|d| d.break_glass_reason.as_ref())
    {
        entities.push(json!({
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "detail": [{"type": "break-glass-reason", "valueString": reason}],
        }));
    }
    if let Some(account) = &event.account {
        // The account an administrative action was about (object-role 11: security user).
        entities.push(json!({
            "what": {"identifier": {"system": USER_SYSTEM, "value": account}},
            "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": OBJECT_ROLE, "code": "11", "display": "Security User Entity"},
        }));
    }
    if let Some(request_id) = event.request_id.as_deref().filter(|r| !r.is_empty()) {
        entities.push(json!({
            "what": {"identifier": {"value": request_id}},
            "type": {"system": BALP_ENTITY_TYPE, "code": "XrequestId"},
        }));
    }
    entities
}

/// The `AuditEvent` of one leaf. `base` is the public base URL (`https://host`), for the links
/// to the leaf's entry and inclusion proof.
pub fn audit_event(event: &AccessEvent, leaf: LeafInfo<'_>, base: &str) -> Value {
    let (event_type, subtype) = type_and_subtype(event.action);
    let service = observer(event);
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "id": event.id.to_string(),
        "extension": [{
            "url": LEDGER_LEAF_EXTENSION,
            "extension": [
                {"url": "index", "valueUnsignedInt": leaf.index},
                {"url": "leafHash", "valueBase64Binary": leaf.leaf_hash_base64},
                {"url": "entry", "valueUrl": format!("{base}/ledger/entries/{}", leaf.index)},
                {"url": "inclusionProof", "valueUrl": format!("{base}/ledger/proof/inclusion?index={}", leaf.index)},
            ]
        }],
        "type": event_type,
        "subtype": [subtype],
        "action": FhirAction::of(event.action).code(),
        "recorded": instant(event.time),
        "outcome": FhirOutcome::of(event.outcome).code(),
        "agent": [user_agent(event), server_agent(service, event.source.user_agent.as_deref())],
        "source": {
            "site": "Custodian",
            "observer": {"display": service},
            // security-source-type 4: an application server.
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    });
    if let Some(desc) = outcome_desc(event) {
        resource["outcomeDesc"] = json!(desc);
    }
    if !event.purpose.is_empty() {
        resource["purposeOfEvent"] =
            json!([{"coding": [{"system": PURPOSE_OF_USE, "code": event.purpose}]}]);
    }
    let entities = entities(event);
    if !entities.is_empty() {
        resource["entity"] = json!(entities);
    }
    resource
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use custodian_events::{Actor, DecisionRecord, Source};
    use uuid::Uuid;

    fn event(action: AccessAction, outcome: AccessOutcome) -> AccessEvent {
        AccessEvent {
            id: Uuid::nil(),
            time: "2026-11-30T10:11:12.345Z".parse().unwrap(),
            actor: Actor {
                id: "u1".into(),
                role: "practitioner".into(),
                organization: Some("Organization/h1".into()),
                department: Some("cardiology".into()),
                practitioner: Some("Practitioner/p1".into()),
            },
            patient: Some("Patient/alice".into()),
            action,
            resource_type: Some("Observation".into()),
            count: 2,
            purpose: "ETREAT".into(),
            outcome,
            break_glass: true,
            confidentiality: Some("R".into()),
            source: Source {
                ip: Some("10.0.0.7".into()),
                user_agent: Some("curl/8".into()),
            },
            decision: Some(DecisionRecord {
                basis: "break-glass".into(),
                consents: vec!["Consent/c1".into()],
                break_glass_reason: Some("unconscious".into()),
            }),
            request_id: Some("req-1".into()),
            account: Some("User/u9".into()),
        }
    }

    #[test]
    fn codes_map_both_ways() {
        assert_eq!(FhirAction::R.actions(), vec![AccessAction::Read]);
        assert_eq!(
            FhirAction::E.actions(),
            vec![
                AccessAction::Search,
                AccessAction::Export,
                AccessAction::Login,
                AccessAction::BreakGlass
            ]
        );
        assert_eq!(
            FhirOutcome::MinorFailure.outcomes(),
            vec![AccessOutcome::Deny]
        );
        assert!(FhirOutcome::MajorFailure.outcomes().is_empty());
        for code in ["C", "R", "U", "D", "E"] {
            assert_eq!(FhirAction::parse(code).unwrap().code(), code);
        }
        for code in ["0", "4", "8", "12"] {
            assert_eq!(FhirOutcome::parse(code).unwrap().code(), code);
        }
        assert!(FhirAction::parse("r").is_none() && FhirOutcome::parse("1").is_none());
    }

    #[test]
    fn every_action_and_outcome_is_valid_r4() {
        for action in AccessAction::ALL {
            for outcome in AccessOutcome::ALL {
                let mut e = event(action, outcome);
                let leaf = LeafInfo {
                    index: 7,
                    leaf_hash_base64: "AAAA",
                };
                let full = audit_event(&e, leaf, "https://gw");
                assert!(
                    custodian_fhir::validate_resource(&full).is_ok(),
                    "{action:?} {outcome:?}: {:?}",
                    custodian_fhir::validate_resource(&full)
                );
                // The sparest event: no patient, resource, decision, source or purpose.
                e.patient = None;
                e.resource_type = None;
                e.decision = None;
                e.source = Source::default();
                e.purpose = String::new();
                e.request_id = None;
                e.account = None;
                e.actor.practitioner = None;
                let sparse = audit_event(&e, leaf, "https://gw");
                assert!(
                    custodian_fhir::validate_resource(&sparse).is_ok(),
                    "{:?}",
                    custodian_fhir::validate_resource(&sparse)
                );
                assert!(sparse.get("entity").is_none());
            }
        }
    }

    #[test]
    fn a_read_follows_balp() {
        let e = event(AccessAction::Read, AccessOutcome::Deny);
        let r = audit_event(
            &e,
            LeafInfo {
                index: 42,
                leaf_hash_base64: "aGFzaA==",
            },
            "https://gw",
        );
        assert_eq!(r["id"], Uuid::nil().to_string());
        assert_eq!(r["type"]["code"], "rest");
        assert_eq!(r["subtype"][0]["code"], "read");
        assert_eq!(r["action"], "R");
        assert_eq!(r["outcome"], "4");
        assert_eq!(r["recorded"], "2026-11-30T10:11:12.345Z");
        assert_eq!(r["outcomeDesc"], "denied (break-glass) by Consent/c1");
        let user = &r["agent"][0];
        assert_eq!(user["requestor"], true);
        assert_eq!(user["who"]["reference"], "Practitioner/p1");
        assert_eq!(user["who"]["identifier"]["value"], "u1");
        assert_eq!(user["network"]["address"], "10.0.0.7");
        assert_eq!(user["purposeOfUse"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(user["policy"][0], "Consent/c1");
        assert_eq!(r["source"]["observer"]["display"], "custodian-records");
        assert_eq!(r["entity"][0]["what"]["reference"], "Patient/alice");
        assert_eq!(r["entity"][0]["role"]["code"], "1");
        assert_eq!(r["entity"][1]["what"]["type"], "Observation");
        assert_eq!(r["entity"][3]["type"]["code"], "XrequestId");
        let leaf = &r["extension"][0];
        assert_eq!(leaf["url"], LEDGER_LEAF_EXTENSION);
        assert_eq!(leaf["extension"][0]["valueUnsignedInt"], 42);
        assert_eq!(leaf["extension"][1]["valueBase64Binary"], "aGFzaA==");
        assert_eq!(
            leaf["extension"][3]["valueUrl"],
            "https://gw/ledger/proof/inclusion?index=42"
        );
    }

    #[test]
    fn logins_and_overrides_use_dicom_codes() {
        let login = audit_event(
            &event(AccessAction::Login, AccessOutcome::Permit),
            LeafInfo {
                index: 0,
                leaf_hash_base64: "AAAA",
            },
            "",
        );
        assert_eq!(login["type"]["code"], "110114");
        assert_eq!(login["subtype"][0]["code"], "110122");
        assert_eq!(login["action"], "E");
        assert_eq!(login["source"]["observer"]["display"], "custodian-identity");
        let glass = audit_event(
            &event(AccessAction::BreakGlass, AccessOutcome::Error),
            LeafInfo {
                index: 0,
                leaf_hash_base64: "AAAA",
            },
            "",
        );
        assert_eq!(glass["subtype"][0]["code"], "110127");
        assert_eq!(glass["outcome"], "8");
    }
}
