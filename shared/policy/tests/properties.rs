//! Properties of the consent engine over generated input:
//! - `Consent::parse` never panics, whatever JSON it is given;
//! - no consent ever permits an actor it does not name, unless a permit is reachable through
//!   provisions that name no actor at all (a consent that speaks to everyone);
//! - an answer decided with facts unknown is the answer for every instance (three-valued
//!   evaluation never guesses);
//! - the replica's search scope agrees with per-patient evaluation (its actor index misses
//!   nothing).

use chrono::{DateTime, TimeZone, Utc};
use custodian_policy::{
    evaluate, Coding, Consent, ConsentAction, ConsentChange, ConsentRequest, ConsentStore,
    ConsentVerdict, KnownMembership, ParsedConsent, Provision, ProvisionType, ResourceFacts,
    ScopeRequest,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const KEYS: &[&str] = &[
    "resourceType",
    "id",
    "status",
    "scope",
    "patient",
    "provision",
    "type",
    "actor",
    "role",
    "reference",
    "identifier",
    "period",
    "start",
    "end",
    "action",
    "coding",
    "system",
    "code",
    "purpose",
    "class",
    "securityLabel",
    "dataPeriod",
    "data",
    "meaning",
    "dateTime",
    "modifierExtension",
    "extension",
    "_type",
    "display",
    "text",
];

const STRINGS: &[&str] = &[
    "Consent",
    "active",
    "inactive",
    "permit",
    "deny",
    "Patient/alice",
    "Organization/h1",
    "CareTeam/ct1",
    "Group/g1",
    "Practitioner/p1",
    "instance",
    "related",
    "dependents",
    "2026",
    "2026-02-30",
    "2026-11-23T10:00:00Z",
    "2026-11-23T10:00:00",
    "patient-privacy",
    "treatment",
    "access",
    "TREAT",
    "Observation",
    "R",
    "V",
    "",
    "é",
    "x%C3%A9",
    "http://hl7.org/fhir/resource-types",
    "http://terminology.hl7.org/CodeSystem/consentscope",
];

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|pairs| {
                let mut map = Map::new();
                for (k, v) in pairs {
                    map.insert(k.to_string(), v);
                }
                Value::Object(map)
            }),
        ]
    })
}

/// A valid-looking Consent whose parts are replaced by arbitrary JSON here and there.
fn mutated_consent() -> impl Strategy<Value = Value> {
    (
        arbitrary_json(),
        prop::sample::select(vec![
            "status",
            "scope",
            "patient",
            "provision",
            "dateTime",
            "id",
        ]),
        arbitrary_json(),
        prop::sample::select(vec![
            "type",
            "actor",
            "period",
            "class",
            "data",
            "provision",
            "securityLabel",
        ]),
    )
        .prop_map(|(top, top_key, inner, inner_key)| {
            let mut c = json!({
                "resourceType": "Consent", "status": "active",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "patient": {"reference": "Patient/alice"},
                "provision": {"actor": [{"role": {"coding": [{"code": "PRCP"}]},
                    "reference": {"reference": "Organization/h1"}}],
                    "provision": [{"type": "deny", "class": [{"code": "Observation"}]}]}
            });
            c["provision"]["provision"][0][inner_key] = inner;
            c[top_key] = top;
            c
        })
}

const ACTORS: &[&str] = &[
    "Organization/h1",
    "Organization/h2",
    "Practitioner/p1",
    "Patient/bob",
    "Device/d1",
    "CareTeam/ct1",
    "Group/g1",
    "RelatedPerson/rp1",
    "PractitionerRole/r1",
];
const PURPOSES: &[&str] = &["TREAT", "ETREAT", "HPAYMT", "HRESCH"];
const TYPES: &[&str] = &["Observation", "Condition", "Patient"];
const ACTIONS: &[&str] = &["access", "collect", "correct", "use", "disclose"];
const LABELS: &[(&str, &str)] = &[
    (
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "N",
    ),
    (
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "R",
    ),
    (
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "V",
    ),
    ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PSY"),
];
const CODES: &[&str] = &["1", "2", "3"];
const YEARS: &[&str] = &["2019", "2020", "2021", "2025", "2030"];

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(pool, 0..=2)
}

fn provision_json() -> impl Strategy<Value = Value> {
    let node = (
        prop::option::of(prop::sample::select(vec!["permit", "deny"])),
        subset(ACTORS),
        subset(PURPOSES),
        subset(TYPES),
        subset(ACTIONS),
        prop::sample::subsequence(LABELS, 0..=1),
        subset(CODES),
        prop::option::of((prop::sample::select(YEARS), prop::sample::select(YEARS))),
        prop::option::of((prop::sample::select(YEARS), prop::sample::select(YEARS))),
        prop::option::of(prop::sample::select(vec!["o1", "o2"])),
    )
        .prop_map(|(kind, actors, purposes, classes, actions, labels, codes, period, data_period, data)| {
            let mut p = Map::new();
            if let Some(k) = kind {
                p.insert("type".into(), json!(k));
            }
            let list = |items: Vec<Value>| Value::Array(items);
            if !actors.is_empty() {
                p.insert("actor".into(), list(actors.iter().map(|a| json!({"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": a}})).collect()));
            }
            if !purposes.is_empty() {
                p.insert("purpose".into(), list(purposes.iter().map(|c| json!({"code": c})).collect()));
            }
            if !classes.is_empty() {
                p.insert("class".into(), list(classes.iter().map(|c| json!({"code": c})).collect()));
            }
            if !actions.is_empty() {
                p.insert("action".into(), list(actions.iter().map(|c| json!({"coding": [{"code": c}]})).collect()));
            }
            if !labels.is_empty() {
                p.insert("securityLabel".into(), list(labels.iter().map(|(s, c)| json!({"system": s, "code": c})).collect()));
            }
            if !codes.is_empty() {
                p.insert("code".into(), list(codes.iter().map(|c| json!({"coding": [{"system": "urn:x", "code": c}]})).collect()));
            }
            if let Some((a, b)) = period {
                p.insert("period".into(), json!({"start": a.min(b), "end": a.max(b)}));
            }
            if let Some((a, b)) = data_period {
                p.insert("dataPeriod".into(), json!({"start": a.min(b), "end": a.max(b)}));
            }
            if let Some(id) = data {
                p.insert("data".into(), json!([{"meaning": "instance", "reference": {"reference": format!("Observation/{id}")}}]));
            }
            Value::Object(p)
        });
    node.prop_recursive(3, 12, 3, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..3)).prop_map(|(mut parent, children)| {
            if !children.is_empty() {
                parent["provision"] = Value::Array(children);
            }
            parent
        })
    })
}

fn consent_json(patient: &'static str) -> impl Strategy<Value = Value> {
    provision_json().prop_map(move |provision| {
        json!({"resourceType": "Consent", "id": "c", "status": "active",
               "scope": {"coding": [{"code": "patient-privacy"}]},
               "patient": {"reference": patient}, "provision": provision})
    })
}

fn year(y: i32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, 6, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[derive(Debug, Clone)]
struct Question {
    purpose: &'static str,
    resource_type: &'static str,
    action: ConsentAction,
    id: &'static str,
    labels: Vec<Coding>,
    codes: Vec<Coding>,
    data_year: i32,
    at_year: i32,
}

fn question() -> impl Strategy<Value = Question> {
    (
        prop::sample::select(PURPOSES),
        prop::sample::select(TYPES),
        prop::sample::select(ACTIONS),
        prop::sample::select(vec!["o1", "o2"]),
        prop::sample::subsequence(LABELS, 0..=2),
        subset(CODES),
        2018..2032i32,
        2018..2032i32,
    )
        .prop_map(
            |(purpose, resource_type, action, id, labels, codes, data_year, at_year)| Question {
                purpose,
                resource_type,
                action: ConsentAction::parse(action).unwrap_or(ConsentAction::Access),
                id,
                labels: labels
                    .iter()
                    .map(|(s, c)| Coding::new(Some(s), c))
                    .collect(),
                codes: codes
                    .iter()
                    .map(|c| Coding::new(Some("urn:x"), c))
                    .collect(),
                data_year,
                at_year,
            },
        )
}

impl Question {
    fn request<'a>(&'a self, actors: &'a [String], known: bool) -> ConsentRequest<'a> {
        let resource = if known {
            ResourceFacts {
                resource_type: self.resource_type,
                id: Some(self.id),
                security_labels: Some(&self.labels),
                data_time: Some((year(self.data_year), year(self.data_year))),
                codes: Some(&self.codes),
                references: Some(&[]),
                referrers: None,
            }
        } else {
            ResourceFacts::of_type(self.resource_type)
        };
        ConsentRequest {
            patient: "Patient/alice",
            actors,
            membership: &KnownMembership,
            purpose: self.purpose,
            action: self.action,
            resource,
            at: year(self.at_year),
        }
    }
}

/// Is there a provision of effective type permit whose every ancestor (and itself) names no
/// actor? Only then can a consent permit someone it never names.
fn actorless_permit(p: &Provision) -> bool {
    p.actors().is_empty()
        && (p.kind() == ProvisionType::Permit || p.provisions().iter().any(actorless_permit))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_json(json in arbitrary_json()) {
        let _ = Consent::parse(&json);
    }

    #[test]
    fn parse_never_panics_on_mutated_consents(json in mutated_consent()) {
        if let Ok(parsed) = Consent::parse(&json) {
            // Whatever parses also survives the stream.
            let wire = serde_json::to_string(&parsed).unwrap_or_default();
            prop_assert!(serde_json::from_str::<ParsedConsent>(&wire).is_ok());
        }
    }

    #[test]
    fn a_stranger_is_never_permitted(json in consent_json("Patient/alice"), q in question()) {
        let Ok(parsed) = Consent::parse(&json) else { return Ok(()) };
        let stranger = vec!["Organization/stranger".to_string(), "Practitioner/nobody".to_string()];
        prop_assert!(!parsed.names_any(&stranger));
        let speaks_to_everyone = parsed.provision().is_some_and(actorless_permit);
        for known in [true, false] {
            let verdict = parsed.evaluate(&q.request(&stranger, known));
            if !speaks_to_everyone {
                prop_assert!(!verdict.is_permit(), "{json} permitted a stranger: {verdict:?}");
            }
        }
        // A root that names actors never speaks to anyone else at all.
        if parsed.provision().is_some_and(|p| !p.actors().is_empty()) {
            prop_assert_eq!(parsed.evaluate(&q.request(&stranger, true)), ConsentVerdict::NotApplicable);
        }
    }

    #[test]
    fn a_decided_type_level_answer_holds_for_every_instance(
        consents in prop::collection::vec(consent_json("Patient/alice"), 1..3),
        q in question(),
        actors in subset(ACTORS),
    ) {
        let parsed: Vec<ParsedConsent> = consents.iter().filter_map(|c| Consent::parse(c).ok()).collect();
        let actors: Vec<String> = actors.iter().map(|a| a.to_string()).collect();
        let type_level = evaluate(&parsed, &q.request(&actors, false));
        let instance = evaluate(&parsed, &q.request(&actors, true));
        prop_assert!(!matches!(instance, ConsentVerdict::Undetermined { .. }), "all facts known: {instance:?}");
        match type_level {
            ConsentVerdict::Undetermined { .. } => {}
            decided => prop_assert_eq!(
                std::mem::discriminant(&decided), std::mem::discriminant(&instance),
                "type level {:?} but instance {:?}", decided, instance
            ),
        }
    }

    #[test]
    fn the_scope_index_agrees_with_evaluation(
        alice in consent_json("Patient/alice"),
        bob in consent_json("Patient/bob"),
        carol in consent_json("Patient/carol"),
        q in question(),
        actors in subset(ACTORS),
    ) {
        let store = ConsentStore::new();
        let mut held = Vec::new();
        for (i, json) in [alice, bob, carol].iter().enumerate() {
            if let Ok(parsed) = Consent::parse(json) {
                store.apply(ConsentChange {
                    consent: format!("Consent/{i}"),
                    patient: parsed.patient().to_string(),
                    version: 1,
                    consent_policy: Some(parsed.clone()),
                });
                held.push(parsed);
            }
        }
        let actors: Vec<String> = actors.iter().map(|a| a.to_string()).collect();
        let scope = store.scope(&ScopeRequest {
            actors: &actors, purpose: q.purpose, action: q.action,
            membership: &KnownMembership,
            resource_type: q.resource_type, at: year(q.at_year),
        });
        for patient in ["Patient/alice", "Patient/bob", "Patient/carol"] {
            let mut req = q.request(&actors, false);
            req.patient = patient;
            let expected = store.evaluate(&req);
            let listed = |list: &[String]| list.iter().any(|p| p == patient);
            match expected {
                ConsentVerdict::Permit { .. } => prop_assert!(listed(&scope.permit)),
                ConsentVerdict::Deny { .. } => prop_assert!(listed(&scope.deny)),
                ConsentVerdict::Undetermined { .. } => prop_assert!(listed(&scope.undetermined)),
                ConsentVerdict::NotApplicable => prop_assert!(
                    !listed(&scope.permit) && !listed(&scope.deny) && !listed(&scope.undetermined)
                ),
            }
        }
    }
}
