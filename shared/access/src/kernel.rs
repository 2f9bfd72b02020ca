//! `Kernel::decide`: the one place an access is decided.
//!
//! The order of checks, each of which can only narrow:
//! 1. The token's SMART scopes must grant the interaction on the type (and a `patient/` scope
//!    only the patient in its context).
//! 2. The caller's role: administrators and auditors see no patient data; a patient sees her
//!    own compartment and writes nothing here; practitioners and services go on to 3.
//! 3. The patient's consents: a deny wins; a permit admits; an answer that depends on facts of
//!    the data not given is a deny (it cannot be enforced exactly).
//! 4. With no applicable consent: the custodian (the organisation that holds the record) may
//!    treat and operate, unless the deployment is strictly opt-in; everyone else is denied.
//! 5. A denied read by a practitioner who states a reason for one patient becomes a
//!    break-glass permit: flagged, alerted, shown to the patient.
//!
//! Searches ask [`Kernel::visibility`] for the set of compartments the caller may see, which
//! the store turns into SQL, so counts and pages are computed over visible data only. A
//! patient whose consents answer by the data itself comes with the conditions (formulas over
//! the data's facts, from `custodian_policy::partial`) for the store to compile too; a search
//! naming one patient asks [`Kernel::search_patient`].

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use chrono::Utc;
use custodian_auth::Role;
use custodian_policy::{
    Condition, ConsentRequest, ConsentStore, ConsentVerdict, ResourceFacts, ScopeRequest,
};
use prometheus::{IntCounterVec, Opts};

use crate::{
    caller::Caller,
    decision::{Basis, Decision, Effect},
    error::AccessError,
    interaction::Interaction,
    membership::MembershipStore,
    reference::{OrganizationRef, PatientRef},
    scope::Context,
    settings::{AccessSettings, CustodianMode},
};

/// Data in a patient's compartment.
#[derive(Debug, Clone)]
pub struct CompartmentTarget<'a> {
    pub patient: &'a PatientRef,
    /// The organisation that holds the patient's record (`Patient.managingOrganization`);
    /// None when the patient is not held here.
    pub custodian: Option<&'a OrganizationRef>,
    /// What is known of the data (type always; labels, codes, dates for an instance).
    pub facts: ResourceFacts<'a>,
}

/// What an access is to.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    Compartment(CompartmentTarget<'a>),
    /// A resource in no patient's compartment (Organization, Medication ...).
    Unowned {
        resource_type: &'a str,
    },
}

impl Target<'_> {
    pub fn resource_type(&self) -> &str {
        match self {
            Target::Compartment(t) => t.facts.resource_type,
            Target::Unowned { resource_type } => resource_type,
        }
    }

    pub fn patient(&self) -> Option<&PatientRef> {
        match self {
            Target::Compartment(t) => Some(t.patient),
            Target::Unowned { .. } => None,
        }
    }
}

/// The compartments a search may return, for the store to compile into its query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientScope {
    /// Resources in no compartment.
    pub unowned: bool,
    /// Compartments whose custodian is this organisation, except those in `excluded`.
    pub custodian: Option<OrganizationRef>,
    /// Not visible through `custodian`: denied ones, and every `conditional` one (so a store
    /// that ignored `conditional` would show less, never more).
    pub excluded: Vec<PatientRef>,
    /// Compartments visible whoever holds them (a consent permits, or the patient's own).
    pub included: Vec<PatientRef>,
    /// Compartments whose consents' answer depends on the data: visible resource by resource.
    pub conditional: Vec<ConditionalCompartment>,
}

/// A compartment whose consents answer by the data's own facts (security labels, codes, data
/// time, ids): the store compiles the conditions into its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionalCompartment {
    pub patient: PatientRef,
    /// A resource is visible where this holds (her consents permit), whoever holds her record.
    pub visible: Condition,
    /// Also visible where this holds (no consent of hers applies) when her record is held by
    /// [`PatientScope::custodian`].
    pub held: Condition,
    /// The consents the answer depends on.
    pub consents: Vec<String>,
}

/// The answer for a search naming one patient.
#[derive(Debug, Clone)]
pub enum PatientVisibility {
    /// Her whole compartment is visible or not, as the decision says.
    Decided(Decision),
    /// Her consents answer resource by resource: the search runs over `scope` (her conditional
    /// compartment and unowned resources); `decision` is the search's own.
    Conditional {
        scope: PatientScope,
        decision: Decision,
    },
}

/// The answer for a search with no single patient.
#[derive(Debug, Clone)]
pub enum Visibility {
    /// Nothing of this type: the decision says why.
    Denied(Decision),
    /// The search runs over `scope`; `decision` is the search's own (basis `search`), for the
    /// event of a search that returned nothing.
    Visible {
        scope: PatientScope,
        decision: Decision,
    },
}

struct Inner {
    settings: AccessSettings,
    consents: ConsentStore,
    consents_loaded: AtomicBool,
    /// Who is in which CareTeam, Group, PractitionerRole: consents naming them reach members.
    memberships: MembershipStore,
    decisions: IntCounterVec,
}

/// The access kernel of one service: its settings and its replica of every consent.
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

impl Kernel {
    pub fn new(settings: AccessSettings, consents: ConsentStore) -> Self {
        let decisions = IntCounterVec::new(
            Opts::new(
                "access_decisions_total",
                "Access decisions by effect and basis (fixed label sets)",
            ),
            &["effect", "basis"],
        )
        .unwrap_or_else(|_| unreachable_metric());
        Self {
            inner: Arc::new(Inner {
                settings,
                consents,
                consents_loaded: AtomicBool::new(false),
                memberships: MembershipStore::new(),
                decisions,
            }),
        }
    }

    pub fn settings(&self) -> &AccessSettings {
        &self.inner.settings
    }

    pub fn consents(&self) -> &ConsentStore {
        &self.inner.consents
    }

    /// The replica of memberships; until it is marked loaded, consent decisions are 503.
    pub fn memberships(&self) -> &MembershipStore {
        &self.inner.memberships
    }

    /// Call once the consent snapshot is loaded; until then compartment decisions are 503.
    pub fn mark_consents_loaded(&self) {
        self.inner.consents_loaded.store(true, Ordering::SeqCst);
    }

    pub fn consents_loaded(&self) -> bool {
        self.inner.consents_loaded.load(Ordering::SeqCst)
    }

    /// Prometheus collectors for the service's registry.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.inner.decisions.clone())]
    }

    fn count(&self, decision: Decision) -> Decision {
        let effect = match decision.effect {
            Effect::Permit if decision.is_break_glass() => "break_glass",
            Effect::Permit => "permit",
            Effect::Deny => "deny",
        };
        self.inner
            .decisions
            .with_label_values(&[effect, decision.basis.code()])
            .inc();
        decision
    }

    /// May `caller` do `interaction` on `target`? Err only when the kernel cannot decide yet.
    pub fn decide(
        &self,
        caller: &Caller,
        interaction: Interaction,
        target: &Target<'_>,
    ) -> Result<Decision, AccessError> {
        let decision = match target {
            Target::Unowned { resource_type } => self.unowned(caller, interaction, resource_type),
            Target::Compartment(t) => self.compartment(caller, interaction, t)?,
        };
        Ok(self.count(decision))
    }

    /// May `caller` change who holds a patient's record from `from` to `to`? Only the current
    /// custodian's staff, for treatment or operations, may hand a record on; a record nobody
    /// holds may be taken only by the caller's own organisation (the write itself still needs
    /// the caller's right to correct it).
    pub fn decide_custody_change(
        &self,
        caller: &Caller,
        from: Option<&OrganizationRef>,
        to: Option<&OrganizationRef>,
    ) -> Decision {
        let own = caller.organization();
        let permitted = match from {
            Some(from) => self.custodian_may_act(caller) == Some(from),
            None => to.is_some() && to == own,
        };
        let decision = if permitted && matches!(caller.role(), Role::Practitioner | Role::Service) {
            Decision::permit(Basis::Custodian, vec![])
        } else {
            Decision::deny(
                Basis::Custody,
                vec![],
                "only the organisation holding the record may change Patient.managingOrganization",
            )
        };
        self.count(decision)
    }

    /// May `caller` erase `patient`'s record (GDPR art. 17: her data keys destroyed, her index
    /// purged)? Only the patient herself (her token names her, its scopes reach her Patient,
    /// no break-glass), or an administrator whose scopes grant deleting Patients. Nobody else:
    /// not her custodian's staff, whose duty to keep the record is not hers to waive for her.
    pub fn decide_erasure(&self, caller: &Caller, patient: &PatientRef) -> Decision {
        let decision = match caller.role() {
            _ if caller.asks_break_glass() => Decision::deny(
                Basis::BreakGlassRefused,
                vec![],
                "break-glass is for reading in emergencies, never for erasing",
            ),
            Role::Patient if caller.own_patient() != Some(patient) => Decision::deny(
                Basis::Role,
                vec![],
                "patients may erase their own record only",
            ),
            // Her own token must carry the delete permission on her Patient, which no default
            // grant does: reading her record is not erasing it.
            Role::Patient
                if !scope_allows(caller, Interaction::Delete, "Patient", Some(patient)) =>
            {
                scope_denial(Interaction::Delete, "Patient")
            }
            Role::Patient => Decision::permit(Basis::OwnRecord, vec![]),
            Role::Admin if !scope_allows(caller, Interaction::Delete, "Patient", None) => {
                scope_denial(Interaction::Delete, "Patient")
            }
            Role::Admin => Decision::permit(Basis::Role, vec![]),
            _ => Decision::deny(
                Basis::Role,
                vec![],
                "only the patient herself or an administrator may erase a patient's record",
            ),
        };
        self.count(decision)
    }

    /// The compartments a search of `resource_type` naming no single patient may return.
    pub fn visibility(
        &self,
        caller: &Caller,
        resource_type: &str,
    ) -> Result<Visibility, AccessError> {
        let interaction = Interaction::Search;
        if !scope_allows(caller, interaction, resource_type, None) {
            return Ok(Visibility::Denied(
                self.count(scope_denial(interaction, resource_type)),
            ));
        }
        if caller.asks_break_glass() {
            return Ok(Visibility::Denied(self.count(Decision::deny(
                Basis::BreakGlassRefused,
                vec![],
                "break-glass is for one patient at a time: name the patient in the search",
            ))));
        }
        let scope = match caller.role() {
            Role::Admin | Role::Auditor => PatientScope {
                unowned: true,
                ..PatientScope::default()
            },
            Role::Patient => PatientScope {
                unowned: true,
                included: caller.own_patient().cloned().into_iter().collect(),
                ..PatientScope::default()
            },
            Role::Practitioner | Role::Service => {
                self.require_consents()?;
                let view = self
                    .inner
                    .memberships
                    .view(caller.actor_references(), Utc::now());
                let verdicts = self.inner.consents.scope(&ScopeRequest {
                    actors: view.actors(),
                    membership: &view,
                    purpose: caller.purpose.as_str(),
                    action: interaction.consent_action(),
                    resource_type,
                    at: Utc::now(),
                });
                // Its read lock is released before the next view is taken (no nested locks).
                drop(view);
                let parse = |refs: Vec<String>| -> Vec<PatientRef> {
                    refs.iter()
                        .filter_map(|p| PatientRef::parse(p).ok())
                        .collect()
                };
                let custodian = self.custodian_may_act(caller).cloned();
                let mut excluded = parse(verdicts.deny);
                let undetermined = parse(verdicts.undetermined);
                let conditional = self.conditional_compartments(
                    caller,
                    resource_type,
                    &undetermined,
                    custodian.is_some(),
                );
                excluded.extend(undetermined);
                PatientScope {
                    unowned: true,
                    custodian,
                    excluded,
                    included: parse(verdicts.permit),
                    conditional,
                }
            }
        };
        Ok(Visibility::Visible {
            scope,
            decision: self.count(Decision::permit(Basis::Search, vec![])),
        })
    }

    /// A search naming one patient: her decision, or, when her consents answer by the data's
    /// facts, her compartment with the conditions (so the search sees exactly what reads by id
    /// of each resource would). `target.facts` is type-level.
    pub fn search_patient(
        &self,
        caller: &Caller,
        target: &CompartmentTarget<'_>,
    ) -> Result<PatientVisibility, AccessError> {
        let decision = self.decide(
            caller,
            Interaction::Search,
            &Target::Compartment(target.clone()),
        )?;
        if decision.permitted() || decision.basis != Basis::Undetermined {
            return Ok(PatientVisibility::Decided(decision));
        }
        let held = target.custodian.is_some() && self.custodian_may_act(caller) == target.custodian;
        let mut conditional = self.conditional_compartments(
            caller,
            target.facts.resource_type,
            std::slice::from_ref(target.patient),
            held,
        );
        let Some(mut compartment) = conditional.pop() else {
            return Ok(PatientVisibility::Decided(decision));
        };
        // Her custodian is known here: fold the custodian rule into `visible`.
        compartment.visible = Condition::or(
            compartment.visible,
            std::mem::replace(&mut compartment.held, Condition::False),
        );
        let consents = compartment.consents.clone();
        Ok(PatientVisibility::Conditional {
            scope: PatientScope {
                unowned: true,
                excluded: vec![target.patient.clone()],
                conditional: vec![compartment],
                ..PatientScope::default()
            },
            decision: self.count(Decision::permit(Basis::Search, consents)),
        })
    }

    /// The conditions under which each of `patients` (whose consents answer Undetermined at
    /// type level) has a resource visible. `held`: the custodian rule applies to the caller
    /// for them. Patients with nothing visible are left out.
    fn conditional_compartments(
        &self,
        caller: &Caller,
        resource_type: &str,
        patients: &[PatientRef],
        held: bool,
    ) -> Vec<ConditionalCompartment> {
        let view = self
            .inner
            .memberships
            .view(caller.actor_references(), Utc::now());
        let request = ScopeRequest {
            actors: view.actors(),
            membership: &view,
            purpose: caller.purpose.as_str(),
            action: Interaction::Search.consent_action(),
            resource_type,
            at: Utc::now(),
        };
        patients
            .iter()
            .filter_map(|patient| {
                let answer = self.inner.consents.conditional(patient.as_str(), &request);
                let held = if held {
                    answer.not_applicable
                } else {
                    Condition::False
                };
                (!(answer.permit.is_false() && held.is_false())).then(|| ConditionalCompartment {
                    patient: patient.clone(),
                    visible: answer.permit,
                    held,
                    consents: answer.consents,
                })
            })
            .collect()
    }

    fn require_consents(&self) -> Result<(), AccessError> {
        if !self.consents_loaded() {
            Err(AccessError::Unavailable(
                "consents are not loaded yet; try again shortly".into(),
            ))
        } else if !self.inner.memberships.is_loaded() {
            // Without memberships a deny naming a care team would miss its members.
            Err(AccessError::Unavailable(
                "memberships are not loaded yet; try again shortly".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// The caller's organisation, when the custodian rule lets it act on what it holds.
    fn custodian_may_act<'c>(&self, caller: &'c Caller) -> Option<&'c OrganizationRef> {
        (self.inner.settings.mode == CustodianMode::Custodian
            && caller.purpose.is_treatment_or_operations())
        .then(|| caller.organization())
        .flatten()
    }

    fn unowned(&self, caller: &Caller, interaction: Interaction, resource_type: &str) -> Decision {
        if !scope_allows(caller, interaction, resource_type, None) {
            return scope_denial(interaction, resource_type);
        }
        if interaction.writes()
            && !matches!(
                caller.role(),
                Role::Practitioner | Role::Service | Role::Admin
            )
        {
            return Decision::deny(
                Basis::Role,
                vec![],
                format!(
                    "the {} role cannot write {resource_type} resources",
                    caller.role().as_str()
                ),
            );
        }
        Decision::permit(Basis::Unowned, vec![])
    }

    fn compartment(
        &self,
        caller: &Caller,
        interaction: Interaction,
        target: &CompartmentTarget<'_>,
    ) -> Result<Decision, AccessError> {
        let resource_type = target.facts.resource_type;
        // The type and the permission; a patient's scopes reach only her own compartment,
        // which the role check below enforces (another patient's data is "not yours", not a
        // malformed request).
        if !scope_allows(caller, interaction, resource_type, None) {
            return Ok(scope_denial(interaction, resource_type));
        }
        match caller.role() {
            Role::Admin | Role::Auditor => {
                return Ok(Decision::deny(
                    Basis::Role,
                    vec![],
                    format!(
                        "the {} role has no access to patient data",
                        caller.role().as_str()
                    ),
                ))
            }
            Role::Patient => {
                return Ok(if caller.asks_break_glass() {
                    Decision::deny(
                        Basis::BreakGlassRefused,
                        vec![],
                        "break-glass is for practitioners",
                    )
                } else if interaction.writes() {
                    Decision::deny(
                        Basis::Role,
                        vec![],
                        "patients do not write clinical records here",
                    )
                } else if caller.own_patient() == Some(target.patient) {
                    Decision::permit(Basis::OwnRecord, vec![])
                } else {
                    Decision::deny(Basis::Role, vec![], "patients see their own record only")
                })
            }
            Role::Practitioner | Role::Service => {}
        }
        if caller.asks_break_glass() && caller.role() != Role::Practitioner {
            return Ok(Decision::deny(
                Basis::BreakGlassRefused,
                vec![],
                "break-glass is for practitioners",
            ));
        }
        self.require_consents()?;
        let at = Utc::now();
        let view = self.inner.memberships.view(caller.actor_references(), at);
        let request = ConsentRequest {
            patient: target.patient.as_str(),
            actors: view.actors(),
            membership: &view,
            purpose: caller.purpose.as_str(),
            action: interaction.consent_action(),
            resource: target.facts.clone(),
            at,
        };
        let held = target.custodian.is_some() && self.custodian_may_act(caller) == target.custodian;
        let verdict = match self.inner.consents.evaluate(&request) {
            // E.g. a permit naming a container whose members are unknown: it admits no one by
            // itself, but it cannot deny either, so the custodian still acts on what it holds.
            ConsentVerdict::Undetermined { .. }
                if held && !self.inner.consents.may_deny(&request) =>
            {
                ConsentVerdict::NotApplicable
            }
            verdict => verdict,
        };
        drop(view);
        let decision = match verdict {
            ConsentVerdict::Deny { consents } => Decision::deny(
                Basis::ConsentDeny,
                consents,
                "the patient's consent denies this access",
            ),
            ConsentVerdict::Permit { consents } => Decision::permit(Basis::Consent, consents),
            ConsentVerdict::Undetermined { consents } => Decision::deny(
                Basis::Undetermined,
                consents,
                "the patient's consent depends on details of the data, or on memberships, that are not known here",
            ),
            ConsentVerdict::NotApplicable => match target.custodian {
                None => Decision::deny(
                    Basis::UnknownPatient,
                    vec![],
                    "no permit of the patient covers this access",
                ),
                Some(custodian) if self.custodian_may_act(caller) == Some(custodian) => {
                    Decision::permit(Basis::Custodian, vec![])
                }
                Some(_) => Decision::deny(
                    Basis::NoPermit,
                    vec![],
                    format!(
                        "no permit of the patient covers this access for purpose {}; ask the patient for one",
                        caller.purpose.as_str()
                    ),
                ),
            },
        };
        if decision.permitted() {
            return Ok(decision);
        }
        // Break-glass: a practitioner's read of one patient's data, with a stated reason, for
        // (emergency) treatment: it is recorded as ETREAT, so no other purpose may claim it.
        match (&caller.break_glass, interaction.writes()) {
            (Some(_), false) if interaction == Interaction::Export => Ok(Decision::deny(
                Basis::BreakGlassRefused,
                decision.consents,
                "break-glass opens one patient's record for emergency care, never a bulk export",
            )),
            (Some(_), false) if !matches!(caller.purpose.as_str(), "TREAT" | "ETREAT") => {
                Ok(Decision::deny(
                    Basis::BreakGlassRefused,
                    decision.consents,
                    "break-glass is for emergency treatment (purpose TREAT or ETREAT)",
                ))
            }
            (Some(reason), false) => Ok(Decision {
                effect: Effect::Permit,
                basis: Basis::BreakGlass,
                consents: decision.consents,
                break_glass: Some(reason.clone()),
                explanation: String::new(),
            }),
            _ => Ok(decision),
        }
    }
}

/// Whether the token's scopes grant `interaction` on `resource_type`. The scopes a role's
/// tokens are read with: a patient's `patient/` scopes reach only her own compartment (when
/// `patient` is given); staff use `user/`, backend systems and administrators `system/`.
pub fn scope_allows(
    caller: &Caller,
    interaction: Interaction,
    resource_type: &str,
    patient: Option<&PatientRef>,
) -> bool {
    let permission = interaction.permission();
    match caller.role() {
        Role::Patient => {
            caller
                .scopes
                .allows(Context::Patient, resource_type, permission)
                && patient.is_none_or(|p| caller.own_patient() == Some(p))
        }
        Role::Practitioner | Role::Auditor => {
            caller
                .scopes
                .allows(Context::User, resource_type, permission)
        }
        Role::Service | Role::Admin => {
            caller
                .scopes
                .allows(Context::System, resource_type, permission)
        }
    }
}

/// The denial for a token whose scopes do not grant the interaction.
pub fn scope_denial(interaction: Interaction, resource_type: &str) -> Decision {
    Decision::deny(
        Basis::Scope,
        vec![],
        format!(
            "the token's scopes do not grant {:?} on {resource_type}",
            interaction.permission()
        ),
    )
}

/// Metric options above are static and valid; this is never reached.
#[cold]
fn unreachable_metric() -> IntCounterVec {
    IntCounterVec::new(
        Opts::new("access_decisions_fallback", "unused"),
        &["effect", "basis"],
    )
    .unwrap_or_else(|_| std::process::abort())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::{BreakGlassReason, Purpose};
    use custodian_auth::Claims;
    use custodian_policy::{parse::Consent, ConsentChange};
    use serde_json::json;

    fn caller(role: Role, org: Option<&str>, scope: &str) -> Caller {
        Caller::from_claims(Claims {
            iss: "i".into(),
            sub: "u".into(),
            aud: "custodian".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            role,
            organization: org.map(str::to_string),
            department: None,
            practitioner: Some("Practitioner/p1".into()),
            patient: (role == Role::Patient).then(|| "Patient/alice".to_string()),
            scope: scope.into(),
            client_id: None,
        })
    }

    fn kernel(mode: CustodianMode, provision: Option<serde_json::Value>) -> Kernel {
        let store = ConsentStore::new();
        if let Some(provision) = provision {
            let consent = json!({"resourceType": "Consent", "id": "c1", "status": "active",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "patient": {"reference": "Patient/alice"}, "provision": provision});
            store.apply(ConsentChange {
                consent: "Consent/c1".into(),
                patient: "Patient/alice".into(),
                version: 1,
                consent_policy: Some(Consent::parse(&consent).unwrap()),
            });
        }
        let kernel = Kernel::new(
            AccessSettings {
                mode,
                ..AccessSettings::default()
            },
            store,
        );
        kernel.mark_consents_loaded();
        kernel.memberships().mark_loaded();
        kernel
    }

    fn permit_h2() -> serde_json::Value {
        json!({"type": "permit", "actor": [{"role": {"coding": [{"code": "IRCP"}]},
               "reference": {"reference": "Organization/h2"}}]})
    }

    fn deny_all() -> serde_json::Value {
        json!({"type": "deny"})
    }

    /// Who, mode, her consent, interaction, purpose, break-glass; then the expected permit and
    /// basis.
    type Case = (
        &'static str,
        Caller,
        CustodianMode,
        Option<serde_json::Value>,
        Interaction,
        &'static str,
        bool,
        bool,
        Basis,
    );

    #[test]
    fn only_she_or_an_administrator_may_erase_her_record() {
        let k = kernel(CustodianMode::Custodian, Some(permit_h2()));
        let alice = PatientRef::parse("Patient/alice").unwrap();
        let bob = PatientRef::parse("Patient/bob").unwrap();
        let her = caller(Role::Patient, None, "patient/*.rs patient/Patient.d");
        let d = k.decide_erasure(&her, &alice);
        assert!(d.permitted() && d.basis == Basis::OwnRecord);
        assert_eq!(k.decide_erasure(&her, &bob).basis, Basis::Role);
        let narrow = caller(Role::Patient, None, "patient/Observation.rs");
        assert_eq!(k.decide_erasure(&narrow, &alice).basis, Basis::Scope);
        // Her default grant reads everything of hers and erases nothing.
        let default = caller(
            Role::Patient,
            None,
            crate::scope::role_scopes(Role::Patient),
        );
        assert_eq!(k.decide_erasure(&default, &alice).basis, Basis::Scope);
        let admin = caller(Role::Admin, None, "system/*.cruds");
        let d = k.decide_erasure(&admin, &alice);
        assert!(d.permitted() && d.basis == Basis::Role);
        let reader = caller(Role::Admin, None, "system/*.rs");
        assert!(!k.decide_erasure(&reader, &alice).permitted());
        for role in [Role::Practitioner, Role::Service, Role::Auditor] {
            let c = caller(role, Some("Organization/h1"), "user/*.cruds system/*.cruds");
            assert!(!k.decide_erasure(&c, &alice).permitted(), "{role:?}");
        }
        let mut glass = her.clone();
        glass.break_glass = BreakGlassReason::parse("emergency");
        assert_eq!(
            k.decide_erasure(&glass, &alice).basis,
            Basis::BreakGlassRefused
        );
    }

    #[test]
    fn the_policy() {
        use CustodianMode::*;
        let alice = PatientRef::parse("Patient/alice").unwrap();
        let h1 = OrganizationRef::parse("Organization/h1").unwrap();
        let practitioner = |org| caller(Role::Practitioner, Some(org), "user/*.cruds");
        let cases: Vec<Case> = vec![
            (
                "custodian reads",
                practitioner("Organization/h1"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                false,
                true,
                Basis::Custodian,
            ),
            (
                "custodian writes",
                practitioner("Organization/h1"),
                Custodian,
                None,
                Interaction::Create,
                "TREAT",
                false,
                true,
                Basis::Custodian,
            ),
            (
                "custodian markets",
                practitioner("Organization/h1"),
                Custodian,
                None,
                Interaction::Read,
                "HMARKT",
                false,
                false,
                Basis::NoPermit,
            ),
            (
                "custodian, opt-in",
                practitioner("Organization/h1"),
                OptIn,
                None,
                Interaction::Read,
                "TREAT",
                false,
                false,
                Basis::NoPermit,
            ),
            (
                "custodian, denied by her",
                practitioner("Organization/h1"),
                Custodian,
                Some(deny_all()),
                Interaction::Read,
                "TREAT",
                false,
                false,
                Basis::ConsentDeny,
            ),
            (
                "stranger",
                practitioner("Organization/h2"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                false,
                false,
                Basis::NoPermit,
            ),
            (
                "stranger with her permit",
                practitioner("Organization/h2"),
                Custodian,
                Some(permit_h2()),
                Interaction::Read,
                "TREAT",
                false,
                true,
                Basis::Consent,
            ),
            (
                "permit, opt-in",
                practitioner("Organization/h2"),
                OptIn,
                Some(permit_h2()),
                Interaction::Read,
                "TREAT",
                false,
                true,
                Basis::Consent,
            ),
            (
                "stranger breaks the glass",
                practitioner("Organization/h2"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                true,
                true,
                Basis::BreakGlass,
            ),
            (
                "break-glass over her deny",
                practitioner("Organization/h2"),
                Custodian,
                Some(deny_all()),
                Interaction::Read,
                "ETREAT",
                true,
                true,
                Basis::BreakGlass,
            ),
            (
                "break-glass to write",
                practitioner("Organization/h2"),
                Custodian,
                None,
                Interaction::Update,
                "TREAT",
                true,
                false,
                Basis::NoPermit,
            ),
            (
                "break-glass to export",
                practitioner("Organization/h2"),
                Custodian,
                None,
                Interaction::Export,
                "TREAT",
                true,
                false,
                Basis::BreakGlassRefused,
            ),
            (
                "the custodian exports",
                practitioner("Organization/h1"),
                Custodian,
                None,
                Interaction::Export,
                "TREAT",
                false,
                true,
                Basis::Custodian,
            ),
            (
                "break-glass to market",
                practitioner("Organization/h2"),
                Custodian,
                None,
                Interaction::Read,
                "HMARKT",
                true,
                false,
                Basis::BreakGlassRefused,
            ),
            (
                "service breaks the glass",
                caller(Role::Service, Some("Organization/h2"), "system/*.cruds"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                true,
                false,
                Basis::BreakGlassRefused,
            ),
            (
                "custodian's service",
                caller(Role::Service, Some("Organization/h1"), "system/*.cruds"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                false,
                true,
                Basis::Custodian,
            ),
            (
                "no scope",
                practitioner("Organization/h1").with_scope("user/Patient.r"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                false,
                false,
                Basis::Scope,
            ),
            (
                "read-only scope writes",
                practitioner("Organization/h1").with_scope("user/*.rs"),
                Custodian,
                None,
                Interaction::Create,
                "TREAT",
                false,
                false,
                Basis::Scope,
            ),
            (
                "the patient",
                caller(Role::Patient, None, "patient/*.rs"),
                Custodian,
                Some(deny_all()),
                Interaction::Read,
                "TREAT",
                false,
                true,
                Basis::OwnRecord,
            ),
            (
                "the patient writes",
                caller(Role::Patient, None, "patient/*.rs"),
                Custodian,
                None,
                Interaction::Create,
                "TREAT",
                false,
                false,
                Basis::Scope,
            ),
            (
                "admin",
                caller(Role::Admin, None, "system/*.cruds"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                false,
                false,
                Basis::Role,
            ),
            (
                "auditor",
                caller(Role::Auditor, None, "user/*.rs"),
                Custodian,
                None,
                Interaction::Read,
                "TREAT",
                false,
                false,
                Basis::Role,
            ),
        ];
        for (who, mut c, mode, consent, interaction, purpose, glass, permit, basis) in cases {
            c.purpose = Purpose::parse(purpose).unwrap();
            c.break_glass = glass.then(|| BreakGlassReason::parse("unconscious").unwrap());
            let k = kernel(mode, consent);
            let target = Target::Compartment(CompartmentTarget {
                patient: &alice,
                custodian: Some(&h1),
                facts: ResourceFacts {
                    resource_type: "Observation",
                    id: Some("o1"),
                    security_labels: Some(&[]),
                    data_time: None,
                    codes: Some(&[]),
                    references: None,
                    referrers: None,
                },
            });
            let d = k.decide(&c, interaction, &target).unwrap();
            assert_eq!((d.permitted(), d.basis), (permit, basis), "{who}");
            assert_eq!(
                d.is_break_glass(),
                permit && glass && basis == Basis::BreakGlass,
                "{who}"
            );
        }
    }

    #[test]
    fn searches_see_the_custodians_patients_and_the_permitted_ones() {
        let k = kernel(CustodianMode::Custodian, Some(permit_h2()));
        let Visibility::Visible { scope, .. } = k
            .visibility(
                &caller(Role::Practitioner, Some("Organization/h2"), "user/*.rs"),
                "Observation",
            )
            .unwrap()
        else {
            panic!("visible")
        };
        assert_eq!(
            scope.custodian.as_ref().map(|o| o.as_str()),
            Some("Organization/h2")
        );
        assert_eq!(
            scope.included,
            vec![PatientRef::parse("Patient/alice").unwrap()]
        );
        let k = kernel(CustodianMode::OptIn, Some(deny_all()));
        let Visibility::Visible { scope, .. } = k
            .visibility(
                &caller(Role::Practitioner, Some("Organization/h1"), "user/*.rs"),
                "Observation",
            )
            .unwrap()
        else {
            panic!("visible")
        };
        assert_eq!(scope.custodian, None, "opt-in: no custodian rule");
        assert_eq!(
            scope.excluded,
            vec![PatientRef::parse("Patient/alice").unwrap()]
        );
        // Break-glass needs one patient.
        let mut c = caller(Role::Practitioner, Some("Organization/h1"), "user/*.rs");
        c.break_glass = BreakGlassReason::parse("everyone");
        assert!(
            matches!(k.visibility(&c, "Observation").unwrap(), Visibility::Denied(d) if d.basis == Basis::BreakGlassRefused)
        );
        // Consents not loaded yet: no guess.
        let cold = Kernel::new(AccessSettings::default(), ConsentStore::new());
        assert!(cold
            .visibility(
                &caller(Role::Practitioner, Some("Organization/h1"), "user/*.rs"),
                "Observation"
            )
            .is_err());
    }

    /// Reads Alice's Observation as `c` under a kernel holding `provision` and `memberships`.
    fn read_with(
        provision: serde_json::Value,
        memberships: Vec<custodian_events::MembershipChange>,
        c: &Caller,
    ) -> Decision {
        let k = kernel(CustodianMode::Custodian, Some(provision));
        for m in memberships {
            k.memberships().apply(m);
        }
        let alice = PatientRef::parse("Patient/alice").unwrap();
        let h1 = OrganizationRef::parse("Organization/h1").unwrap();
        let target = Target::Compartment(CompartmentTarget {
            patient: &alice,
            custodian: Some(&h1),
            facts: ResourceFacts {
                resource_type: "Observation",
                id: Some("o1"),
                security_labels: Some(&[]),
                data_time: None,
                codes: Some(&[]),
                references: None,
                referrers: None,
            },
        });
        k.decide(c, Interaction::Read, &target).unwrap()
    }

    fn team(container: &str, known: bool, members: &[&str]) -> custodian_events::MembershipChange {
        custodian_events::MembershipChange {
            container: container.into(),
            version: 1,
            known,
            members: members
                .iter()
                .map(|m| custodian_events::Member {
                    member: m.to_string(),
                    start: None,
                    end: None,
                    organization: None,
                })
                .collect(),
        }
    }

    fn naming(kind: &str, actor: &str) -> serde_json::Value {
        json!({"type": kind, "actor": [{"role": {"coding": [{"code": "IRCP"}]},
               "reference": {"reference": actor}}]})
    }

    #[test]
    fn consents_naming_containers_reach_their_members_exactly() {
        let h1 = caller(Role::Practitioner, Some("Organization/h1"), "user/*.cruds");
        let h2 = caller(Role::Practitioner, Some("Organization/h2"), "user/*.cruds");
        let deny_ct1 = naming("deny", "CareTeam/ct1");
        // Practitioner/p1 (every test caller) is in ct1 through a nested team.
        let nested = vec![
            team("CareTeam/ct1", true, &["CareTeam/inner"]),
            team("CareTeam/inner", true, &["Practitioner/p1"]),
        ];
        let d = read_with(deny_ct1.clone(), nested, &h1);
        assert_eq!((d.permitted(), d.basis), (false, Basis::ConsentDeny));
        // Not a member: the custodian reads.
        let d = read_with(deny_ct1.clone(), vec![team("CareTeam/ct1", true, &[])], &h1);
        assert_eq!((d.permitted(), d.basis), (true, Basis::Custodian));
        // Membership unknown (never seen; a Group with actual = false): fails closed.
        let d = read_with(deny_ct1, vec![], &h1);
        assert_eq!((d.permitted(), d.basis), (false, Basis::Undetermined));
        let d = read_with(
            naming("deny", "Group/g1"),
            vec![team("Group/g1", false, &[])],
            &h1,
        );
        assert_eq!((d.permitted(), d.basis), (false, Basis::Undetermined));
        // A permit naming a team admits its members only.
        let permit = naming("permit", "CareTeam/h2team");
        let d = read_with(
            permit.clone(),
            vec![team("CareTeam/h2team", true, &["Practitioner/p1"])],
            &h2,
        );
        assert_eq!((d.permitted(), d.basis), (true, Basis::Consent));
        let d = read_with(
            permit.clone(),
            vec![team("CareTeam/h2team", true, &["Practitioner/other"])],
            &h2,
        );
        assert_eq!((d.permitted(), d.basis), (false, Basis::NoPermit));
        // Unknown: the permit admits no one, and does not shut the custodian out.
        let d = read_with(permit.clone(), vec![], &h2);
        assert_eq!((d.permitted(), d.basis), (false, Basis::Undetermined));
        let d = read_with(permit, vec![], &h1);
        assert_eq!((d.permitted(), d.basis), (true, Basis::Custodian));
        // A related person matches no caller (none is one): a deny naming one is exact.
        let d = read_with(naming("deny", "RelatedPerson/rp1"), vec![], &h1);
        assert_eq!((d.permitted(), d.basis), (true, Basis::Custodian));
    }

    #[test]
    fn searches_exclude_patients_whose_deny_reaches_the_caller_or_might() {
        let k = kernel(
            CustodianMode::Custodian,
            Some(naming("deny", "CareTeam/ct1")),
        );
        let h1 = caller(Role::Practitioner, Some("Organization/h1"), "user/*.rs");
        let excluded = |k: &Kernel| {
            let Visibility::Visible { scope, .. } = k.visibility(&h1, "Observation").unwrap()
            else {
                panic!("visible")
            };
            scope.excluded
        };
        let alice = vec![PatientRef::parse("Patient/alice").unwrap()];
        assert_eq!(excluded(&k), alice, "unknown team: fails closed");
        k.memberships()
            .apply(team("CareTeam/ct1", true, &["Practitioner/p2"]));
        assert!(excluded(&k).is_empty(), "known, without the caller");
        k.memberships().apply(custodian_events::MembershipChange {
            version: 2,
            ..team("CareTeam/ct1", true, &["Practitioner/p1"])
        });
        assert_eq!(excluded(&k), alice, "a member");
        // Memberships not loaded: no decision.
        let cold = Kernel::new(AccessSettings::default(), ConsentStore::new());
        cold.mark_consents_loaded();
        assert!(cold.visibility(&h1, "Observation").is_err());
    }

    #[test]
    fn searches_over_consents_that_depend_on_the_data_carry_their_conditions() {
        use custodian_policy::{Coding, Condition};
        let labelled = |code: &str| [Coding::new(None, code)];
        let holds = |c: &Condition, labels: &[Coding], codes: &[Coding]| {
            c.holds(&ResourceFacts {
                resource_type: "Observation",
                id: Some("o1"),
                security_labels: Some(labels),
                data_time: None,
                codes: Some(codes),
                references: None,
                referrers: None,
            })
        };
        let alice = PatientRef::parse("Patient/alice").unwrap();
        let h1 = OrganizationRef::parse("Organization/h1").unwrap();
        // Hospital2 may, except data labelled R.
        let mut except_r = permit_h2();
        except_r["provision"] = json!([{"type": "deny", "securityLabel": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}]);
        let k = kernel(CustodianMode::Custodian, Some(except_r));
        let h2 = caller(Role::Practitioner, Some("Organization/h2"), "user/*.rs");
        let Visibility::Visible { scope, .. } = k.visibility(&h2, "Observation").unwrap() else {
            panic!("visible")
        };
        assert_eq!(
            scope.excluded,
            vec![alice.clone()],
            "not by the custodian rule"
        );
        assert!(scope.included.is_empty());
        let [c] = scope.conditional.as_slice() else {
            panic!("one conditional compartment: {scope:?}")
        };
        assert_eq!(c.patient, alice);
        assert_eq!(c.consents, vec!["Consent/c1".to_string()]);
        assert!(holds(&c.visible, &[], &[]));
        assert!(holds(&c.visible, &labelled("N"), &[]));
        assert!(!holds(&c.visible, &labelled("R"), &[]));
        assert!(!holds(&c.visible, &labelled("V"), &[]));
        // Naming her: the same conditions.
        let target = CompartmentTarget {
            patient: &alice,
            custodian: Some(&h1),
            facts: ResourceFacts::of_type("Observation"),
        };
        let PatientVisibility::Conditional { scope, decision } =
            k.search_patient(&h2, &target).unwrap()
        else {
            panic!("conditional")
        };
        assert!(decision.permitted());
        assert!(scope.custodian.is_none() && scope.included.is_empty());
        assert!(holds(&scope.conditional[0].visible, &[], &[]));
        assert!(!holds(&scope.conditional[0].visible, &labelled("R"), &[]));
        // Break-glass still opens her whole compartment.
        let mut glass = h2.clone();
        glass.break_glass = BreakGlassReason::parse("unconscious");
        assert!(matches!(
            k.search_patient(&glass, &target).unwrap(),
            PatientVisibility::Decided(d) if d.basis == Basis::BreakGlass
        ));

        // Her custodian, denied one code: it sees the rest.
        let k = kernel(
            CustodianMode::Custodian,
            Some(
                json!({"type": "deny", "actor": [{"role": {"coding": [{"code": "IRCP"}]},
                "reference": {"reference": "Organization/h1"}}],
                "code": [{"coding": [{"system": "http://loinc.org", "code": "X"}]}]}),
            ),
        );
        let staff = caller(Role::Practitioner, Some("Organization/h1"), "user/*.rs");
        let Visibility::Visible { scope, .. } = k.visibility(&staff, "Observation").unwrap() else {
            panic!("visible")
        };
        let c = &scope.conditional[0];
        assert!(c.visible.is_false(), "no permit");
        let x = [Coding::new(Some("http://loinc.org"), "X")];
        let y = [Coding::new(Some("http://loinc.org"), "Y")];
        assert!(holds(&c.held, &[], &y) && !holds(&c.held, &[], &x));
        let PatientVisibility::Conditional { scope, .. } =
            k.search_patient(&staff, &target).unwrap()
        else {
            panic!("conditional")
        };
        let visible = &scope.conditional[0].visible;
        assert!(holds(visible, &[], &y) && !holds(visible, &[], &x));
        // Another organisation, not holding her record: nothing of hers.
        let other = OrganizationRef::parse("Organization/h9").unwrap();
        let elsewhere = CompartmentTarget {
            custodian: Some(&other),
            ..target.clone()
        };
        assert!(matches!(
            k.search_patient(&staff, &elsewhere).unwrap(),
            PatientVisibility::Decided(d) if !d.permitted()
        ));
    }
}
