//! Evaluation: a request against one or several typed Consents.
//!
//! Conditions are three-valued: a condition on a fact the request does not know (`None` in
//! [`ResourceFacts`]) is *unknown*. Each provision yields the set of outcomes it could have
//! (any of NotApplicable, Permit, Deny) over every way the unknown conditions could turn out;
//! when that set has one member the answer is decided, otherwise it is `Undetermined`. The
//! sets over-approximate (unknowns are treated as independent), so a decided answer is always
//! right, and the engine never guesses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    Coding, Confidentiality, ConsentAction, ParsedConsent, Provision, ProvisionType, SecurityLabel,
};

/// What is known about the data asked for. `None` means unknown (a type-level question, e.g.
/// for a search): a condition on it makes the answer `Undetermined` when it could change it.
#[derive(Debug, Clone)]
pub struct ResourceFacts<'a> {
    /// `Observation`, `Condition` ...
    pub resource_type: &'a str,
    /// The resource's id (without the type).
    pub id: Option<&'a str>,
    /// `meta.security`; an empty slice means the resource carries none (read as
    /// confidentiality N).
    pub security_labels: Option<&'a [Coding]>,
    /// The clinically relevant time of the data (first, last instant).
    pub data_time: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The resource's codes (e.g. `Observation.code` codings).
    pub codes: Option<&'a [Coding]>,
    /// The resources this one refers to: every literal reference in it, normalised to
    /// `Type/id` (records: `facts::references_of`). For `data.meaning = dependents`.
    pub references: Option<&'a [String]>,
    /// Which resources' current versions refer to this one. For `data.meaning = related`.
    pub referrers: Option<Referrers<'a>>,
}

/// What is known of the resources referring to one resource: for some resources (`asked`),
/// whether their current version refers to it. Asking only about the resources consents name
/// under `related` keeps this cheap; a named one that was not asked about is unknown (so a
/// consent changing between the question and the decision fails closed, never open).
#[derive(Debug, Clone, Copy)]
pub struct Referrers<'a> {
    /// The resources asked about (`Type/id`).
    pub asked: &'a [String],
    /// Those of `asked` whose current version refers to this resource.
    pub referring: &'a [String],
}

impl<'a> ResourceFacts<'a> {
    /// Only the type is known.
    pub fn of_type(resource_type: &'a str) -> Self {
        Self {
            resource_type,
            id: None,
            security_labels: None,
            data_time: None,
            codes: None,
            references: None,
            referrers: None,
        }
    }

    /// Whether this is the resource `reference` (`Type/id`): unknown without an id.
    fn is(&self, reference: &str) -> Tri {
        let Some((kind, id)) = reference.split_once('/') else {
            return Tri::No;
        };
        if kind != self.resource_type {
            return Tri::No;
        }
        match self.id {
            Some(known) => Tri::from_bool(known == id),
            None => Tri::Unknown,
        }
    }

    /// `data.meaning = dependents`: this resource refers to `reference`.
    fn refers_to(&self, reference: &str) -> Tri {
        match self.references {
            Some(references) => Tri::from_bool(references.iter().any(|r| r == reference)),
            None => Tri::Unknown,
        }
    }

    /// `data.meaning = related`: the current version of `reference` refers to this resource.
    fn referred_to_by(&self, reference: &str) -> Tri {
        match self.referrers {
            Some(r) if r.referring.iter().any(|x| x == reference) => Tri::Yes,
            Some(r) if r.asked.iter().any(|x| x == reference) => Tri::No,
            _ => Tri::Unknown,
        }
    }
}

/// What is known of the caller's memberships beyond the references in
/// [`ConsentRequest::actors`] (which hold every container the caller is known to be in).
pub trait Membership: Sync {
    /// Whether the caller might be in `reference` although it is not among the request's
    /// actors: a container (CareTeam, Group, PractitionerRole) whose members are not all known.
    /// An actor condition naming it is then unknown (a deny that might apply is `Undetermined`).
    fn uncertain(&self, reference: &str) -> bool;
}

impl std::fmt::Debug for dyn Membership + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Membership")
    }
}

/// The request's actors are exactly who the caller is (every membership is known, or the
/// caller is in none).
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownMembership;

impl Membership for KnownMembership {
    fn uncertain(&self, _: &str) -> bool {
        false
    }
}

/// Nothing is known of memberships: the caller might be in any CareTeam, Group or
/// PractitionerRole it is not listed in (fails closed for denies naming them).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnknownMembership;

impl Membership for UnknownMembership {
    fn uncertain(&self, reference: &str) -> bool {
        is_container(reference)
    }
}

/// A reference to an actor that stands for its members: a CareTeam, Group or PractitionerRole.
/// (A RelatedPerson is a person, matched by identity; no caller is one today.)
pub fn is_container(reference: &str) -> bool {
    reference
        .split_once('/')
        .is_some_and(|(kind, _)| matches!(kind, "CareTeam" | "Group" | "PractitionerRole"))
}

/// An access question.
#[derive(Debug, Clone)]
pub struct ConsentRequest<'a> {
    /// `Patient/<id>` whose data is asked for.
    pub patient: &'a str,
    /// Every reference the caller is known by: `Organization/x`, `Practitioner/y`, and every
    /// container it is known to be in at `at` (`PractitionerRole/r`, `CareTeam/c`, `Group/g`).
    pub actors: &'a [String],
    /// Containers the caller might be in without being listed in `actors`.
    pub membership: &'a dyn Membership,
    /// HL7 v3 PurposeOfUse code (`TREAT`, `ETREAT`, `HPAYMT` ...).
    pub purpose: &'a str,
    pub action: ConsentAction,
    pub resource: ResourceFacts<'a>,
    pub at: DateTime<Utc>,
}

/// The consents' answer. `consents` are the `Consent/<id>` that decided it (for
/// `Undetermined`: those whose answer depends on what is unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum ConsentVerdict {
    Permit { consents: Vec<String> },
    Deny { consents: Vec<String> },
    NotApplicable,
    Undetermined { consents: Vec<String> },
}

impl ConsentVerdict {
    pub fn is_permit(&self) -> bool {
        matches!(self, Self::Permit { .. })
    }

    pub fn is_deny(&self) -> bool {
        matches!(self, Self::Deny { .. })
    }

    /// The consents that decided (empty for NotApplicable).
    pub fn consents(&self) -> &[String] {
        match self {
            Self::Permit { consents }
            | Self::Deny { consents }
            | Self::Undetermined { consents } => consents,
            Self::NotApplicable => &[],
        }
    }
}

/// Kleene's three-valued logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Unknown,
}

impl Tri {
    fn from_bool(b: bool) -> Self {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }

    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }

    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::No, Tri::No) => Tri::No,
            _ => Tri::Unknown,
        }
    }

    /// Any of the items: `Yes` as soon as one is.
    fn any<T>(items: &[T], mut f: impl FnMut(&T) -> Tri) -> Tri {
        let mut acc = Tri::No;
        for item in items {
            acc = acc.or(f(item));
            if acc == Tri::Yes {
                break;
            }
        }
        acc
    }
}

/// A set of possible outcomes.
pub(crate) type Outcomes = u8;
pub(crate) const NA: Outcomes = 1;
pub(crate) const PERMIT: Outcomes = 2;
pub(crate) const DENY: Outcomes = 4;

fn bit(kind: ProvisionType) -> Outcomes {
    match kind {
        ProvisionType::Permit => PERMIT,
        ProvisionType::Deny => DENY,
    }
}

/// Combines outcomes where any Deny wins, else any Permit, else NotApplicable (siblings at one
/// depth, and several consents of one patient), over sets of possible outcomes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Combine {
    any_deny: bool,
    any_permit: bool,
    /// Every set so far can avoid Deny.
    all_avoid_deny: bool,
    all_na: bool,
}

impl Default for Combine {
    fn default() -> Self {
        Self {
            any_deny: false,
            any_permit: false,
            all_avoid_deny: true,
            all_na: true,
        }
    }
}

impl Combine {
    pub(crate) fn add(&mut self, set: Outcomes) {
        self.any_deny |= set & DENY != 0;
        self.any_permit |= set & PERMIT != 0;
        self.all_avoid_deny &= set & (NA | PERMIT) != 0;
        self.all_na &= set & NA != 0;
    }

    pub(crate) fn result(&self) -> Outcomes {
        let mut out = 0;
        if self.any_deny {
            out |= DENY;
        }
        if self.any_permit && self.all_avoid_deny {
            out |= PERMIT;
        }
        if self.all_na {
            out |= NA;
        }
        out
    }
}

impl Provision {
    /// Do this provision's own conditions hold (the parent's are checked by the caller)?
    fn conditions(&self, req: &ConsentRequest<'_>) -> Tri {
        let facts = &req.resource;
        if let Some(period) = &self.period {
            if !period.contains(req.at) {
                return Tri::No;
            }
        }
        // An actor is the caller, or a container it is (or might be) in.
        let mut acc = Tri::Yes;
        if !self.actors.is_empty() {
            acc = Tri::any(&self.actors, |a| {
                if req.actors.contains(&a.reference) {
                    Tri::Yes
                } else if req.membership.uncertain(&a.reference) {
                    Tri::Unknown
                } else {
                    Tri::No
                }
            });
            if acc == Tri::No {
                return acc;
            }
        }
        if !self.actions.is_empty() && !self.actions.contains(&req.action) {
            return Tri::No;
        }
        if !self.purposes.is_empty()
            && !self.purposes.iter().any(|p| purpose_covers(p, req.purpose))
        {
            return Tri::No;
        }
        if !self.classes.is_empty() && !self.classes.iter().any(|c| c == facts.resource_type) {
            return Tri::No;
        }
        if self.names_data() {
            // One entry of any meaning: the instance itself, or what refers to it
            // (dependents), or what its current version refers to (related).
            let instance = Tri::any(&self.data, |r| facts.is(r));
            let dependents = Tri::any(&self.dependents, |r| facts.is(r).or(facts.refers_to(r)));
            let related = Tri::any(&self.related, |r| facts.is(r).or(facts.referred_to_by(r)));
            acc = acc.and(instance.or(dependents).or(related));
            if acc == Tri::No {
                return acc;
            }
        }
        if !self.security_labels.is_empty() {
            acc = acc.and(match facts.security_labels {
                None => Tri::Unknown,
                Some(labels) => Tri::from_bool(self.labels_match(labels)),
            });
            if acc == Tri::No {
                return acc;
            }
        }
        if !self.codes.is_empty() {
            acc = acc.and(match facts.codes {
                None => Tri::Unknown,
                Some(codes) => Tri::from_bool(
                    self.codes
                        .iter()
                        .any(|mine| codes.iter().any(|theirs| mine.matches(theirs))),
                ),
            });
            if acc == Tri::No {
                return acc;
            }
        }
        if let Some(period) = &self.data_period {
            acc = acc.and(match facts.data_time {
                None => Tri::Unknown,
                // A permit covers data wholly inside its period; a deny covers data that
                // touches its period.
                Some((from, to)) => Tri::from_bool(match self.kind {
                    ProvisionType::Permit => period.encloses(from, to),
                    ProvisionType::Deny => period.overlaps(from, to),
                }),
            });
        }
        acc
    }

    /// Confidentiality is ordered: a permit's level covers data at or below it, a deny's level
    /// data at or above it; data without a confidentiality label is N. Other labels: the data
    /// carries one of them.
    fn labels_match(&self, labels: &[Coding]) -> bool {
        let level = labels
            .iter()
            .filter_map(Confidentiality::of)
            .max()
            .unwrap_or(Confidentiality::N);
        self.security_labels.iter().any(|label| match label {
            SecurityLabel::Confidentiality(mine) => match self.kind {
                ProvisionType::Permit => level <= *mine,
                ProvisionType::Deny => level >= *mine,
            },
            SecurityLabel::Other(mine) => labels.iter().any(|theirs| mine.matches(theirs)),
        })
    }

    /// The outcomes this provision could have: NotApplicable when it does not apply, else the
    /// combined answer of its applicable children, else its own type.
    pub(crate) fn outcomes(&self, req: &ConsentRequest<'_>) -> Outcomes {
        let applies = self.conditions(req);
        if applies == Tri::No {
            return NA;
        }
        let mut children = Combine::default();
        for child in &self.provisions {
            children.add(child.outcomes(req));
        }
        let below = children.result();
        let mut out = below & !NA;
        if below & NA != 0 {
            out |= bit(self.kind);
        }
        if applies == Tri::Unknown {
            out |= NA;
        }
        out
    }
}

impl ParsedConsent {
    /// The outcomes this consent could have for the request.
    pub(crate) fn outcomes(&self, req: &ConsentRequest<'_>) -> Outcomes {
        if !self.in_force() || self.patient != req.patient {
            return NA;
        }
        if let Some(period) = &self.period {
            if !period.contains(req.at) {
                return NA;
            }
        }
        match &self.provision {
            Some(root) => root.outcomes(req),
            None => NA,
        }
    }

    /// This consent's answer alone.
    pub fn evaluate(&self, req: &ConsentRequest<'_>) -> ConsentVerdict {
        evaluate([self], req)
    }
}

/// Turns per-consent outcome sets into a verdict.
pub(crate) fn verdict<'a>(sets: impl IntoIterator<Item = (&'a str, Outcomes)>) -> ConsentVerdict {
    let sets: Vec<(&str, Outcomes)> = sets.into_iter().collect();
    let mut all = Combine::default();
    for (_, set) in &sets {
        all.add(*set);
    }
    let names = |keep: &dyn Fn(Outcomes) -> bool| -> Vec<String> {
        let mut names: Vec<String> = sets
            .iter()
            .filter(|(_, set)| keep(*set))
            .map(|(name, _)| (*name).to_string())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    match all.result() {
        NA => ConsentVerdict::NotApplicable,
        DENY => ConsentVerdict::Deny {
            consents: names(&|s| s == DENY),
        },
        PERMIT => ConsentVerdict::Permit {
            consents: names(&|s| s == PERMIT),
        },
        _ => ConsentVerdict::Undetermined {
            consents: names(&|s| s != NA),
        },
    }
}

/// Evaluates a patient's consents together: any Deny wins, else any Permit, else
/// NotApplicable; `Undetermined` when unknown facts could change the answer. Consents of other
/// patients, not active, or of a scope without access rules are NotApplicable.
pub fn evaluate<'a>(
    consents: impl IntoIterator<Item = &'a ParsedConsent>,
    req: &ConsentRequest<'_>,
) -> ConsentVerdict {
    verdict(
        consents
            .into_iter()
            .map(|c| (c.reference().unwrap_or("Consent/?"), c.outcomes(req))),
    )
}

impl Provision {
    /// This provision's own conditions on what the request states (caller, purpose, action,
    /// type, time), leaving out those on the instance: `Some(holds)`, or `None` when unknown.
    /// For [`crate::condition`], so partial evaluation shares these rules with evaluation.
    pub(crate) fn request_conditions(&self, req: &ConsentRequest<'_>) -> Option<bool> {
        let bare = Provision {
            security_labels: Vec::new(),
            codes: Vec::new(),
            data_period: None,
            data: Vec::new(),
            dependents: Vec::new(),
            related: Vec::new(),
            provisions: Vec::new(),
            ..self.clone()
        };
        match bare.conditions(req) {
            Tri::Yes => Some(true),
            Tri::No => Some(false),
            Tri::Unknown => None,
        }
    }
}

/// Whether a provision naming purpose `named` covers a request made for `asked`: the same code,
/// or one of its specialisations in v3-ActReason that this engine knows for certain (emergency
/// treatment is treatment). Unknown codes cover only themselves: never wider than stated.
pub fn purpose_covers(named: &str, asked: &str) -> bool {
    named == asked || (named == "TREAT" && matches!(asked, "ETREAT" | "ERTREAT" | "BTG"))
}

#[cfg(test)]
mod purpose_tests {
    use super::purpose_covers;

    #[test]
    fn emergency_treatment_is_treatment_and_nothing_else_widens() {
        assert!(purpose_covers("TREAT", "TREAT"));
        assert!(purpose_covers("TREAT", "ETREAT"));
        assert!(!purpose_covers("ETREAT", "TREAT"));
        assert!(!purpose_covers("TREAT", "HMARKT"));
        assert!(!purpose_covers("HRESCH", "TREAT"));
    }
}
