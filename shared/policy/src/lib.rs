//! Consent as an enforceable contract. A FHIR `Consent` becomes [`ConsentRule`]s (who, what,
//! why, until when, permit or deny); [`decide`] answers an access request against them. The
//! consent service decides with it, and records decides with the same code over its replica
//! ([`ConsentStore`]), kept current from the consent stream: one policy, evaluated in two places.
//!
//! Semantics: deny by default; a matching deny rule beats a matching permit rule (FHIR's nested
//! provisions are exceptions to their parent, and the usual exception is "but not ...").

pub mod parse;
pub mod rule;
pub mod store;

pub use parse::{rules_from_consent, ConsentParseError};
pub use rule::{
    decide, AccessRequest, ConsentChange, ConsentRule, Decision, DecisionReason, RuleEffect,
};
pub use store::ConsentStore;
