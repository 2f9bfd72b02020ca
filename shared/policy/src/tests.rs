//! Table-driven tests of parsing (what is refused, with which path) and of evaluation (every
//! element, the nesting semantics, unknown facts), and of the replica.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::*;

const PRCP: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

fn actor(reference: &str) -> Value {
    json!({"role": {"coding": [{"system": PRCP, "code": "PRCP"}]}, "reference": {"reference": reference}})
}

fn consent(provision: Value) -> Value {
    json!({
        "resourceType": "Consent", "id": "c1", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/alice"},
        "provision": provision
    })
}

/// Alice permits Organization/h1 to access her record for treatment, except research use of
/// her observations (the service's fixture).
fn alice_h1() -> Value {
    consent(json!({
        "type": "permit",
        "period": {"start": "2020-01-01", "end": "2099-12-31"},
        "actor": [actor("Organization/h1")],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
        "provision": [{"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}],
                       "purpose": [{"code": "HRESCH"}]}]
    }))
}

fn parse(json: &Value) -> ParsedConsent {
    match Consent::parse(json) {
        Ok(c) => c,
        Err(e) => panic!("expected the consent to parse: {e}"),
    }
}

fn refusal(json: &Value) -> Vec<ConsentIssue> {
    match Consent::parse(json) {
        Ok(c) => panic!("expected a refusal, got {c:?}"),
        Err(e) => e.into_issues(),
    }
}

fn t(raw: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t.with_timezone(&Utc),
        Err(e) => panic!("{raw}: {e}"),
    }
}

fn now() -> DateTime<Utc> {
    t("2026-11-23T10:00:00Z")
}

/// A question with every instance fact known (no labels, no codes, an id, a time).
#[derive(Clone)]
struct Ask {
    actors: Vec<String>,
    purpose: &'static str,
    action: ConsentAction,
    resource_type: &'static str,
    id: Option<&'static str>,
    labels: Option<Vec<Coding>>,
    codes: Option<Vec<Coding>>,
    data_time: Option<(DateTime<Utc>, DateTime<Utc>)>,
    references: Option<Vec<String>>,
    /// (asked, referring)
    referrers: Option<(Vec<String>, Vec<String>)>,
    at: DateTime<Utc>,
}

fn ask(actor: &str) -> Ask {
    Ask {
        actors: vec![actor.to_string()],
        purpose: "TREAT",
        action: ConsentAction::Access,
        resource_type: "Observation",
        id: Some("o1"),
        labels: Some(vec![]),
        codes: Some(vec![]),
        data_time: Some((t("2025-01-01T00:00:00Z"), t("2025-01-01T00:00:00Z"))),
        references: Some(vec![]),
        referrers: Some((vec![], vec![])),
        at: now(),
    }
}

impl Ask {
    fn purpose(mut self, p: &'static str) -> Self {
        self.purpose = p;
        self
    }
    fn action(mut self, a: ConsentAction) -> Self {
        self.action = a;
        self
    }
    fn of(mut self, rt: &'static str) -> Self {
        self.resource_type = rt;
        self
    }
    fn id(mut self, id: Option<&'static str>) -> Self {
        self.id = id;
        self
    }
    fn labels(mut self, labels: Option<&[(&str, &str)]>) -> Self {
        self.labels = labels.map(|l| l.iter().map(|(s, c)| Coding::new(Some(s), c)).collect());
        self
    }
    fn codes(mut self, codes: Option<&[(&str, &str)]>) -> Self {
        self.codes = codes.map(|l| l.iter().map(|(s, c)| Coding::new(Some(s), c)).collect());
        self
    }
    fn data_time(mut self, span: Option<(&str, &str)>) -> Self {
        self.data_time = span.map(|(a, b)| (t(a), t(b)));
        self
    }
    fn references(mut self, refs: Option<&[&str]>) -> Self {
        self.references = refs.map(|l| l.iter().map(|r| r.to_string()).collect());
        self
    }
    fn referrers(mut self, r: Option<(&[&str], &[&str])>) -> Self {
        let own = |l: &[&str]| l.iter().map(|r| r.to_string()).collect();
        self.referrers = r.map(|(asked, referring)| (own(asked), own(referring)));
        self
    }
    fn at(mut self, at: &str) -> Self {
        self.at = t(at);
        self
    }
    fn with_actor(mut self, actor: &str) -> Self {
        self.actors.push(actor.to_string());
        self
    }

    fn against(&self, consents: &[ParsedConsent]) -> ConsentVerdict {
        let req = ConsentRequest {
            patient: "Patient/alice",
            actors: &self.actors,
            membership: &KnownMembership,
            purpose: self.purpose,
            action: self.action,
            resource: ResourceFacts {
                resource_type: self.resource_type,
                id: self.id,
                security_labels: self.labels.as_deref(),
                data_time: self.data_time,
                codes: self.codes.as_deref(),
                references: self.references.as_deref(),
                referrers: self
                    .referrers
                    .as_ref()
                    .map(|(asked, referring)| Referrers { asked, referring }),
            },
            at: self.at,
        };
        evaluate(consents, &req)
    }
}

/// Short names for verdicts in tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V {
    P,
    D,
    Na,
    U,
}

fn short(v: &ConsentVerdict) -> V {
    match v {
        ConsentVerdict::Permit { .. } => V::P,
        ConsentVerdict::Deny { .. } => V::D,
        ConsentVerdict::NotApplicable => V::Na,
        ConsentVerdict::Undetermined { .. } => V::U,
    }
}

fn run(name: &str, consents: &[Value], cases: &[(&str, Ask, V)]) {
    let parsed: Vec<ParsedConsent> = consents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            c["id"] = json!(format!("c{i}"));
            parse(&c)
        })
        .collect();
    for (case, question, expected) in cases {
        let verdict = question.against(&parsed);
        assert_eq!(short(&verdict), *expected, "{name} / {case}: {verdict:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing: what is read, what is refused and where.

#[test]
fn the_fixture_parses_into_a_typed_tree() {
    let c = parse(&alice_h1());
    assert_eq!(c.reference(), Some("Consent/c1"));
    assert_eq!(c.patient(), "Patient/alice");
    assert_eq!(c.status(), ConsentStatus::Active);
    assert_eq!(c.scope(), ConsentScope::PatientPrivacy);
    let root = c.provision().unwrap();
    assert_eq!(root.kind(), ProvisionType::Permit);
    assert_eq!(root.actors()[0].reference(), "Organization/h1");
    assert_eq!(root.actors()[0].kind(), ActorKind::Organization);
    assert_eq!(root.actions(), &[ConsentAction::Access]);
    assert_eq!(root.purposes(), &["TREAT".to_string()]);
    assert_eq!(
        root.period().unwrap().start(),
        Some(t("2020-01-01T00:00:00Z"))
    );
    assert_eq!(
        root.period().unwrap().end(),
        Some(t("2099-12-31T23:59:59.999999999Z"))
    );
    let child = &root.provisions()[0];
    assert_eq!(child.kind(), ProvisionType::Deny);
    assert_eq!(child.classes(), &["Observation".to_string()]);
    assert!(c.names_any(&["Organization/h1".into()]));
    assert!(!c.names_any(&["Organization/h2".into()]));
    assert_eq!(c.named_actors(), vec!["Organization/h1"]);
}

#[test]
fn refusals_name_the_element() {
    // (case, provision, expected path, a word of the message)
    let identifier_only = json!({"role": {"coding": [{"code": "PRCP"}]},
        "reference": {"identifier": {"system": "urn:oid:1.2.3", "value": "h2"}}});
    let display_only =
        json!({"role": {"coding": [{"code": "PRCP"}]}, "reference": {"display": "Hospital Two"}});
    let table: Vec<(&str, Value, &str, &str)> = vec![
        (
            "identifier-only actor, nested",
            json!({"type": "permit", "actor": [actor("Organization/h1")],
                   "provision": [{"type": "deny", "actor": [actor("Practitioner/p1")]},
                                 {"type": "permit", "actor": [identifier_only]}]}),
            "Consent.provision.provision[1].actor[0].reference",
            "identifier",
        ),
        (
            "display-only actor",
            json!({"actor": [display_only]}),
            "Consent.provision.actor[0].reference",
            "literal",
        ),
        (
            "actor of another type",
            json!({"actor": [actor("Location/l1")]}),
            "Consent.provision.actor[0].reference",
            "Location",
        ),
        (
            "absolute actor reference",
            json!({"actor": [actor("https://other.example/fhir/Organization/h1")]}),
            "Consent.provision.actor[0].reference",
            "reference",
        ),
        (
            "versioned actor reference",
            json!({"actor": [actor("Organization/h1/_history/2")]}),
            "Consent.provision.actor[0].reference",
            "reference",
        ),
        (
            "actor without role",
            json!({"actor": [{"reference": {"reference": "Organization/h1"}}]}),
            "Consent.provision.actor[0].role",
            "required",
        ),
        (
            "author role",
            json!({"actor": [{"role": {"coding": [{"system": PRCP, "code": "AUT"}]},
            "reference": {"reference": "Practitioner/p1"}}]}),
            "Consent.provision.actor[0].role.coding[0]",
            "authorship",
        ),
        (
            "reference type disagrees",
            json!({"actor": [{"role": {"coding": [{"code": "PRCP"}]},
            "reference": {"reference": "Organization/h1", "type": "Practitioner"}}]}),
            "Consent.provision.actor[0].reference.type",
            "Organization",
        ),
        (
            "unknown element",
            json!({"type": "permit", "colour": "blue"}),
            "Consent.provision.colour",
            "not an element",
        ),
        (
            "unknown nested element",
            json!({"provision": [{"purpose": [{"code": "TREAT"}], "whenever": true}]}),
            "Consent.provision.provision[0].whenever",
            "not an element",
        ),
        (
            "modifier extension",
            json!({"modifierExtension": [{"url": "http://x", "valueBoolean": true}]}),
            "Consent.provision.modifierExtension",
            "modifier",
        ),
        (
            "unparseable date",
            json!({"period": {"end": "soon"}}),
            "Consent.provision.period.end",
            "dateTime",
        ),
        (
            "impossible date",
            json!({"period": {"start": "2026-02-30"}}),
            "Consent.provision.period.start",
            "dateTime",
        ),
        (
            "date-time without zone",
            json!({"dataPeriod": {"start": "2026-01-01T10:00:00"}}),
            "Consent.provision.dataPeriod.start",
            "dateTime",
        ),
        (
            "period backwards",
            json!({"period": {"start": "2027", "end": "2026"}}),
            "Consent.provision.period",
            "after",
        ),
        (
            "bad type",
            json!({"type": "maybe"}),
            "Consent.provision.type",
            "deny or permit",
        ),
        (
            "data authoredby",
            json!({"data": [{"meaning": "authoredby", "reference": {"reference": "Practitioner/p1"}}]}),
            "Consent.provision.data[0].meaning",
            "authorship",
        ),
        (
            "data related by identifier",
            json!({"data": [{"meaning": "related", "reference": {"identifier": {"value": "x"}}}]}),
            "Consent.provision.data[0].reference",
            "literal",
        ),
        (
            "data without literal reference",
            json!({"data": [{"meaning": "instance", "reference": {"identifier": {"value": "x"}}}]}),
            "Consent.provision.data[0].reference",
            "literal",
        ),
        (
            "data of an unknown type",
            json!({"data": [{"meaning": "instance", "reference": {"reference": "Widget/w1"}}]}),
            "Consent.provision.data[0].reference",
            "literal",
        ),
        (
            "class from another system",
            json!({"class": [{"system": "urn:ietf:bcp:13", "code": "application/hl7-cda+xml"}]}),
            "Consent.provision.class[0].system",
            "resource types",
        ),
        (
            "class that is no resource type",
            json!({"class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Widget"}]}),
            "Consent.provision.class[0].code",
            "resource type",
        ),
        (
            "class without code",
            json!({"class": [{"system": "http://hl7.org/fhir/resource-types"}]}),
            "Consent.provision.class[0].code",
            "code",
        ),
        (
            "unknown action",
            json!({"action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "sell"}]}]}),
            "Consent.provision.action[0].coding[0].code",
            "consentaction",
        ),
        (
            "action from another system only",
            json!({"action": [{"coding": [{"system": "http://x", "code": "read"}]}]}),
            "Consent.provision.action[0]",
            "consentaction",
        ),
        (
            "action as text",
            json!({"action": [{"text": "read it"}]}),
            "Consent.provision.action[0].coding",
            "text",
        ),
        (
            "unknown confidentiality",
            json!({"securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "X"}]}),
            "Consent.provision.securityLabel[0].code",
            "Confidentiality",
        ),
        (
            "purpose without code",
            json!({"purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason"}]}),
            "Consent.provision.purpose[0].code",
            "code",
        ),
        (
            "actor not a list",
            json!({"actor": actor("Organization/h1")}),
            "Consent.provision.actor",
            "array",
        ),
    ];
    for (case, provision, path, word) in table {
        let issues = refusal(&consent(provision));
        assert!(
            issues
                .iter()
                .any(|i| i.path == path && i.message.contains(word)),
            "{case}: expected {path} ({word}), got {issues:?}"
        );
    }
}

#[test]
fn consent_level_refusals() {
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut c = alice_h1();
    c["status"] = json!("maybe");
    cases.push(("unknown status", c, "Consent.status"));
    let mut c = alice_h1();
    c.as_object_mut().unwrap().remove("status");
    cases.push(("no status", c, "Consent.status"));
    let mut c = alice_h1();
    c["scope"]["coding"][0]["code"] = json!("marketing");
    cases.push(("unknown scope", c, "Consent.scope.coding[0].code"));
    let mut c = alice_h1();
    c.as_object_mut().unwrap().remove("scope");
    cases.push(("no scope", c, "Consent.scope"));
    let mut c = alice_h1();
    c.as_object_mut().unwrap().remove("patient");
    cases.push(("no patient", c, "Consent.patient"));
    let mut c = alice_h1();
    c["patient"] = json!({"reference": "Group/g1"});
    cases.push(("a group as patient", c, "Consent.patient.reference"));
    let mut c = alice_h1();
    c["patient"] = json!({"identifier": {"value": "123"}});
    cases.push(("patient by identifier", c, "Consent.patient.reference"));
    let mut c = alice_h1();
    c["dateTime"] = json!("yesterday");
    cases.push(("bad dateTime", c, "Consent.dateTime"));
    let mut c = alice_h1();
    c["period"] = json!({"start": "2026-13"});
    cases.push(("bad consent period", c, "Consent.period.start"));
    let mut c = alice_h1();
    c.as_object_mut().unwrap().remove("provision");
    cases.push(("privacy consent without provision", c, "Consent.provision"));
    let mut c = alice_h1();
    c["modifierExtension"] = json!([{"url": "http://x", "valueCode": "no"}]);
    cases.push(("modifier extension", c, "Consent.modifierExtension"));
    let mut c = alice_h1();
    c["implicitRules"] = json!("http://example.org/rules");
    cases.push(("implicit rules", c, "Consent.implicitRules"));
    let mut c = alice_h1();
    c["resourceType"] = json!("Patient");
    cases.push(("another resource type", c, "Consent.resourceType"));
    let mut c = alice_h1();
    c["id"] = json!("a b");
    cases.push(("bad id", c, "Consent.id"));
    cases.push(("not an object", json!([1, 2]), "Consent"));
    let mut deep = json!({"purpose": [{"code": "TREAT"}]});
    for _ in 0..40 {
        deep = json!({"provision": [deep]});
    }
    cases.push(("too deep", consent(deep), "Consent.provision.provision[0]"));
    for (case, json, path) in cases {
        let issues = refusal(&json);
        assert!(
            issues.iter().any(|i| i.path.starts_with(path)),
            "{case}: expected {path}, got {issues:?}"
        );
    }
}

#[test]
fn accepted_shapes() {
    let table: Vec<(&str, Value)> = vec![
        (
            "a permit naming a care team",
            json!({"actor": [actor("CareTeam/ct1")]}),
        ),
        (
            "a deny naming a care team (its members are known, or the answer is Undetermined)",
            json!({"type": "deny", "actor": [actor("CareTeam/ct1")]}),
        ),
        (
            "a deny naming a practitioner role",
            json!({"type": "deny", "actor": [actor("PractitionerRole/r1")]}),
        ),
        (
            "a nested deny naming a related person",
            json!({"actor": [actor("Organization/h1")],
            "provision": [{"actor": [actor("RelatedPerson/rp1")]}]}),
        ),
        (
            "a permit under a deny naming a group",
            json!({"type": "deny",
            "provision": [{"type": "permit", "actor": [actor("Group/g1")]}]}),
        ),
        (
            "a permit naming a group above a deny of an organisation",
            json!({"actor": [actor("Group/g1")],
            "provision": [{"type": "deny", "actor": [actor("Organization/h2")]}]}),
        ),
        (
            "a deny naming an organisation, a practitioner, a patient and a device",
            json!({"type": "deny",
            "actor": [actor("Organization/h2"), actor("Practitioner/p2"), actor("Patient/bob"), actor("Device/d1")]}),
        ),
        (
            "partial dates and zoned date-times",
            json!({"period": {"start": "2016", "end": "2016-06-23T17:32:33+10:00"},
            "dataPeriod": {"start": "2010-03", "end": "2020-12-31"}}),
        ),
        (
            "a data instance",
            json!({"data": [{"meaning": "instance", "reference": {"reference": "Observation/o1"}}]}),
        ),
        (
            "classes without system",
            json!({"class": [{"code": "Observation"}, {"code": "Condition"}]}),
        ),
        (
            "codes and labels",
            json!({"code": [{"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}],
            "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"},
                              {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}),
        ),
        (
            "extensions and primitive extensions",
            json!({"extension": [{"url": "http://x", "valueString": "y"}],
            "_type": {"extension": [{"url": "http://x", "valueString": "y"}]}, "type": "permit"}),
        ),
        (
            "an action with a translation",
            json!({"action": [{"coding": [{"system": "http://other", "code": "read"},
            {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}]}),
        ),
    ];
    for (case, provision) in table {
        assert!(
            Consent::parse(&consent(provision.clone())).is_ok(),
            "{case}: {:?}",
            Consent::parse(&consent(provision))
        );
    }
    // Treatment and advance-directive consents need no provision.
    let mut c = alice_h1();
    c["scope"]["coding"][0]["code"] = json!("treatment");
    c.as_object_mut().unwrap().remove("provision");
    assert!(Consent::parse(&c).is_ok());
}

#[test]
fn every_issue_is_reported_at_once() {
    let issues = refusal(&consent(json!({"type": "permit", "colour": "blue",
        "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"display": "x"}}],
        "period": {"end": "soon"}})));
    let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    for expected in [
        "Consent.provision.colour",
        "Consent.provision.actor[0].reference",
        "Consent.provision.period.end",
    ] {
        assert!(paths.contains(&expected), "{paths:?}");
    }
}

#[test]
fn a_deserialised_consent_is_checked_again() {
    let c = parse(&alice_h1());
    let json = serde_json::to_value(&c).unwrap();
    let back: ParsedConsent = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, c);
    // Tamper: the nested deny now names an actor whose reference is not of its kind, which
    // the parser would have refused.
    let mut tampered = json;
    tampered["provision"]["provisions"][0]["actors"] =
        json!([{"reference": "CareTeam/ct1", "kind": "Group", "role": []}]);
    assert!(serde_json::from_value::<ParsedConsent>(tampered).is_err());
}

// ---------------------------------------------------------------------------------------------
// Evaluation, element by element.

#[test]
fn the_fixture_decides_as_written() {
    run(
        "alice-h1",
        &[alice_h1()],
        &[
            ("h1 treats", ask("Organization/h1"), V::P),
            (
                "h1 treats a condition",
                ask("Organization/h1").of("Condition"),
                V::P,
            ),
            ("h2 is not named", ask("Organization/h2"), V::Na),
            (
                "h1 for payment",
                ask("Organization/h1").purpose("HPAYMT"),
                V::Na,
            ),
            (
                "h1 corrects",
                ask("Organization/h1").action(ConsentAction::Correct),
                V::Na,
            ),
            (
                "h1 researches observations",
                ask("Organization/h1").purpose("HRESCH"),
                V::Na,
            ),
            (
                "after the period",
                ask("Organization/h1").at("2100-01-01T00:00:00Z"),
                V::Na,
            ),
            (
                "on the period's last day",
                ask("Organization/h1").at("2099-12-31T23:00:00Z"),
                V::P,
            ),
            (
                "before the period",
                ask("Organization/h1").at("2019-12-31T23:59:59Z"),
                V::Na,
            ),
        ],
    );
}

#[test]
fn nested_provisions_narrow_their_parent() {
    // The nested permit names h2; the parent names only h1: h2 is never admitted.
    let widen = consent(
        json!({"type": "permit", "actor": [actor("Organization/h1")],
        "provision": [{"type": "permit", "actor": [actor("Organization/h2")]}]}),
    );
    // Research on observations is denied; but for h1's own practitioner p1, permitted again.
    let layered = consent(
        json!({"type": "permit", "actor": [actor("Organization/h1")],
        "provision": [{"type": "deny", "class": [{"code": "Observation"}],
            "provision": [{"type": "permit", "actor": [actor("Practitioner/p1")]}]}]}),
    );
    // Siblings: one permits p1, one denies Observations; deny wins at the same depth.
    let siblings = consent(json!({"type": "deny",
        "provision": [{"type": "permit", "actor": [actor("Organization/h1")]},
                      {"type": "deny", "class": [{"code": "Observation"}]}]}));
    // A nested provision without type is the opposite of its parent.
    let untyped = consent(json!({"actor": [actor("Organization/h1")],
        "provision": [{"class": [{"code": "Observation"}], "provision": [{"purpose": [{"code": "TREAT"}]}]}]}));
    run(
        "nesting",
        &[widen],
        &[
            ("the parent's actor", ask("Organization/h1"), V::P),
            (
                "the nested permit cannot admit h2",
                ask("Organization/h2"),
                V::Na,
            ),
            (
                "h2 together with h1 is h1",
                ask("Organization/h2").with_actor("Organization/h1"),
                V::P,
            ),
        ],
    );
    run(
        "deeper wins",
        &[layered],
        &[
            (
                "h1 reads a condition: root permit",
                ask("Organization/h1").of("Condition"),
                V::P,
            ),
            (
                "h1 reads an observation: the child denies",
                ask("Organization/h1"),
                V::D,
            ),
            (
                "p1 of h1 reads an observation: the grandchild permits",
                ask("Organization/h1").with_actor("Practitioner/p1"),
                V::P,
            ),
            (
                "p1 alone: the root does not apply",
                ask("Practitioner/p1"),
                V::Na,
            ),
        ],
    );
    run(
        "deny wins among siblings",
        &[siblings],
        &[
            (
                "h1 reads a condition: the permit sibling",
                ask("Organization/h1").of("Condition"),
                V::P,
            ),
            (
                "h1 reads an observation: both apply, deny wins",
                ask("Organization/h1"),
                V::D,
            ),
            (
                "h2: only the deny root",
                ask("Organization/h2").of("Condition"),
                V::D,
            ),
        ],
    );
    run(
        "untyped",
        &[untyped],
        &[
            (
                "conditions: permit root",
                ask("Organization/h1").of("Condition"),
                V::P,
            ),
            (
                "observations for payment: the untyped child denies",
                ask("Organization/h1").purpose("HPAYMT"),
                V::D,
            ),
            (
                "observations for treatment: the untyped grandchild permits",
                ask("Organization/h1"),
                V::P,
            ),
        ],
    );
}

#[test]
fn several_consents_deny_wins_then_permit() {
    let permit_h1 = consent(json!({"type": "permit", "actor": [actor("Organization/h1")]}));
    let deny_h1_research = consent(
        json!({"type": "deny", "actor": [actor("Organization/h1")], "purpose": [{"code": "HRESCH"}]}),
    );
    let mut inactive = consent(json!({"type": "deny", "actor": [actor("Organization/h1")]}));
    inactive["status"] = json!("inactive");
    run(
        "several",
        &[permit_h1, deny_h1_research, inactive],
        &[
            ("treatment: permit", ask("Organization/h1"), V::P),
            (
                "research: the deny wins",
                ask("Organization/h1").purpose("HRESCH"),
                V::D,
            ),
            ("h2: nothing", ask("Organization/h2"), V::Na),
        ],
    );
}

#[test]
fn statuses_other_than_active_and_non_access_scopes_yield_nothing() {
    for status in [
        "draft",
        "proposed",
        "rejected",
        "inactive",
        "entered-in-error",
    ] {
        let mut c = consent(json!({"actor": [actor("Organization/h1")]}));
        c["status"] = json!(status);
        run(status, &[c], &[("h1", ask("Organization/h1"), V::Na)]);
    }
    for scope in ["treatment", "adr"] {
        let mut c = consent(json!({"type": "deny"}));
        c["scope"]["coding"][0]["code"] = json!(scope);
        run(scope, &[c], &[("anyone", ask("Organization/h1"), V::Na)]);
    }
    let mut research =
        consent(json!({"actor": [actor("Organization/h1")], "purpose": [{"code": "HRESCH"}]}));
    research["scope"]["coding"][0]["code"] = json!("research");
    run(
        "research",
        &[research],
        &[("research", ask("Organization/h1").purpose("HRESCH"), V::P)],
    );
}

#[test]
fn actions_purposes_classes_and_periods() {
    let c = consent(json!({"actor": [actor("Organization/h1")],
        "action": [{"coding": [{"code": "access"}]}, {"coding": [{"code": "collect"}]}],
        "purpose": [{"code": "TREAT"}, {"code": "ETREAT"}],
        "class": [{"code": "Observation"}, {"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}],
        "period": {"start": "2026-11-23T09:00:00+01:00", "end": "2026-11-23T11:00:00Z"}}));
    run(
        "elements",
        &[c],
        &[
            ("all match", ask("Organization/h1"), V::P),
            (
                "collect",
                ask("Organization/h1").action(ConsentAction::Collect),
                V::P,
            ),
            (
                "disclose",
                ask("Organization/h1").action(ConsentAction::Disclose),
                V::Na,
            ),
            (
                "use",
                ask("Organization/h1").action(ConsentAction::Use),
                V::Na,
            ),
            ("emergency", ask("Organization/h1").purpose("ETREAT"), V::P),
            (
                "operations",
                ask("Organization/h1").purpose("HOPERAT"),
                V::Na,
            ),
            ("condition", ask("Organization/h1").of("Condition"), V::P),
            (
                "medication",
                ask("Organization/h1").of("MedicationRequest"),
                V::Na,
            ),
            (
                "start is 08:00Z",
                ask("Organization/h1").at("2026-11-23T08:00:00Z"),
                V::P,
            ),
            (
                "before start",
                ask("Organization/h1").at("2026-11-23T07:59:59Z"),
                V::Na,
            ),
            (
                "within the end second",
                ask("Organization/h1").at("2026-11-23T11:00:00.5Z"),
                V::P,
            ),
            (
                "after end",
                ask("Organization/h1").at("2026-11-23T11:00:01Z"),
                V::Na,
            ),
        ],
    );
}

#[test]
fn security_labels() {
    const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    // Permit h1 normal data, but never psychiatric notes or very restricted data.
    let c = consent(json!({"actor": [actor("Organization/h1")],
        "securityLabel": [{"system": CONF, "code": "N"}],
        "provision": [{"securityLabel": [{"system": ACT, "code": "PSY"}]},
                      {"securityLabel": [{"system": CONF, "code": "V"}]}]}));
    let h1 = || ask("Organization/h1");
    run(
        "labels",
        &[c],
        &[
            ("unlabelled data is N", h1(), V::P),
            ("L is below N", h1().labels(Some(&[(CONF, "L")])), V::P),
            (
                "R is above the permit",
                h1().labels(Some(&[(CONF, "R")])),
                V::Na,
            ),
            (
                "PSY at N: the nested deny",
                h1().labels(Some(&[(CONF, "N"), (ACT, "PSY")])),
                V::D,
            ),
            ("HIV is not PSY", h1().labels(Some(&[(ACT, "HIV")])), V::P),
            ("labels unknown: it depends", h1().labels(None), V::U),
        ],
    );
    // A deny of R covers V too; a label without a system is read by its code.
    let deny_r = consent(json!({"actor": [actor("Organization/h1")],
        "provision": [{"type": "deny", "securityLabel": [{"system": CONF, "code": "R"}]}]}));
    run(
        "deny R",
        &[deny_r],
        &[
            ("N", h1().labels(Some(&[(CONF, "N")])), V::P),
            ("R", h1().labels(Some(&[(CONF, "R")])), V::D),
            ("V", h1().labels(Some(&[(CONF, "V")])), V::D),
            ("unknown", h1().labels(None), V::U),
        ],
    );
    let parsed = parse(&consent(json!({"actor": [actor("Organization/h1")],
        "provision": [{"type": "deny", "securityLabel": [{"system": CONF, "code": "R"}]}]})));
    let no_system = [Coding::new(None, "V")];
    let req = ConsentRequest {
        patient: "Patient/alice",
        actors: &["Organization/h1".to_string()],
        membership: &KnownMembership,
        purpose: "TREAT",
        action: ConsentAction::Access,
        resource: ResourceFacts {
            security_labels: Some(&no_system),
            ..ResourceFacts::of_type("Observation")
        },
        at: now(),
    };
    assert!(parsed.evaluate(&req).is_deny());
}

#[test]
fn codes_data_periods_and_instances() {
    const LOINC: &str = "http://loinc.org";
    let c = consent(json!({"actor": [actor("Organization/h1")],
    "provision": [
        {"type": "deny", "code": [{"coding": [{"system": LOINC, "code": "29463-7"}]}]},
        {"type": "deny", "dataPeriod": {"start": "2020-01-01", "end": "2020-12-31"}},
        {"type": "deny", "data": [{"meaning": "instance", "reference": {"reference": "Observation/secret"}}]}
    ]}));
    let h1 = || ask("Organization/h1");
    run(
        "instance facts",
        &[c],
        &[
            ("nothing special", h1(), V::P),
            (
                "the denied code",
                h1().codes(Some(&[(LOINC, "29463-7")])),
                V::D,
            ),
            ("another code", h1().codes(Some(&[(LOINC, "8867-4")])), V::P),
            (
                "same code, other system",
                h1().codes(Some(&[("http://snomed.info/sct", "29463-7")])),
                V::P,
            ),
            ("codes unknown", h1().codes(None), V::U),
            (
                "data inside the denied period",
                h1().data_time(Some(("2020-06-01T00:00:00Z", "2020-06-01T00:00:00Z"))),
                V::D,
            ),
            (
                "data touching the denied period",
                h1().data_time(Some(("2019-12-01T00:00:00Z", "2020-01-02T00:00:00Z"))),
                V::D,
            ),
            (
                "data after it",
                h1().data_time(Some(("2021-01-01T00:00:00Z", "2021-01-01T00:00:00Z"))),
                V::P,
            ),
            ("time unknown", h1().data_time(None), V::U),
            ("the denied instance", h1().id(Some("secret")), V::D),
            ("another instance", h1().id(Some("o2")), V::P),
            ("id unknown", h1().id(None), V::U),
            (
                "id unknown, another type: the instance cannot be it",
                h1().of("Condition").id(None),
                V::P,
            ),
        ],
    );
    // A permit's data period covers only data wholly inside it.
    let permit_period = consent(
        json!({"actor": [actor("Organization/h1")], "dataPeriod": {"start": "2020", "end": "2020"}}),
    );
    run(
        "permit data period",
        &[permit_period],
        &[
            (
                "inside",
                h1().data_time(Some(("2020-03-01T00:00:00Z", "2020-04-01T00:00:00Z"))),
                V::P,
            ),
            (
                "straddling",
                h1().data_time(Some(("2019-12-01T00:00:00Z", "2020-04-01T00:00:00Z"))),
                V::Na,
            ),
            ("unknown", h1().data_time(None), V::U),
        ],
    );
    // A permit for one instance only.
    let one = consent(json!({"actor": [actor("Organization/h1")],
        "data": [{"meaning": "instance", "reference": {"reference": "Observation/o1"}}]}));
    run(
        "permit one instance",
        &[one],
        &[
            ("that one", h1(), V::P),
            ("another", h1().id(Some("o2")), V::Na),
            ("unknown", h1().id(None), V::U),
        ],
    );
}

#[test]
fn dependents_and_related_follow_one_reference() {
    // A permit of Encounter/e1 and what refers to it; of DiagnosticReport/d1 and what it
    // refers to.
    let dependents = consent(json!({"actor": [actor("Organization/h1")],
        "data": [{"meaning": "dependents", "reference": {"reference": "Encounter/e1"}}]}));
    let parsed = Consent::parse(&dependents).unwrap();
    assert_eq!(parsed.provision().unwrap().dependents(), ["Encounter/e1"]);
    assert!(parsed.related_data().is_empty());
    let h1 = || ask("Organization/h1");
    run(
        "dependents",
        &[dependents],
        &[
            (
                "the encounter itself",
                h1().of("Encounter").id(Some("e1")),
                V::P,
            ),
            (
                "the encounter itself, references unknown",
                h1().of("Encounter").id(Some("e1")).references(None),
                V::P,
            ),
            (
                "another encounter",
                h1().of("Encounter").id(Some("e2")),
                V::Na,
            ),
            (
                "an observation referring to it",
                h1().references(Some(&["Patient/alice", "Encounter/e1"])),
                V::P,
            ),
            (
                "an observation referring elsewhere",
                h1().references(Some(&["Encounter/e2"])),
                V::Na,
            ),
            ("references unknown", h1().references(None), V::U),
            (
                "referrers do not matter",
                h1().referrers(Some((&["Encounter/e1"], &["Encounter/e1"]))),
                V::Na,
            ),
        ],
    );
    let related = consent(json!({"actor": [actor("Organization/h1")],
        "provision": [{"type": "deny",
            "data": [{"meaning": "related", "reference": {"reference": "DiagnosticReport/d1"}}]}]}));
    let parsed = Consent::parse(&related).unwrap();
    assert_eq!(parsed.related_data(), ["DiagnosticReport/d1"]);
    let d1: &[&str] = &["DiagnosticReport/d1"];
    run(
        "related",
        &[related],
        &[
            (
                "the report itself",
                h1().of("DiagnosticReport").id(Some("d1")).referrers(None),
                V::D,
            ),
            (
                "in the report's result",
                h1().referrers(Some((d1, d1))),
                V::D,
            ),
            ("not in it", h1().referrers(Some((d1, &[]))), V::P),
            ("referrers unknown", h1().referrers(None), V::U),
            (
                "the report was not asked about: unknown, never a guess",
                h1().referrers(Some((&["DiagnosticReport/d2"], &[]))),
                V::U,
            ),
            (
                "it refers to the report: not related",
                h1().references(Some(d1)).referrers(Some((d1, &[]))),
                V::P,
            ),
        ],
    );
}

#[test]
fn unknown_facts_that_cannot_change_the_answer_do_not_matter() {
    const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    // The deny of V is for research only; a treatment question is decided even without labels.
    let c = consent(json!({"actor": [actor("Organization/h1")],
        "provision": [{"type": "deny", "purpose": [{"code": "HRESCH"}], "securityLabel": [{"system": CONF, "code": "V"}]}]}));
    run(
        "irrelevant unknowns",
        std::slice::from_ref(&c),
        &[
            (
                "treatment, labels unknown",
                ask("Organization/h1").labels(None),
                V::P,
            ),
            (
                "research, labels unknown",
                ask("Organization/h1").labels(None).purpose("HRESCH"),
                V::U,
            ),
        ],
    );
    // Another consent's certain deny decides even when this one is undetermined.
    let deny_all_h1 = consent(json!({"type": "deny", "actor": [actor("Organization/h1")]}));
    run(
        "a certain deny",
        &[c, deny_all_h1],
        &[(
            "research, labels unknown",
            ask("Organization/h1").labels(None).purpose("HRESCH"),
            V::D,
        )],
    );
}

#[test]
fn verdicts_name_the_deciding_consents() {
    let permit = parse(
        &consent(json!({"actor": [actor("Organization/h1")]}))
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.insert("id".into(), json!("p"));
                Value::Object(o)
            })
            .unwrap(),
    );
    let deny = parse(&{
        let mut c = consent(
            json!({"type": "deny", "actor": [actor("Organization/h1")], "purpose": [{"code": "HMARKT"}]}),
        );
        c["id"] = json!("d");
        c
    });
    let actors = ["Organization/h1".to_string()];
    let mut req = ConsentRequest {
        patient: "Patient/alice",
        actors: &actors,
        membership: &KnownMembership,
        purpose: "TREAT",
        action: ConsentAction::Access,
        resource: ResourceFacts::of_type("Observation"),
        at: now(),
    };
    assert_eq!(
        evaluate([&permit, &deny], &req),
        ConsentVerdict::Permit {
            consents: vec!["Consent/p".into()]
        }
    );
    req.purpose = "HMARKT";
    assert_eq!(
        evaluate([&permit, &deny], &req),
        ConsentVerdict::Deny {
            consents: vec!["Consent/d".into()]
        }
    );
    // Another patient's consent says nothing about Alice.
    req.patient = "Patient/bob";
    assert_eq!(
        evaluate([&permit, &deny], &req),
        ConsentVerdict::NotApplicable
    );
}

// ---------------------------------------------------------------------------------------------
// The replica.

fn change(consent: &str, patient: &str, version: i64, policy: Option<Value>) -> ConsentChange {
    ConsentChange {
        consent: consent.into(),
        patient: patient.into(),
        version,
        consent_policy: policy.map(|mut json| {
            json["patient"] = json!({"reference": patient});
            parse(&json)
        }),
    }
}

fn store_request<'a>(
    patient: &'a str,
    actors: &'a [String],
    purpose: &'a str,
) -> ConsentRequest<'a> {
    ConsentRequest {
        patient,
        actors,
        membership: &KnownMembership,
        purpose,
        action: ConsentAction::Access,
        resource: ResourceFacts::of_type("Observation"),
        at: now(),
    }
}

#[test]
fn newer_versions_win_and_stale_ones_are_ignored() {
    let store = ConsentStore::new();
    let h1 = vec!["Organization/h1".to_string()];
    let req = store_request("Patient/alice", &h1, "TREAT");
    let permit = consent(json!({"actor": [actor("Organization/h1")]}));
    assert!(store.apply(change(
        "Consent/c1",
        "Patient/alice",
        1,
        Some(permit.clone())
    )));
    assert!(store.evaluate(&req).is_permit());
    assert_eq!(store.len(), 1);
    assert!(store.apply(change("Consent/c1", "Patient/alice", 2, None)));
    assert_eq!(store.evaluate(&req), ConsentVerdict::NotApplicable);
    assert!(!store.apply(change("Consent/c1", "Patient/alice", 1, Some(permit))));
    assert_eq!(
        store.evaluate(&req),
        ConsentVerdict::NotApplicable,
        "a stale change must not resurrect a revoked consent"
    );
    assert_eq!(store.len(), 0);
    assert!(store.is_empty());
}

#[test]
fn the_replica_keys_consents_by_the_change_and_holds_only_those_in_force() {
    let store = ConsentStore::new();
    let mut inactive = consent(json!({"actor": [actor("Organization/h1")]}));
    inactive["status"] = json!("inactive");
    store.apply(change("Consent/a", "Patient/alice", 1, Some(inactive)));
    assert!(store.consents_of("Patient/alice").is_empty());
    store.apply(change(
        "Consent/b",
        "Patient/alice",
        1,
        Some(consent(json!({"actor": [actor("Organization/h1")]}))),
    ));
    let held = store.consents_of("Patient/alice");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].reference(), Some("Consent/b"));
    let h1 = vec!["Organization/h1".to_string()];
    assert_eq!(
        store.evaluate(&store_request("Patient/alice", &h1, "TREAT")),
        ConsentVerdict::Permit {
            consents: vec!["Consent/b".into()]
        }
    );
    // An update replaces, never duplicates.
    store.apply(change(
        "Consent/b",
        "Patient/alice",
        2,
        Some(consent(
            json!({"type": "deny", "actor": [actor("Organization/h1")]}),
        )),
    ));
    assert_eq!(store.len(), 1);
    assert!(store
        .evaluate(&store_request("Patient/alice", &h1, "TREAT"))
        .is_deny());
}

#[test]
fn a_deny_all_placeholder_fails_closed() {
    let store = ConsentStore::new();
    store.apply(change(
        "Consent/p",
        "Patient/alice",
        1,
        Some(consent(json!({"actor": [actor("Organization/h1")]}))),
    ));
    store.apply(ConsentChange {
        consent: "Consent/broken".into(),
        patient: "Patient/alice".into(),
        version: 1,
        consent_policy: Some(ParsedConsent::deny_all("Consent/broken", "Patient/alice")),
    });
    let h1 = vec!["Organization/h1".to_string()];
    assert!(store
        .evaluate(&store_request("Patient/alice", &h1, "TREAT"))
        .is_deny());
}

#[test]
fn scope_lists_patients_by_verdict_from_the_actor_index() {
    const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    let store = ConsentStore::new();
    // alice permits h1; bob denies h1; carol permits everyone but h1's V data (undetermined at
    // type level); dave permits h2 only; erin permits everyone for treatment except h1 (named
    // only below the root); fay's consent is revoked.
    store.apply(change(
        "Consent/a",
        "Patient/alice",
        1,
        Some(consent(json!({"actor": [actor("Organization/h1")]}))),
    ));
    store.apply(change(
        "Consent/b",
        "Patient/bob",
        1,
        Some(consent(
            json!({"type": "deny", "actor": [actor("Organization/h1")]}),
        )),
    ));
    store.apply(change("Consent/c", "Patient/carol", 1, Some(consent(json!({
        "provision": [{"type": "deny", "actor": [actor("Organization/h1")], "securityLabel": [{"system": CONF, "code": "V"}]}]})))));
    store.apply(change(
        "Consent/d",
        "Patient/dave",
        1,
        Some(consent(json!({"actor": [actor("Organization/h2")]}))),
    ));
    store.apply(change(
        "Consent/e",
        "Patient/erin",
        1,
        Some(consent(json!({"purpose": [{"code": "TREAT"}],
        "provision": [{"actor": [actor("Organization/h1")]}]}))),
    ));
    store.apply(change(
        "Consent/f",
        "Patient/fay",
        1,
        Some(consent(json!({"actor": [actor("Organization/h1")]}))),
    ));
    store.apply(change("Consent/f", "Patient/fay", 2, None));
    let h1 = vec!["Organization/h1".to_string(), "Practitioner/p1".to_string()];
    let scope = store.scope(&ScopeRequest {
        actors: &h1,
        membership: &KnownMembership,
        purpose: "TREAT",
        action: ConsentAction::Access,
        resource_type: "Observation",
        at: now(),
    });
    assert_eq!(scope.permit, vec!["Patient/alice"]);
    assert_eq!(scope.deny, vec!["Patient/bob", "Patient/erin"]);
    assert_eq!(scope.undetermined, vec!["Patient/carol"]);
    let h3 = vec!["Organization/h3".to_string()];
    let stranger = store.scope(&ScopeRequest {
        actors: &h3,
        membership: &KnownMembership,
        purpose: "TREAT",
        action: ConsentAction::Access,
        resource_type: "Observation",
        at: now(),
    });
    assert_eq!(stranger.permit, vec!["Patient/carol", "Patient/erin"]);
    assert!(stranger.deny.is_empty() && stranger.undetermined.is_empty());
}

#[test]
fn a_consent_change_round_trips_through_json() {
    let c = change("Consent/c1", "Patient/alice", 3, Some(alice_h1()));
    let json = serde_json::to_string(&c).unwrap();
    let back: ConsentChange = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    let revoked = change("Consent/c1", "Patient/alice", 4, None);
    let back: ConsentChange =
        serde_json::from_str(&serde_json::to_string(&revoked).unwrap()).unwrap();
    assert_eq!(back.consent_policy, None);
}

// ---------------------------------------------------------------------------------------------
// Actors named by membership.

/// A request by `actors` (the caller and the containers it is known to be in), with what is
/// known of other memberships.
fn member_request<'a>(actors: &'a [String], membership: &'a dyn Membership) -> ConsentRequest<'a> {
    ConsentRequest {
        membership,
        ..store_request("Patient/alice", actors, "TREAT")
    }
}

#[test]
fn a_deny_naming_a_container_applies_to_its_members_and_fails_closed_when_unknown() {
    let deny = parse(&consent(
        json!({"type": "deny", "actor": [actor("CareTeam/ct1")]}),
    ));
    let member = vec!["Practitioner/p1".to_string(), "CareTeam/ct1".to_string()];
    let other = vec!["Practitioner/p2".to_string()];
    assert!(deny
        .evaluate(&member_request(&member, &KnownMembership))
        .is_deny());
    assert_eq!(
        deny.evaluate(&member_request(&other, &KnownMembership)),
        ConsentVerdict::NotApplicable,
        "known membership without the caller: the deny does not apply"
    );
    assert_eq!(
        deny.evaluate(&member_request(&other, &UnknownMembership)),
        ConsentVerdict::Undetermined {
            consents: vec!["Consent/c1".into()]
        },
        "unknown membership: it might apply"
    );
    // Known to be a member: decided, whatever else is unknown.
    assert!(deny
        .evaluate(&member_request(&member, &UnknownMembership))
        .is_deny());
}

#[test]
fn a_permit_naming_an_unknown_container_admits_no_one() {
    let permit = parse(&consent(json!({"actor": [actor("Group/g1")]})));
    let member = vec!["Practitioner/p1".to_string(), "Group/g1".to_string()];
    let other = vec!["Practitioner/p2".to_string()];
    assert!(permit
        .evaluate(&member_request(&member, &KnownMembership))
        .is_permit());
    assert_eq!(
        permit.evaluate(&member_request(&other, &KnownMembership)),
        ConsentVerdict::NotApplicable
    );
    let unknown = permit.evaluate(&member_request(&other, &UnknownMembership));
    assert!(matches!(unknown, ConsentVerdict::Undetermined { .. }));
    // It cannot deny, though: a store tells the caller so (the custodian rule still applies).
    let store = ConsentStore::new();
    store.apply(change(
        "Consent/c1",
        "Patient/alice",
        1,
        Some(consent(json!({"actor": [actor("Group/g1")]}))),
    ));
    assert!(!store.may_deny(&member_request(&other, &UnknownMembership)));
    store.apply(change(
        "Consent/c1",
        "Patient/alice",
        2,
        Some(consent(
            json!({"type": "deny", "actor": [actor("Group/g1")]}),
        )),
    ));
    assert!(store.may_deny(&member_request(&other, &UnknownMembership)));
}

#[test]
fn related_persons_devices_and_patients_are_never_uncertain() {
    for reference in [
        "RelatedPerson/rp1",
        "Device/d1",
        "Patient/bob",
        "Organization/h1",
    ] {
        assert!(!UnknownMembership.uncertain(reference), "{reference}");
    }
    for reference in ["CareTeam/ct1", "Group/g1", "PractitionerRole/r1"] {
        assert!(UnknownMembership.uncertain(reference), "{reference}");
    }
}

#[test]
fn scopes_find_consents_naming_containers_the_caller_might_be_in() {
    let store = ConsentStore::new();
    store.apply(change(
        "Consent/d",
        "Patient/bob",
        1,
        Some(consent(
            json!({"type": "deny", "actor": [actor("CareTeam/ct9")]}),
        )),
    ));
    let h1 = vec!["Organization/h1".to_string()];
    let ask = |membership: &dyn Membership| {
        store.scope(&ScopeRequest {
            actors: &h1,
            membership,
            purpose: "TREAT",
            action: ConsentAction::Access,
            resource_type: "Observation",
            at: now(),
        })
    };
    assert_eq!(ask(&KnownMembership), PatientVerdicts::default());
    assert_eq!(ask(&UnknownMembership).undetermined, vec!["Patient/bob"]);
    let in_team = vec!["Organization/h1".to_string(), "CareTeam/ct9".to_string()];
    let scope = store.scope(&ScopeRequest {
        actors: &in_team,
        membership: &KnownMembership,
        purpose: "TREAT",
        action: ConsentAction::Access,
        resource_type: "Observation",
        at: now(),
    });
    assert_eq!(scope.deny, vec!["Patient/bob"]);
}
