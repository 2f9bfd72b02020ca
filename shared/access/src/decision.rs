//! What the kernel answers: permit or deny, on what basis, by which consents, with which
//! obligations. The access event is built from it ([`crate::event`]).

use crate::caller::BreakGlassReason;

/// Why access was permitted or denied. The code is recorded in the ledger with the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    // Permits.
    /// The patient herself.
    OwnRecord,
    /// The organisation that holds the patient's record, for treatment or operations.
    Custodian,
    /// A consent of the patient permits it.
    Consent,
    /// A practitioner broke the glass for one patient, with a reason.
    BreakGlass,
    /// A resource in no patient's compartment.
    Unowned,
    /// A search, run over the compartments the caller may see.
    Search,
    // Denials.
    /// A consent of the patient denies it.
    ConsentDeny,
    /// Neither the custodian relation nor a consent permits it.
    NoPermit,
    /// The token's scopes do not grant this interaction on this type.
    Scope,
    /// The caller's role has no access of this kind.
    Role,
    /// Break-glass asked for where it cannot be granted (not a practitioner, no patient).
    BreakGlassRefused,
    /// A consent's answer depends on facts of the data the kernel was not given.
    Undetermined,
    /// Data for a patient this service does not hold.
    UnknownPatient,
    /// Only the organisation holding a record may hand it to another.
    Custody,
}

impl Basis {
    pub fn code(self) -> &'static str {
        match self {
            Basis::OwnRecord => "own-record",
            Basis::Custodian => "custodian",
            Basis::Consent => "consent",
            Basis::BreakGlass => "break-glass",
            Basis::Unowned => "unowned",
            Basis::Search => "search",
            Basis::ConsentDeny => "consent-deny",
            Basis::NoPermit => "no-permit",
            Basis::Scope => "scope",
            Basis::Role => "role",
            Basis::BreakGlassRefused => "break-glass-refused",
            Basis::Undetermined => "undetermined",
            Basis::UnknownPatient => "unknown-patient",
            Basis::Custody => "custody",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Permit,
    Deny,
}

/// One access decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    pub basis: Basis,
    /// `Consent/<id>` that decided.
    pub consents: Vec<String>,
    /// Set when the permit rests on break-glass: the access is flagged, alerted on, and shown
    /// to the patient.
    pub break_glass: Option<BreakGlassReason>,
    /// For people: what is missing or what allowed it. Names no patient.
    pub explanation: String,
}

impl Decision {
    pub fn permit(basis: Basis, consents: Vec<String>) -> Self {
        Self {
            effect: Effect::Permit,
            basis,
            consents,
            break_glass: None,
            explanation: String::new(),
        }
    }

    pub fn deny(basis: Basis, consents: Vec<String>, explanation: impl Into<String>) -> Self {
        Self {
            effect: Effect::Deny,
            basis,
            consents,
            break_glass: None,
            explanation: explanation.into(),
        }
    }

    pub fn permitted(&self) -> bool {
        self.effect == Effect::Permit
    }

    pub fn is_break_glass(&self) -> bool {
        self.break_glass.is_some()
    }
}
