//! The access kernel: one place decides every access to patient data, in every service, and
//! the access event is a consequence of that decision.
//!
//! - [`caller`]: [`Caller`], built once per request from the verified token (claims, granted
//!   SMART scopes), the purpose of use, a break-glass reason and the source (peer address, with
//!   `X-Forwarded-For` believed only from [`settings::TrustedProxies`]).
//! - [`scope`]: SMART v1/v2 scopes: parsing, granting per role, checking.
//! - [`kernel`]: [`Kernel::decide`] for one target, [`Kernel::visibility`] for searches (a
//!   [`PatientScope`] the store compiles into SQL).
//! - [`consents`]: who may read, write, search and ask about patients' Consent resources.
//! - [`decision`]: [`Decision`] with its [`Basis`], consents and break-glass obligation.
//! - [`event`]: the event builder and [`AccessLog`], the one way events are written.
//! - [`ledger`]: which ledger entries a caller may read.
//! - [`membership`]: [`MembershipStore`], who is in which CareTeam, Group and PractitionerRole,
//!   so consents naming them reach exactly their members.
//! - [`reference`]: typed references (`PatientRef`, `OrganizationRef`, `PractitionerRef`).
//! - [`settings`]: `ACCESS_POLICY`, `TRUSTED_PROXIES`, `ACCESS_EXPLAIN_DENIALS`.
//!
//! The policy (custodian rule, opt-in mode, consents, break-glass) is described in the README
//! section "Who may see what" and at the top of [`kernel`].

pub mod caller;
pub mod consents;
pub mod decision;
pub mod error;
pub mod event;
pub mod interaction;
pub mod kernel;
pub mod ledger;
pub mod membership;
pub mod reference;
pub mod scope;
pub mod settings;

pub use caller::{request_id_of, source_of, BreakGlassReason, Caller, Purpose};
pub use custodian_policy::{
    Coding, Condition, Confidentiality, Fact, Period, Referrers, ResourceFacts,
};
pub use decision::{Basis, Decision, Effect};
pub use error::AccessError;
pub use event::{
    absent_event, login_event, AccessLog, LoginAttempt, Touched, LOCKED_OUT_BASIS,
    UNKNOWN_LOGIN_ACTOR,
};
pub use interaction::Interaction;
pub use kernel::{
    scope_allows, scope_denial, CompartmentTarget, ConditionalCompartment, Kernel, PatientScope,
    PatientVisibility, Target, Visibility,
};
pub use membership::{MembershipProbe, MembershipStore, MembershipUpdater, MembershipView};
pub use reference::{OrganizationRef, PatientRef, PractitionerRef, ReferenceError};
pub use scope::{Context, Permission, ScopeSet};
pub use settings::{AccessSettings, CustodianMode, TrustedProxies};
