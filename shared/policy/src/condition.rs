//! Partial evaluation: what a patient's consents answer for a request whose instance facts are
//! not known yet (a search), as formulas over those facts.
//!
//! [`partial`] runs the same rules as [`crate::evaluate`], but where evaluation would look at
//! the resource's id, codes, security labels, data time or references it builds a
//! [`Condition`] instead. The result, [`Conditional`], holds one formula per verdict: for any
//! resource of the asked type whose id, codes, labels, references and referrers are known
//! (referrers asked about every resource the consents name under `related`; its data time may
//! be absent), evaluating the
//! request with that resource's facts answers Permit exactly when `permit` holds, Deny exactly
//! when `deny` holds, NotApplicable exactly when `not_applicable` holds, and Undetermined
//! otherwise (a data period over data with no data time, an actor membership not known). A
//! store compiles the formulas into its query (records: SQL), so searches return exactly what
//! reads by id would. The one exception is on the safe side: formulas beyond
//! [`MAX_CONDITION_SIZE`] are given up, and the answer is Undetermined for every resource.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    eval::{ConsentRequest, ResourceFacts},
    model::{Coding, Confidentiality, ParsedConsent, Provision, ProvisionType, SecurityLabel},
};

/// Every confidentiality level, least restricted first.
pub const CONFIDENTIALITY_LEVELS: [Confidentiality; 6] = [
    Confidentiality::U,
    Confidentiality::L,
    Confidentiality::M,
    Confidentiality::N,
    Confidentiality::R,
    Confidentiality::V,
];

impl Confidentiality {
    /// The code (`U` ... `V`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::U => "U",
            Self::L => "L",
            Self::M => "M",
            Self::N => "N",
            Self::R => "R",
            Self::V => "V",
        }
    }

    /// The next more restricted level (None above V).
    fn above(self) -> Option<Self> {
        CONFIDENTIALITY_LEVELS
            .iter()
            .copied()
            .find(|level| *level > self)
    }
}

/// One fact about a resource a consent can name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The resource's id is this (its type is the request's).
    Id(String),
    /// One of the resource's codes matches this coding ([`Coding::matches`]).
    Code(Coding),
    /// One of the resource's security labels matches this coding ([`Coding::matches`]).
    Label(Coding),
    /// The resource's confidentiality is at least this level: the highest of its labels that
    /// [`Confidentiality::of`] reads, N when it carries none.
    ConfidentialityAtLeast(Confidentiality),
    /// The resource has a data time.
    HasDataTime,
    /// The resource has a data time and it lies wholly inside the period.
    DataWithin(crate::Period),
    /// The resource has a data time and it shares an instant with the period.
    DataTouches(crate::Period),
    /// One of the resource's references is this `Type/id` (`data.meaning = dependents`).
    RefersTo(String),
    /// The current version of this `Type/id` refers to the resource (`data.meaning = related`).
    ReferredToBy(String),
}

/// A boolean formula over [`Fact`]s. Built through [`Condition::and`], [`Condition::or`] and
/// [`Condition::negate`], which fold constants, so a decided formula is `True` or `False`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    True,
    False,
    Fact(Fact),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

impl Condition {
    pub fn fact(fact: Fact) -> Self {
        Self::Fact(fact)
    }

    pub fn known(value: bool) -> Self {
        if value {
            Self::True
        } else {
            Self::False
        }
    }

    pub fn is_true(&self) -> bool {
        matches!(self, Self::True)
    }

    pub fn is_false(&self) -> bool {
        matches!(self, Self::False)
    }

    /// The resource's confidentiality is at most `level`.
    pub fn confidentiality_at_most(level: Confidentiality) -> Self {
        match level.above() {
            Some(above) => Self::negate(Self::fact(Fact::ConfidentialityAtLeast(above))),
            None => Self::True,
        }
    }

    pub fn negate(c: Condition) -> Self {
        match c {
            Self::True => Self::False,
            Self::False => Self::True,
            Self::Not(inner) => *inner,
            other => Self::Not(Box::new(other)),
        }
    }

    pub fn and(a: Condition, b: Condition) -> Self {
        Self::all([a, b])
    }

    pub fn or(a: Condition, b: Condition) -> Self {
        Self::any([a, b])
    }

    /// Every one holds (`True` for none).
    pub fn all(items: impl IntoIterator<Item = Condition>) -> Self {
        let mut parts: Vec<Condition> = Vec::new();
        for item in items {
            match item {
                Self::True => {}
                Self::False => return Self::False,
                Self::And(inner) => {
                    for c in inner {
                        if !parts.contains(&c) {
                            parts.push(c);
                        }
                    }
                }
                other => {
                    if !parts.contains(&other) {
                        parts.push(other);
                    }
                }
            }
        }
        absorb_in_all(&mut parts);
        match parts.len() {
            0 => Self::True,
            1 => parts.pop().unwrap_or(Self::True),
            _ => Self::And(parts),
        }
    }

    /// At least one holds (`False` for none).
    pub fn any(items: impl IntoIterator<Item = Condition>) -> Self {
        let mut parts: Vec<Condition> = Vec::new();
        for item in items {
            match item {
                Self::False => {}
                Self::True => return Self::True,
                Self::Or(inner) => {
                    for c in inner {
                        if !parts.contains(&c) {
                            parts.push(c);
                        }
                    }
                }
                other => {
                    if !parts.contains(&other) {
                        parts.push(other);
                    }
                }
            }
        }
        absorb_in_any(&mut parts);
        match parts.len() {
            0 => Self::False,
            1 => parts.pop().unwrap_or(Self::False),
            _ => Self::Or(parts),
        }
    }

    /// How many nodes the formula has.
    pub fn size(&self) -> usize {
        match self {
            Self::True | Self::False | Self::Fact(_) => 1,
            Self::Not(c) => 1 + c.size(),
            Self::And(cs) | Self::Or(cs) => 1 + cs.iter().map(Condition::size).sum::<usize>(),
        }
    }

    /// Whether the formula holds for a resource with these facts (`None` lists read as empty,
    /// a `None` id as none of the named ones): the reference semantics a store's compiled
    /// form must agree with.
    pub fn holds(&self, facts: &ResourceFacts<'_>) -> bool {
        match self {
            Self::True => true,
            Self::False => false,
            Self::Not(c) => !c.holds(facts),
            Self::And(cs) => cs.iter().all(|c| c.holds(facts)),
            Self::Or(cs) => cs.iter().any(|c| c.holds(facts)),
            Self::Fact(fact) => {
                let labels = facts.security_labels.unwrap_or(&[]);
                match fact {
                    Fact::Id(id) => facts.id == Some(id.as_str()),
                    Fact::Code(code) => facts
                        .codes
                        .unwrap_or(&[])
                        .iter()
                        .any(|theirs| code.matches(theirs)),
                    Fact::Label(label) => labels.iter().any(|theirs| label.matches(theirs)),
                    Fact::ConfidentialityAtLeast(level) => confidentiality(labels) >= *level,
                    Fact::HasDataTime => facts.data_time.is_some(),
                    Fact::DataWithin(period) => facts
                        .data_time
                        .is_some_and(|(from, to)| period.encloses(from, to)),
                    Fact::DataTouches(period) => facts
                        .data_time
                        .is_some_and(|(from, to)| period.overlaps(from, to)),
                    Fact::RefersTo(target) => {
                        facts.references.unwrap_or(&[]).iter().any(|r| r == target)
                    }
                    Fact::ReferredToBy(source) => facts
                        .referrers
                        .is_some_and(|r| r.referring.iter().any(|x| x == source)),
                }
            }
        }
    }
}

/// The conjuncts of a formula (itself, unless it is a conjunction).
fn conjuncts(c: &Condition) -> Vec<&Condition> {
    match c {
        Condition::And(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// Absorption in a conjunction: a disjunction one of whose members the other parts already
/// imply adds nothing (`x AND (x OR y)` is `x`). Removed one at a time, each implied by what
/// remains. Keeps the formulas of nested provisions from doubling at each depth.
fn absorb_in_all(parts: &mut Vec<Condition>) {
    let mut i = 0;
    while i < parts.len() {
        let redundant = match &parts[i] {
            Condition::Or(members) => members.iter().any(|m| {
                conjuncts(m)
                    .iter()
                    .all(|z| parts.iter().enumerate().any(|(j, p)| j != i && p == *z))
            }),
            _ => false,
        };
        if redundant {
            parts.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Absorption in a disjunction: a conjunction that implies another part adds nothing
/// (`x OR (x AND y)` is `x`).
fn absorb_in_any(parts: &mut Vec<Condition>) {
    let mut i = 0;
    while i < parts.len() {
        let redundant = match &parts[i] {
            Condition::And(members) => parts
                .iter()
                .enumerate()
                .any(|(j, p)| j != i && conjuncts(p).iter().all(|z| members.contains(z))),
            _ => false,
        };
        if redundant {
            parts.remove(i);
        } else {
            i += 1;
        }
    }
}

/// The largest formula partial evaluation builds; past it a patient's consents are treated as
/// undetermined for every resource (her data left out of searches: narrower, never wider).
/// Provisions nest up to 32 deep, and without a bound a crafted consent could make the
/// formulas (and the SQL they become) grow exponentially.
pub const MAX_CONDITION_SIZE: usize = 2048;

/// The confidentiality of data with these labels, as evaluation reads it.
fn confidentiality(labels: &[Coding]) -> Confidentiality {
    labels
        .iter()
        .filter_map(Confidentiality::of)
        .max()
        .unwrap_or(Confidentiality::N)
}

/// A patient's consents' answer as formulas over the instance facts (exactly one of the three
/// holds for a resource, or none: Undetermined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditional {
    pub permit: Condition,
    pub deny: Condition,
    pub not_applicable: Condition,
    /// The consents whose answer depends on the facts or is not NotApplicable (sorted).
    pub consents: Vec<String>,
}

/// A condition as three-valued logic over facts: when it is Yes, when it is No (neither:
/// unknown even with the facts, i.e. a data period over data with no data time).
#[derive(Debug, Clone)]
struct Sym {
    yes: Condition,
    no: Condition,
}

impl Sym {
    fn known(yes: Condition) -> Self {
        Self {
            no: Condition::negate(yes.clone()),
            yes,
        }
    }

    /// Kleene's and, as in evaluation.
    fn and(self, other: Sym) -> Sym {
        Sym {
            yes: Condition::and(self.yes, other.yes),
            no: Condition::or(self.no, other.no),
        }
    }
}

/// Which outcomes a provision (or a combination) can have, each as a formula.
#[derive(Debug, Clone)]
struct Outs {
    na: Condition,
    permit: Condition,
    deny: Condition,
}

impl Outs {
    fn within_budget(&self) -> bool {
        self.na.size() + self.permit.size() + self.deny.size() <= MAX_CONDITION_SIZE
    }

    fn not_applicable() -> Self {
        Self {
            na: Condition::True,
            permit: Condition::False,
            deny: Condition::False,
        }
    }

    /// Any Deny wins, else any Permit, else NotApplicable, over sets of outcomes (as
    /// `eval::Combine` does).
    fn combine(items: Vec<Outs>) -> Outs {
        let deny = Condition::any(items.iter().map(|o| o.deny.clone()));
        let any_permit = Condition::any(items.iter().map(|o| o.permit.clone()));
        let avoid_deny = Condition::all(
            items
                .iter()
                .map(|o| Condition::or(o.na.clone(), o.permit.clone())),
        );
        let na = Condition::all(items.into_iter().map(|o| o.na));
        Outs {
            na,
            permit: Condition::and(any_permit, avoid_deny),
            deny,
        }
    }
}

/// The provision's own instance conditions (its static ones hold).
fn instance_conditions(p: &Provision, resource_type: &str) -> Sym {
    let mut acc = Sym::known(Condition::True);
    if p.names_data() {
        // The resource is the named one (by id, when the type is the asked one).
        let is = |reference: &String| {
            let (kind, id) = reference.split_once('/')?;
            (kind == resource_type).then(|| Condition::fact(Fact::Id(id.to_string())))
        };
        let instance = p.data.iter().filter_map(is);
        let dependents = p.dependents.iter().map(|r| {
            Condition::or(
                is(r).unwrap_or(Condition::False),
                Condition::fact(Fact::RefersTo(r.clone())),
            )
        });
        let related = p.related.iter().map(|r| {
            Condition::or(
                is(r).unwrap_or(Condition::False),
                Condition::fact(Fact::ReferredToBy(r.clone())),
            )
        });
        acc = acc.and(Sym::known(Condition::any(
            instance.chain(dependents).chain(related),
        )));
    }
    if !p.security_labels.is_empty() {
        acc = acc.and(Sym::known(Condition::any(p.security_labels.iter().map(
            |label| match label {
                SecurityLabel::Confidentiality(mine) => match p.kind {
                    ProvisionType::Permit => Condition::confidentiality_at_most(*mine),
                    ProvisionType::Deny => Condition::fact(Fact::ConfidentialityAtLeast(*mine)),
                },
                SecurityLabel::Other(mine) => Condition::fact(Fact::Label(mine.clone())),
            },
        ))));
    }
    if !p.codes.is_empty() {
        acc = acc.and(Sym::known(Condition::any(
            p.codes
                .iter()
                .map(|c| Condition::fact(Fact::Code(c.clone()))),
        )));
    }
    if let Some(period) = p.data_period {
        // Data with no data time leaves the condition unknown, as in evaluation.
        let yes = Condition::fact(match p.kind {
            ProvisionType::Permit => Fact::DataWithin(period),
            ProvisionType::Deny => Fact::DataTouches(period),
        });
        acc = acc.and(Sym {
            no: Condition::and(
                Condition::fact(Fact::HasDataTime),
                Condition::negate(yes.clone()),
            ),
            yes,
        });
    }
    acc
}

/// None when the formulas outgrow [`MAX_CONDITION_SIZE`].
fn provision_outcomes(p: &Provision, req: &ConsentRequest<'_>) -> Option<Outs> {
    let stated = match p.request_conditions(req) {
        Some(false) => return Some(Outs::not_applicable()),
        Some(true) => Sym::known(Condition::True),
        // A membership that is not known: unknown whatever the data.
        None => Sym {
            yes: Condition::False,
            no: Condition::False,
        },
    };
    let applies = stated.and(instance_conditions(p, req.resource.resource_type));
    let below = Outs::combine(
        p.provisions
            .iter()
            .map(|child| provision_outcomes(child, req))
            .collect::<Option<Vec<_>>>()?,
    );
    let (own_permit, own_deny) = match p.kind {
        ProvisionType::Permit => (below.na, Condition::False),
        ProvisionType::Deny => (Condition::False, below.na),
    };
    let reached = Condition::negate(applies.no);
    let outs = Outs {
        na: Condition::negate(applies.yes),
        permit: Condition::and(reached.clone(), Condition::or(below.permit, own_permit)),
        deny: Condition::and(reached, Condition::or(below.deny, own_deny)),
    };
    outs.within_budget().then_some(outs)
}

fn consent_outcomes(
    c: &ParsedConsent,
    req: &ConsentRequest<'_>,
    at: DateTime<Utc>,
) -> Option<Outs> {
    if !c.in_force() || c.patient != req.patient {
        return Some(Outs::not_applicable());
    }
    if c.period.as_ref().is_some_and(|period| !period.contains(at)) {
        return Some(Outs::not_applicable());
    }
    match &c.provision {
        Some(root) => provision_outcomes(root, req),
        None => Some(Outs::not_applicable()),
    }
}

/// The consents' answer for `req` as formulas over the instance facts. Only the request's
/// resource type is read of `req.resource`; the id, codes, labels and data time are what the
/// formulas are about.
pub fn partial<'a>(
    consents: impl IntoIterator<Item = &'a ParsedConsent>,
    req: &ConsentRequest<'_>,
) -> Conditional {
    let req = ConsentRequest {
        resource: ResourceFacts::of_type(req.resource.resource_type),
        ..req.clone()
    };
    let mut names = Vec::new();
    let mut outs = Vec::new();
    let mut too_large = false;
    for consent in consents {
        let Some(o) = consent_outcomes(consent, &req, req.at) else {
            too_large = true;
            names.push(consent.reference().unwrap_or("Consent/?").to_string());
            continue;
        };
        if !o.na.is_true() {
            names.push(consent.reference().unwrap_or("Consent/?").to_string());
        }
        outs.push(o);
    }
    names.sort();
    names.dedup();
    let all = Outs::combine(outs);
    if too_large || !all.within_budget() {
        // Undetermined whatever the data: left out, as before partial evaluation existed.
        return Conditional {
            permit: Condition::False,
            deny: Condition::False,
            not_applicable: Condition::False,
            consents: names,
        };
    }
    let only = |one: &Condition, others: [&Condition; 2]| {
        Condition::all([
            one.clone(),
            Condition::negate(others[0].clone()),
            Condition::negate(others[1].clone()),
        ])
    };
    Conditional {
        permit: only(&all.permit, [&all.deny, &all.na]),
        deny: only(&all.deny, [&all.permit, &all.na]),
        not_applicable: only(&all.na, [&all.permit, &all.deny]),
        consents: names,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;
    use crate::{
        evaluate,
        model::{Actor, ActorKind, ConsentScope, ConsentStatus, Period, CONFIDENTIALITY_SYSTEM},
        ConsentAction, ConsentVerdict, KnownMembership, Membership, Referrers, UnknownMembership,
    };

    fn day(n: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::days(n)
    }

    fn coding(system: Option<&str>, code: &str) -> Coding {
        Coding::new(system, code)
    }

    const LOINC: &str = "http://loinc.org";
    const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

    fn code_pool() -> Vec<Coding> {
        vec![
            coding(Some(LOINC), "1"),
            coding(None, "1"),
            coding(Some("http://snomed.info/sct"), "1"),
            coding(Some(LOINC), "2"),
        ]
    }

    fn resource_label_pool() -> Vec<Coding> {
        vec![
            coding(Some(CONFIDENTIALITY_SYSTEM), "R"),
            coding(None, "N"),
            coding(Some(CONFIDENTIALITY_SYSTEM), "V"),
            coding(None, "L"),
            coding(Some("http://other"), "R"),
            coding(Some(ACT), "PSY"),
            coding(None, "PSY"),
            coding(Some(ACT), "HIV"),
        ]
    }

    fn provision_label() -> impl Strategy<Value = SecurityLabel> {
        prop_oneof![
            prop::sample::select(CONFIDENTIALITY_LEVELS.to_vec())
                .prop_map(SecurityLabel::Confidentiality),
            prop::sample::select(vec![
                coding(Some(ACT), "PSY"),
                coding(None, "PSY"),
                coding(Some(ACT), "HIV"),
                coding(Some("http://other"), "R"),
            ])
            .prop_map(SecurityLabel::Other),
        ]
    }

    /// Resources `data` names and references point to (the facts' own id is among them).
    fn reference_pool() -> Vec<&'static str> {
        vec![
            "Observation/o1",
            "Observation/o2",
            "Encounter/e1",
            "DiagnosticReport/d1",
        ]
    }

    fn period() -> impl Strategy<Value = Period> {
        (prop::option::of(0i64..6), prop::option::of(0i64..6)).prop_map(|(a, b)| {
            let (a, b) = match (a, b) {
                (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
                other => other,
            };
            Period {
                start: a.map(day),
                end: b.map(day),
            }
        })
    }

    fn node() -> impl Strategy<Value = Provision> {
        (
            any::<bool>(),
            prop::sample::subsequence(
                vec!["Organization/h2", "Organization/h3", "CareTeam/t1"],
                0..=2,
            ),
            prop::sample::subsequence(vec!["TREAT", "HMARKT"], 0..=2),
            prop::sample::subsequence(vec!["Observation", "Condition"], 0..=2),
            prop::sample::subsequence(code_pool(), 0..=2),
            prop::collection::vec(provision_label(), 0..=2),
            prop::option::weighted(0.4, period()),
            prop::sample::subsequence(
                vec!["Observation/o1", "Observation/o2", "Condition/o1", "o3"],
                0..=2,
            ),
            prop::option::weighted(0.1, period()),
            prop::sample::subsequence(reference_pool(), 0..=2),
            prop::sample::subsequence(reference_pool(), 0..=2),
        )
            .prop_map(
                |(
                    permit,
                    actors,
                    purposes,
                    classes,
                    codes,
                    labels,
                    data_period,
                    data,
                    p,
                    dependents,
                    related,
                )| {
                    Provision {
                        kind: if permit {
                            ProvisionType::Permit
                        } else {
                            ProvisionType::Deny
                        },
                        period: p,
                        actors: actors
                            .into_iter()
                            .map(|a| Actor {
                                reference: a.to_string(),
                                kind: if a.starts_with("CareTeam/") {
                                    ActorKind::CareTeam
                                } else {
                                    ActorKind::Organization
                                },
                                role: Vec::new(),
                            })
                            .collect(),
                        actions: Vec::new(),
                        security_labels: labels,
                        purposes: purposes.into_iter().map(str::to_string).collect(),
                        classes: classes.into_iter().map(str::to_string).collect(),
                        codes,
                        data_period,
                        data: data.into_iter().map(str::to_string).collect(),
                        dependents: dependents.into_iter().map(str::to_string).collect(),
                        related: related.into_iter().map(str::to_string).collect(),
                        provisions: Vec::new(),
                    }
                },
            )
    }

    fn provision() -> impl Strategy<Value = Provision> {
        node().prop_recursive(3, 12, 3, |inner| {
            (node(), prop::collection::vec(inner, 0..=3)).prop_map(|(mut p, children)| {
                p.provisions = children;
                p
            })
        })
    }

    fn consent(n: usize, root: Provision) -> ParsedConsent {
        ParsedConsent {
            id: Some(format!("Consent/c{n}")),
            patient: "Patient/alice".into(),
            status: ConsentStatus::Active,
            scope: ConsentScope::PatientPrivacy,
            date_time: None,
            period: None,
            provision: Some(root),
        }
    }

    #[derive(Debug, Clone)]
    struct Facts {
        id: &'static str,
        labels: Vec<Coding>,
        codes: Vec<Coding>,
        time: Option<(DateTime<Utc>, DateTime<Utc>)>,
        references: Vec<String>,
        referring: Vec<String>,
    }

    fn facts() -> impl Strategy<Value = Facts> {
        (
            prop::sample::select(vec!["o1", "o2", "o3"]),
            prop::sample::subsequence(resource_label_pool(), 0..=3),
            prop::sample::subsequence(code_pool(), 0..=2),
            prop::option::of((0i64..6, 0i64..3)),
            prop::sample::subsequence(reference_pool(), 0..=3),
            prop::sample::subsequence(reference_pool(), 0..=3),
        )
            .prop_map(|(id, labels, codes, time, references, referring)| Facts {
                id,
                labels,
                codes,
                time: time.map(|(from, len)| (day(from), day(from + len))),
                references: references.into_iter().map(str::to_string).collect(),
                referring: referring.into_iter().map(str::to_string).collect(),
            })
    }

    fn request<'a>(
        actors: &'a [String],
        membership: &'a dyn Membership,
        facts: ResourceFacts<'a>,
    ) -> ConsentRequest<'a> {
        ConsentRequest {
            patient: "Patient/alice",
            actors,
            membership,
            purpose: "TREAT",
            action: ConsentAction::Access,
            resource: facts,
            at: day(2),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// For every resource, the formulas agree with evaluation of that resource.
        #[test]
        fn formulas_agree_with_evaluation(
            roots in prop::collection::vec(provision(), 1..=3),
            samples in prop::collection::vec(facts(), 1..=8),
            uncertain in any::<bool>(),
        ) {
            let membership: &dyn Membership =
                if uncertain { &UnknownMembership } else { &KnownMembership };
            let consents: Vec<ParsedConsent> =
                roots.into_iter().enumerate().map(|(n, p)| consent(n, p)).collect();
            let actors = vec!["Organization/h2".to_string()];
            let conditional =
                partial(&consents, &request(&actors, membership, ResourceFacts::of_type("Observation")));
            // Referrers asked about every resource a consent could name under `related`.
            let asked: Vec<String> = reference_pool().into_iter().map(str::to_string).collect();
            for f in &samples {
                let facts = ResourceFacts {
                    resource_type: "Observation",
                    id: Some(f.id),
                    security_labels: Some(&f.labels),
                    data_time: f.time,
                    codes: Some(&f.codes),
                    references: Some(&f.references),
                    referrers: Some(Referrers { asked: &asked, referring: &f.referring }),
                };
                let verdict = evaluate(&consents, &request(&actors, membership, facts.clone()));
                prop_assert_eq!(
                    verdict.is_permit(),
                    conditional.permit.holds(&facts),
                    "permit: {:?} {:?}", verdict, conditional.permit
                );
                prop_assert_eq!(
                    verdict.is_deny(),
                    conditional.deny.holds(&facts),
                    "deny: {:?} {:?}", verdict, conditional.deny
                );
                prop_assert_eq!(
                    verdict == ConsentVerdict::NotApplicable,
                    conditional.not_applicable.holds(&facts),
                    "na: {:?} {:?}", verdict, conditional.not_applicable
                );
            }
        }
    }

    fn leaf(kind: ProvisionType, code: &str) -> Provision {
        Provision {
            kind,
            period: None,
            actors: Vec::new(),
            actions: Vec::new(),
            security_labels: Vec::new(),
            purposes: Vec::new(),
            classes: Vec::new(),
            codes: vec![coding(Some(LOINC), code)],
            data_period: None,
            data: Vec::new(),
            dependents: Vec::new(),
            related: Vec::new(),
            provisions: Vec::new(),
        }
    }

    #[test]
    fn deep_consents_stay_small_or_fail_closed() {
        let actors = vec!["Organization/h2".to_string()];
        let req = request(
            &actors,
            &KnownMembership,
            ResourceFacts::of_type("Observation"),
        );
        // A chain as deep as the parser allows: absorption keeps it linear.
        let mut chain = leaf(ProvisionType::Permit, "0");
        for depth in 1..31 {
            let kind = if depth % 2 == 0 {
                ProvisionType::Permit
            } else {
                ProvisionType::Deny
            };
            let mut parent = leaf(kind, &depth.to_string());
            parent.provisions = vec![chain];
            chain = parent;
        }
        let c = partial(&[consent(1, chain)], &req);
        assert!(!c.permit.is_false() && c.permit.size() < MAX_CONDITION_SIZE);
        // Two children at every depth: past the bound, undetermined for every resource.
        let mut bushy = leaf(ProvisionType::Permit, "0");
        for depth in 1..31 {
            let kind = if depth % 2 == 0 {
                ProvisionType::Permit
            } else {
                ProvisionType::Deny
            };
            let mut parent = leaf(kind, &depth.to_string());
            parent.provisions = vec![bushy, leaf(kind.opposite(), &format!("x{depth}"))];
            bushy = parent;
        }
        let c = partial(&[consent(1, bushy)], &req);
        assert!(c.permit.is_false() && c.deny.is_false() && c.not_applicable.is_false());
        assert_eq!(c.consents, vec!["Consent/c1".to_string()]);
    }

    #[test]
    fn an_exception_for_restricted_data_is_a_formula_on_confidentiality() {
        let root = Provision {
            kind: ProvisionType::Permit,
            period: None,
            actors: vec![Actor {
                reference: "Organization/h2".into(),
                kind: ActorKind::Organization,
                role: Vec::new(),
            }],
            actions: Vec::new(),
            security_labels: Vec::new(),
            purposes: Vec::new(),
            classes: Vec::new(),
            codes: Vec::new(),
            data_period: None,
            data: Vec::new(),
            dependents: Vec::new(),
            related: Vec::new(),
            provisions: vec![Provision {
                kind: ProvisionType::Deny,
                period: None,
                actors: Vec::new(),
                actions: Vec::new(),
                security_labels: vec![SecurityLabel::Confidentiality(Confidentiality::R)],
                purposes: Vec::new(),
                classes: Vec::new(),
                codes: Vec::new(),
                data_period: None,
                data: Vec::new(),
                dependents: Vec::new(),
                related: Vec::new(),
                provisions: Vec::new(),
            }],
        };
        let consents = [consent(1, root)];
        let actors = vec!["Organization/h2".to_string()];
        let c = partial(
            &consents,
            &request(
                &actors,
                &KnownMembership,
                ResourceFacts::of_type("Observation"),
            ),
        );
        let at_least_r = Condition::fact(Fact::ConfidentialityAtLeast(Confidentiality::R));
        assert_eq!(c.permit, Condition::negate(at_least_r.clone()));
        assert_eq!(c.deny, at_least_r);
        assert_eq!(c.not_applicable, Condition::False);
        assert_eq!(c.consents, vec!["Consent/c1".to_string()]);
        // Another actor: the root does not apply, whatever the data.
        let other = vec!["Organization/h3".to_string()];
        let c = partial(
            &consents,
            &request(
                &other,
                &KnownMembership,
                ResourceFacts::of_type("Observation"),
            ),
        );
        assert!(c.not_applicable.is_true() && c.permit.is_false() && c.deny.is_false());
    }
}
