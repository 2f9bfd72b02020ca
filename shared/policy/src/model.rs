//! The typed Consent: what [`crate::Consent::parse`] produces and the engine evaluates. Fields are
//! private: a value exists only after the parser (or, for a value read back from a stream or a
//! snapshot, the same enforceability check) accepted it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::check;

/// A code with its code system. Compared as `system|code`; a coding without a system matches
/// any coding with the same code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Coding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub code: String,
}

impl Coding {
    pub fn new(system: Option<&str>, code: &str) -> Self {
        Self {
            system: system.map(str::to_string),
            code: code.to_string(),
        }
    }

    /// Same code, and the same system unless either side names none.
    pub fn matches(&self, other: &Coding) -> bool {
        self.code == other.code
            && match (&self.system, &other.system) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// `Consent.status` (consent-state-codes). Only `active` is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentStatus {
    Draft,
    Proposed,
    Active,
    Rejected,
    Inactive,
    EnteredInError,
}

impl ConsentStatus {
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "draft" => Self::Draft,
            "proposed" => Self::Proposed,
            "active" => Self::Active,
            "rejected" => Self::Rejected,
            "inactive" => Self::Inactive,
            "entered-in-error" => Self::EnteredInError,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Proposed => "proposed",
            Self::Active => "active",
            Self::Rejected => "rejected",
            Self::Inactive => "inactive",
            Self::EnteredInError => "entered-in-error",
        }
    }
}

/// `Consent.scope` (consentscope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentScope {
    /// Who may see the patient's data: yields access rules.
    PatientPrivacy,
    /// Participation in research: yields access rules (purposes such as HRESCH).
    Research,
    /// Consent to treatment: accepted, yields no access rule.
    Treatment,
    /// Advance directive: accepted, yields no access rule.
    Adr,
}

impl ConsentScope {
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "patient-privacy" => Self::PatientPrivacy,
            "research" => Self::Research,
            "treatment" => Self::Treatment,
            "adr" => Self::Adr,
            _ => return None,
        })
    }

    /// Whether consents of this scope decide access to data.
    pub fn yields_access_rules(self) -> bool {
        matches!(self, Self::PatientPrivacy | Self::Research)
    }
}

/// `provision.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionType {
    Permit,
    Deny,
}

impl ProvisionType {
    pub fn opposite(self) -> Self {
        match self {
            Self::Permit => Self::Deny,
            Self::Deny => Self::Permit,
        }
    }
}

/// `provision.action` codes (consentaction) and the action a request performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentAction {
    /// Gather new data (creates).
    Collect,
    /// Read or search.
    Access,
    /// Use the data (e.g. in an analysis).
    Use,
    /// Pass the data to someone else.
    Disclose,
    /// Update or delete.
    Correct,
}

impl ConsentAction {
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "collect" => Self::Collect,
            "access" => Self::Access,
            "use" => Self::Use,
            "disclose" => Self::Disclose,
            "correct" => Self::Correct,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collect => "collect",
            Self::Access => "access",
            Self::Use => "use",
            Self::Disclose => "disclose",
            Self::Correct => "correct",
        }
    }
}

/// The resource types a provision's actor may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActorKind {
    Organization,
    Practitioner,
    PractitionerRole,
    CareTeam,
    RelatedPerson,
    Group,
    Patient,
    Device,
}

impl ActorKind {
    pub fn parse(resource_type: &str) -> Option<Self> {
        Some(match resource_type {
            "Organization" => Self::Organization,
            "Practitioner" => Self::Practitioner,
            "PractitionerRole" => Self::PractitionerRole,
            "CareTeam" => Self::CareTeam,
            "RelatedPerson" => Self::RelatedPerson,
            "Group" => Self::Group,
            "Patient" => Self::Patient,
            "Device" => Self::Device,
            _ => return None,
        })
    }

    /// Actors that stand for other parties (who is in a care team, a group, who holds a role,
    /// who is a related person): evaluation needs the caller's memberships for them.
    pub fn is_membership(self) -> bool {
        matches!(
            self,
            Self::PractitionerRole | Self::CareTeam | Self::RelatedPerson | Self::Group
        )
    }
}

/// `provision.actor`: a party named by a literal reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub(crate) reference: String,
    pub(crate) kind: ActorKind,
    pub(crate) role: Vec<Coding>,
}

impl Actor {
    /// `Organization/h1`, `Practitioner/p1` ...
    pub fn reference(&self) -> &str {
        &self.reference
    }

    pub fn kind(&self) -> ActorKind {
        self.kind
    }

    /// The codings of `actor.role`.
    pub fn role(&self) -> &[Coding] {
        &self.role
    }
}

/// A closed or half-open interval of instants, both bounds inclusive. Partial dates were
/// widened to the whole year, month or day they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub(crate) start: Option<DateTime<Utc>>,
    pub(crate) end: Option<DateTime<Utc>>,
}

impl Period {
    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.start
    }

    pub fn end(&self) -> Option<DateTime<Utc>> {
        self.end
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }

    /// The interval `[from, to]` lies inside this period.
    pub fn encloses(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| from >= s) && self.end.is_none_or(|e| to <= e)
    }

    /// The interval `[from, to]` shares at least one instant with this period.
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| to >= s) && self.end.is_none_or(|e| from <= e)
    }
}

/// v3-Confidentiality, ordered from least to most restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Confidentiality {
    U,
    L,
    M,
    N,
    R,
    V,
}

pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

impl Confidentiality {
    pub fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "U" => Self::U,
            "L" => Self::L,
            "M" => Self::M,
            "N" => Self::N,
            "R" => Self::R,
            "V" => Self::V,
            _ => return None,
        })
    }

    /// The confidentiality a coding states: v3-Confidentiality, or one of its codes with no
    /// system at all.
    pub fn of(coding: &Coding) -> Option<Self> {
        match coding.system.as_deref() {
            Some(CONFIDENTIALITY_SYSTEM) | None => Self::parse(&coding.code),
            Some(_) => None,
        }
    }
}

/// One entry of `provision.securityLabel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLabel {
    /// A confidentiality level: a permit covers data up to this level, a deny covers data at
    /// this level or above.
    Confidentiality(Confidentiality),
    /// Any other label (sensitivity such as PSY, HIV, ETH ...): the data carries it.
    Other(Coding),
}

/// One node of the provision tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provision {
    /// Effective type: stated, or (when absent) permit at the root and the opposite of the
    /// parent below it.
    pub(crate) kind: ProvisionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) period: Option<Period>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) actors: Vec<Actor>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) actions: Vec<ConsentAction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) security_labels: Vec<SecurityLabel>,
    /// PurposeOfUse codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) purposes: Vec<String>,
    /// Resource type names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) classes: Vec<String>,
    /// Every coding of every `code` CodeableConcept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) codes: Vec<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data_period: Option<Period>,
    /// `data` with meaning `instance`: literal references `Type/id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) data: Vec<String>,
    /// `data` with meaning `dependents` (`Type/id`): the instance and every resource that
    /// refers to it. A `data` condition holds when one entry of any meaning does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) dependents: Vec<String>,
    /// `data` with meaning `related` (`Type/id`): the instance and every resource its current
    /// version refers to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) related: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) provisions: Vec<Provision>,
}

impl Provision {
    pub fn kind(&self) -> ProvisionType {
        self.kind
    }
    pub fn period(&self) -> Option<&Period> {
        self.period.as_ref()
    }
    pub fn actors(&self) -> &[Actor] {
        &self.actors
    }
    pub fn actions(&self) -> &[ConsentAction] {
        &self.actions
    }
    pub fn security_labels(&self) -> &[SecurityLabel] {
        &self.security_labels
    }
    pub fn purposes(&self) -> &[String] {
        &self.purposes
    }
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    pub fn codes(&self) -> &[Coding] {
        &self.codes
    }
    pub fn data_period(&self) -> Option<&Period> {
        self.data_period.as_ref()
    }
    pub fn data(&self) -> &[String] {
        &self.data
    }
    pub fn dependents(&self) -> &[String] {
        &self.dependents
    }
    pub fn related(&self) -> &[String] {
        &self.related
    }
    /// Whether `data` states a condition (an entry of any meaning).
    pub(crate) fn names_data(&self) -> bool {
        !(self.data.is_empty() && self.dependents.is_empty() && self.related.is_empty())
    }
    pub fn provisions(&self) -> &[Provision] {
        &self.provisions
    }

    /// Does this provision or any below it name one of these actor references?
    pub fn names_any(&self, references: &[String]) -> bool {
        self.actors
            .iter()
            .any(|a| references.contains(&a.reference))
            || self.provisions.iter().any(|p| p.names_any(references))
    }

    /// Visits this provision and every one below it, depth first.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Provision)) {
        visit(self);
        for child in &self.provisions {
            child.walk(visit);
        }
    }
}

/// A Consent the engine enforces exactly. Built by [`crate::Consent::parse`]; deserialising one
/// (from the consent stream or a snapshot) runs the same enforceability check again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ParsedConsentWire")]
pub struct ParsedConsent {
    /// `Consent/<id>`, when the resource had an id.
    pub(crate) id: Option<String>,
    /// `Patient/<id>`.
    pub(crate) patient: String,
    pub(crate) status: ConsentStatus,
    pub(crate) scope: ConsentScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) date_time: Option<DateTime<Utc>>,
    /// `Consent.period` (not an R4 element, R5's): bounds the whole consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provision: Option<Provision>,
}

/// The serialised shape of [`ParsedConsent`], checked before it becomes one.
#[derive(Deserialize)]
struct ParsedConsentWire {
    id: Option<String>,
    patient: String,
    status: ConsentStatus,
    scope: ConsentScope,
    #[serde(default)]
    date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    period: Option<Period>,
    #[serde(default)]
    provision: Option<Provision>,
}

impl TryFrom<ParsedConsentWire> for ParsedConsent {
    type Error = crate::ConsentError;

    fn try_from(wire: ParsedConsentWire) -> Result<Self, Self::Error> {
        let consent = ParsedConsent {
            id: wire.id,
            patient: wire.patient,
            status: wire.status,
            scope: wire.scope,
            date_time: wire.date_time,
            period: wire.period,
            provision: wire.provision,
        };
        check::enforceable(&consent)?;
        Ok(consent)
    }
}

impl ParsedConsent {
    /// `Consent/<id>`, when known.
    pub fn reference(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// `Patient/<id>`.
    pub fn patient(&self) -> &str {
        &self.patient
    }

    pub fn status(&self) -> ConsentStatus {
        self.status
    }

    pub fn scope(&self) -> ConsentScope {
        self.scope
    }

    pub fn date_time(&self) -> Option<DateTime<Utc>> {
        self.date_time
    }

    pub fn period(&self) -> Option<&Period> {
        self.period.as_ref()
    }

    /// The root provision.
    /// Every resource a provision names with `data.meaning = related` (deduplicated): whose
    /// current versions' references a decision about one resource needs
    /// ([`crate::eval::Referrers`]).
    pub fn related_data(&self) -> Vec<&str> {
        fn walk<'a>(p: &'a Provision, out: &mut Vec<&'a str>) {
            for r in &p.related {
                if !out.contains(&r.as_str()) {
                    out.push(r);
                }
            }
            for child in &p.provisions {
                walk(child, out);
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &self.provision {
            walk(root, &mut out);
        }
        out
    }

    pub fn provision(&self) -> Option<&Provision> {
        self.provision.as_ref()
    }

    /// Active, of a scope that decides access, with provisions: the only consents that can
    /// answer anything but NotApplicable.
    pub fn in_force(&self) -> bool {
        self.status == ConsentStatus::Active
            && self.scope.yields_access_rules()
            && self.provision.is_some()
    }

    /// Does any provision, at any depth, name one of these actor references? (Who may see the
    /// consent: the actors it names.)
    pub fn names_any(&self, references: &[String]) -> bool {
        self.provision
            .as_ref()
            .is_some_and(|p| p.names_any(references))
    }

    /// Every actor reference any provision names, sorted, without duplicates.
    pub fn named_actors(&self) -> Vec<String> {
        let mut named = Vec::new();
        if let Some(root) = &self.provision {
            root.walk(&mut |p| named.extend(p.actors.iter().map(|a| a.reference.clone())));
        }
        named.sort();
        named.dedup();
        named
    }

    /// Sets the consent's reference (the replica keys consents by the change's reference).
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.id = Some(reference.into());
        self
    }

    /// A consent that denies everything to everyone for `patient`: what to hold in place of a
    /// stored active consent that can no longer be parsed (fail closed, never open).
    pub fn deny_all(reference: impl Into<String>, patient: impl Into<String>) -> Self {
        Self {
            id: Some(reference.into()),
            patient: patient.into(),
            status: ConsentStatus::Active,
            scope: ConsentScope::PatientPrivacy,
            date_time: None,
            period: None,
            provision: Some(Provision {
                kind: ProvisionType::Deny,
                period: None,
                actors: Vec::new(),
                actions: Vec::new(),
                security_labels: Vec::new(),
                purposes: Vec::new(),
                classes: Vec::new(),
                codes: Vec::new(),
                data_period: None,
                data: Vec::new(),
                dependents: Vec::new(),
                related: Vec::new(),
                provisions: Vec::new(),
            }),
        }
    }
}
