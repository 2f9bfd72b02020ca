//! FHIR R4 Consent as an enforceable contract, at full depth.
//!
//! [`Consent::parse`] reads a Consent into a typed [`ParsedConsent`] or refuses it with the path
//! of every element it cannot enforce exactly ([`ConsentError`]); it never enforces a wider rule
//! instead. [`evaluate`] and the replica [`ConsentStore`] answer [`ConsentRequest`]s with a
//! [`ConsentVerdict`]. The consent service validates and decides with it; records decides with
//! the same code over its replica, kept current from the consent stream ([`ConsentChange`]).
//!
//! # Semantics
//!
//! **In force.** Only `status = active` consents of scope `patient-privacy` or `research` with a
//! `provision` say anything. Every other status (draft, proposed, rejected, inactive,
//! entered-in-error) and the scopes `treatment` and `adr` (accepted, but not about access to
//! data) answer NotApplicable. `Consent.period` (R5's; not in R4) bounds the whole consent.
//!
//! **When a provision applies.** Every condition it states holds (an absent or empty list states
//! no condition) AND its parent applies. So a nested provision can never reach an actor,
//! purpose, action, type, period ... its parent did not. Conditions:
//! - `period`: the request's time lies inside (partial dates cover the whole year/month/day,
//!   in UTC; date-times carry their zone).
//! - `actor[]`: one of the request's actor references equals a named one. Actors are named by
//!   literal reference only (Organization, Practitioner, PractitionerRole, CareTeam,
//!   RelatedPerson, Group, Patient, Device). The request's actors hold the caller's own
//!   references and every container (CareTeam, Group, PractitionerRole) it is known to be in
//!   (the access kernel expands them from records' memberships); a named container the caller
//!   is not listed in but might be in ([`Membership::uncertain`]: its members are not all
//!   known) makes the condition unknown, so a deny naming it is `Undetermined` (refused by the
//!   kernel) and a permit naming it admits no one. A RelatedPerson matches only a caller who is
//!   that RelatedPerson.
//! - `action[]`: the request's action (collect, access, use, disclose, correct).
//! - `purpose[]`: the request's PurposeOfUse code equals one (compared by code).
//! - `class[]`: the resource type is one of them.
//! - `code[]`: a coding of the resource equals one (same code; same system unless either
//!   coding has none).
//! - `securityLabel[]`: the resource matches one. Confidentiality (v3-Confidentiality
//!   U < L < M < N < R < V) is ordered: a permit's level covers data at or below it, a deny's
//!   level data at or above it; data without a confidentiality label counts as N. Other labels
//!   (PSY, HIV, ...): the resource carries it.
//! - `dataPeriod`: a permit covers data whose clinical time lies wholly inside; a deny covers
//!   data whose clinical time touches it.
//! - `data[]`: one entry covers the resource. Meaning `instance`: it is the referenced
//!   resource. `dependents`: it is the referenced resource or refers to it (one of its literal
//!   references, normalised to `Type/id`, names it: [`ResourceFacts::references`]).
//!   `related`: it is the referenced resource or the referenced resource's current version
//!   refers to it ([`ResourceFacts::referrers`]). References are followed one step, never
//!   transitively (FHIR R4 says "instances it refers to", "instances that refer to it").
//!
//! Where a fact is unknown (`None` in [`ResourceFacts`], e.g. a type-level question for a search)
//! the condition is unknown; when that could change the outcome the answer is `Undetermined`.
//!
//! **What a consent answers.** If the root does not apply: NotApplicable. Otherwise the root's
//! type, unless nested provisions that apply say otherwise: the deeper provision wins over its
//! parent, and among siblings at the same depth that apply, deny wins (each sibling's answer is
//! itself resolved by its own children first). A nested provision without `type` is the
//! opposite of its parent; the root without `type` is permit.
//!
//! **Several consents of one patient.** Any Deny wins, else any Permit, else NotApplicable.
//! (What NotApplicable means, e.g. the custodian rule, is the caller's policy, not this crate's.)
//!
//! # Refused (422), never widened
//! Unknown elements in a provision, modifier extensions, `implicitRules`, unparseable dates, a
//! period that ends before it starts, an actor without a literal reference (identifier or
//! display only) or of another type, an actor role that describes the data's source (AUT, CST,
//! INF, ENT, AUTHEN, LA: needs authorship facts), an action outside consentaction, a class that
//! is not an R4 resource type, `data.meaning` authoredby (which element names a resource's
//! author differs per type: `Observation.performer`, `Composition.author`,
//! `DiagnosticReport.resultsInterpreter` ..., and no one rule is exact), and a privacy or research consent without provisions. (Denies naming a CareTeam,
//! Group, RelatedPerson or PractitionerRole are accepted: membership is evaluated, and where it
//! is unknown the answer is `Undetermined`, never a deny that silently misses members.)
//!
//! # Modules
//! - [`parse`]: JSON -> [`ParsedConsent`]; [`check`]: whole-model rules (also run when a
//!   `ParsedConsent` is deserialised).
//! - [`model`]: the typed Consent; [`eval`]: requests and verdicts; [`store`]: the replica.
//! - [`condition`]: partial evaluation: the verdicts as formulas over instance facts, for
//!   searches to compile into their queries.
//! - [`time`]: FHIR dates; [`resource_types`]: R4 resource type names.

pub mod check;
pub mod condition;
pub mod error;
pub mod eval;
pub mod model;
pub mod parse;
pub mod resource_types;
pub mod store;
pub mod time;

pub use condition::{partial, Condition, Conditional, Fact, CONFIDENTIALITY_LEVELS};
pub use error::{ConsentError, ConsentIssue};
pub use eval::{
    evaluate, is_container, ConsentRequest, ConsentVerdict, KnownMembership, Membership, Referrers,
    ResourceFacts, UnknownMembership,
};
pub use model::{
    Actor, ActorKind, Coding, Confidentiality, ConsentAction, ConsentScope, ConsentStatus,
    ParsedConsent, Period, Provision, ProvisionType, SecurityLabel,
};
pub use parse::Consent;
pub use store::{ConsentChange, ConsentStore, PatientVerdicts, ScopeRequest};

#[cfg(test)]
mod tests;
