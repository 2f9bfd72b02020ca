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
//! the store turns into SQL, so counts and pages are computed over visible data only.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use chrono::Utc;
use custodian_auth::Role;
use custodian_policy::{ConsentRequest, ConsentStore, ConsentVerdict, ResourceFacts, ScopeRequest};
use prometheus::{IntCounterVec, Opts};

use crate::{
    caller::Caller,
    decision::{Basis, Decision, Effect},
    error::AccessError,
    interaction::Interaction,
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
    pub excluded: Vec<PatientRef>,
    /// Compartments visible whoever holds them (a consent permits, or the patient's own).
    pub included: Vec<PatientRef>,
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
                let actors = caller.actor_references();
                let verdicts = self.inner.consents.scope(&ScopeRequest {
                    actors: &actors,
                    purpose: caller.purpose.as_str(),
                    action: interaction.consent_action(),
                    resource_type,
                    at: Utc::now(),
                });
                let parse = |refs: Vec<String>| -> Vec<PatientRef> {
                    refs.iter()
                        .filter_map(|p| PatientRef::parse(p).ok())
                        .collect()
                };
                let mut excluded = parse(verdicts.deny);
                excluded.extend(parse(verdicts.undetermined));
                PatientScope {
                    unowned: true,
                    custodian: self.custodian_may_act(caller).cloned(),
                    excluded,
                    included: parse(verdicts.permit),
                }
            }
        };
        Ok(Visibility::Visible {
            scope,
            decision: self.count(Decision::permit(Basis::Search, vec![])),
        })
    }

    fn require_consents(&self) -> Result<(), AccessError> {
        if self.consents_loaded() {
            Ok(())
        } else {
            Err(AccessError::Unavailable(
                "consents are not loaded yet; try again shortly".into(),
            ))
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
        let actors = caller.actor_references();
        let verdict = self.inner.consents.evaluate(&ConsentRequest {
            patient: target.patient.as_str(),
            actors: &actors,
            purpose: caller.purpose.as_str(),
            action: interaction.consent_action(),
            resource: target.facts.clone(),
            at: Utc::now(),
        });
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
                "the patient's consent depends on details of the data that are not known here",
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
}
