//! Who may touch what: deny unless a consent or a role allows, and the access event each
//! decision yields.
//!
//! - Resources outside any patient compartment (Organization, Practitioner, Medication ...):
//!   any authenticated role reads them; practitioners, services and admins write them.
//! - Resources in a patient's compartment: a practitioner or service may create (collect) any;
//!   reading, searching (`access`) and updating or deleting (`correct`) need a permit from the
//!   consent replica for its organisation or practitioner reference and purpose of use.
//!   Break-glass (practitioners only) permits with purpose ETREAT and is flagged. A patient
//!   reads and searches their own compartment and writes nothing. Admins and auditors see no PHI.

use actix_web::HttpRequest;
use chrono::Utc;
use custodian_auth::{Claims, Role};
use custodian_events::{AccessAction, AccessEvent, AccessOutcome, Actor, Source};
use custodian_fhir::FhirError;
use custodian_policy::{AccessRequest, ConsentStore};

use crate::{consent::Replica, metrics::RecordsMetrics};

pub const PURPOSE_HEADER: &str = "x-purpose-of-use";
pub const BREAK_GLASS_HEADER: &str = "x-break-glass";
pub const DEFAULT_PURPOSE: &str = "TREAT";
pub const BREAK_GLASS_PURPOSE: &str = "ETREAT";

/// A FHIR interaction, as access control and the ledger see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    Read,
    Search,
    Create,
    Update,
    Delete,
}

impl Interaction {
    pub fn event_action(&self) -> AccessAction {
        match self {
            Interaction::Read => AccessAction::Read,
            Interaction::Search => AccessAction::Search,
            Interaction::Create => AccessAction::Create,
            Interaction::Update => AccessAction::Update,
            Interaction::Delete => AccessAction::Delete,
        }
    }

    /// The consent action code (`provision.action`).
    pub fn consent_action(&self) -> &'static str {
        match self {
            Interaction::Read | Interaction::Search => "access",
            Interaction::Create => "collect",
            Interaction::Update | Interaction::Delete => "correct",
        }
    }

    fn writes(&self) -> bool {
        matches!(
            self,
            Interaction::Create | Interaction::Update | Interaction::Delete
        )
    }
}

/// The authenticated caller of one request, with its declared purpose and origin.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub purpose: String,
    /// The break-glass reason, when the header was sent.
    pub break_glass: Option<String>,
    pub source: Source,
}

fn valid_purpose(p: &str) -> bool {
    (1..=32).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Caller {
    pub fn from_request(req: &HttpRequest, claims: Claims) -> Result<Self, FhirError> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let purpose = match header(PURPOSE_HEADER) {
            None | Some("") => DEFAULT_PURPOSE.to_string(),
            Some(p) if valid_purpose(p) => p.to_string(),
            Some(_) => {
                return Err(FhirError::BadRequest(
                    "X-Purpose-Of-Use must be a PurposeOfUse code".into(),
                ))
            }
        };
        let break_glass = header(BREAK_GLASS_HEADER)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(500).collect());
        let ip = header("x-forwarded-for")
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
        let user_agent = header("user-agent").map(|v| v.chars().take(300).collect());
        Ok(Self {
            claims,
            purpose,
            break_glass,
            source: Source { ip, user_agent },
        })
    }

    /// The references the caller is known by in consents.
    pub fn actors(&self) -> Vec<String> {
        [
            self.claims.organization.clone(),
            self.claims.practitioner.clone(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn own_patient(&self) -> Option<String> {
        self.claims.patient.as_ref().map(|p| {
            if p.starts_with("Patient/") {
                p.clone()
            } else {
                format!("Patient/{p}")
            }
        })
    }

    /// Whether this request invokes break-glass (only practitioners can).
    pub fn breaks_glass(&self) -> bool {
        self.break_glass.is_some() && self.claims.role == Role::Practitioner
    }
}

/// The answer for one patient (or for no patient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Permit { break_glass: bool },
    Deny(String),
}

impl Verdict {
    pub fn permitted(&self) -> bool {
        matches!(self, Verdict::Permit { .. })
    }
}

/// Decides with the consent replica.
#[derive(Clone)]
pub struct AccessControl {
    replica: Replica,
    metrics: RecordsMetrics,
}

impl AccessControl {
    pub fn new(replica: Replica, metrics: RecordsMetrics) -> Self {
        Self { replica, metrics }
    }

    pub fn store(&self) -> &ConsentStore {
        self.replica.store()
    }

    /// May `caller` do `interaction` on a `resource_type` in `patient`'s compartment (or outside
    /// any compartment when `patient` is None)? Err when the replica is not loaded yet.
    pub fn decide(
        &self,
        caller: &Caller,
        patient: Option<&str>,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<Verdict, FhirError> {
        let verdict = self.decide_inner(caller, patient, resource_type, interaction)?;
        let label = match &verdict {
            Verdict::Permit { break_glass: true } => "break_glass",
            Verdict::Permit { .. } => "permit",
            Verdict::Deny(_) => "deny",
        };
        self.metrics
            .consent_decisions
            .with_label_values(&[label])
            .inc();
        Ok(verdict)
    }

    fn decide_inner(
        &self,
        caller: &Caller,
        patient: Option<&str>,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<Verdict, FhirError> {
        let role = caller.claims.role;
        if caller.break_glass.is_some() && role != Role::Practitioner {
            return Ok(Verdict::Deny(
                "break-glass is for practitioners only".into(),
            ));
        }
        let Some(patient) = patient else {
            return Ok(match (interaction.writes(), role) {
                (false, _) => Verdict::Permit { break_glass: false },
                (true, Role::Practitioner | Role::Service | Role::Admin) => {
                    Verdict::Permit { break_glass: false }
                }
                (true, _) => Verdict::Deny(format!(
                    "the {} role cannot write {resource_type} resources",
                    role.as_str()
                )),
            });
        };
        match role {
            Role::Admin | Role::Auditor => Ok(Verdict::Deny(format!(
                "the {} role has no access to patient data",
                role.as_str()
            ))),
            Role::Patient => {
                if interaction.writes() {
                    Ok(Verdict::Deny("patients cannot write records here".into()))
                } else if caller.own_patient().as_deref() == Some(patient) {
                    Ok(Verdict::Permit { break_glass: false })
                } else {
                    Ok(Verdict::Deny(
                        "patients may only see their own record".into(),
                    ))
                }
            }
            Role::Practitioner | Role::Service => {
                if interaction == Interaction::Create {
                    return Ok(Verdict::Permit { break_glass: false });
                }
                if caller.breaks_glass() {
                    return Ok(Verdict::Permit { break_glass: true });
                }
                if !self.replica.is_loaded() {
                    return Err(FhirError::Unavailable(
                        "the consent replica is not loaded yet".into(),
                    ));
                }
                let actors = caller.actors();
                let decision = self.replica.store().decide(&AccessRequest {
                    patient,
                    actors: &actors,
                    purpose: &caller.purpose,
                    resource_type,
                    action: interaction.consent_action(),
                    at: Utc::now(),
                });
                Ok(if decision.permit {
                    Verdict::Permit { break_glass: false }
                } else {
                    // The message names no patient: the caller may not even learn whose record it is.
                    Verdict::Deny(format!(
                        "no consent of the patient permits this access for purpose {}",
                        caller.purpose
                    ))
                })
            }
        }
    }
}

/// Builds the access event for one decision.
pub struct EventDraft<'a> {
    pub caller: &'a Caller,
    pub patient: Option<String>,
    pub interaction: Interaction,
    pub resource_type: &'a str,
    pub count: u32,
    pub outcome: AccessOutcome,
    pub break_glass: bool,
    pub confidentiality: Option<String>,
}

impl EventDraft<'_> {
    pub fn build(self) -> AccessEvent {
        let claims = &self.caller.claims;
        AccessEvent {
            id: uuid::Uuid::new_v4(),
            time: Utc::now(),
            actor: Actor {
                id: claims.sub.clone(),
                role: claims.role.as_str().to_string(),
                organization: claims.organization.clone(),
                department: claims.department.clone(),
            },
            patient: self.patient,
            action: self.interaction.event_action(),
            resource_type: Some(self.resource_type.to_string()),
            count: self.count,
            purpose: if self.break_glass {
                BREAK_GLASS_PURPOSE.to_string()
            } else {
                self.caller.purpose.clone()
            },
            outcome: self.outcome,
            break_glass: self.break_glass,
            confidentiality: self.confidentiality,
            source: self.caller.source.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custodian_policy::{ConsentChange, ConsentRule, RuleEffect};

    fn claims(role: Role) -> Claims {
        Claims {
            iss: "i".into(),
            sub: "u".into(),
            aud: "custodian".into(),
            exp: 0,
            iat: 0,
            jti: "j".into(),
            role,
            organization: Some("Organization/h1".into()),
            department: None,
            practitioner: Some("Practitioner/p1".into()),
            patient: None,
            scope: String::new(),
            client_id: None,
        }
    }

    fn caller(role: Role) -> Caller {
        Caller {
            claims: claims(role),
            purpose: "TREAT".into(),
            break_glass: None,
            source: Source::default(),
        }
    }

    fn control() -> AccessControl {
        let replica = Replica::new();
        replica.mark_loaded();
        replica.store().apply(ConsentChange {
            consent: "Consent/c1".into(),
            patient: "Patient/alice".into(),
            version: 1,
            rules: vec![ConsentRule {
                consent: "Consent/c1".into(),
                patient: "Patient/alice".into(),
                effect: RuleEffect::Permit,
                actors: vec!["Organization/h1".into()],
                purposes: vec!["TREAT".into()],
                resource_types: vec![],
                actions: vec![],
                not_before: None,
                not_after: None,
            }],
        });
        AccessControl::new(replica, RecordsMetrics::new())
    }

    #[test]
    fn practitioners_need_consent() {
        let ac = control();
        let c = caller(Role::Practitioner);
        assert!(ac
            .decide(&c, Some("Patient/alice"), "Observation", Interaction::Read)
            .unwrap()
            .permitted());
        assert!(!ac
            .decide(&c, Some("Patient/bob"), "Observation", Interaction::Read)
            .unwrap()
            .permitted());
        assert!(ac
            .decide(&c, Some("Patient/bob"), "Observation", Interaction::Create)
            .unwrap()
            .permitted());
        let mut other = c.clone();
        other.purpose = "HMARKT".into();
        assert!(!ac
            .decide(
                &other,
                Some("Patient/alice"),
                "Observation",
                Interaction::Read
            )
            .unwrap()
            .permitted());
    }

    #[test]
    fn break_glass_is_for_practitioners() {
        let ac = control();
        let mut c = caller(Role::Practitioner);
        c.break_glass = Some("unconscious".into());
        assert_eq!(
            ac.decide(&c, Some("Patient/bob"), "Observation", Interaction::Read)
                .unwrap(),
            Verdict::Permit { break_glass: true }
        );
        let mut s = caller(Role::Service);
        s.break_glass = Some("x".into());
        assert!(!ac
            .decide(&s, Some("Patient/alice"), "Observation", Interaction::Read)
            .unwrap()
            .permitted());
    }

    #[test]
    fn patients_see_their_own_only() {
        let ac = control();
        let mut c = caller(Role::Patient);
        c.claims.patient = Some("Patient/alice".into());
        assert!(ac
            .decide(&c, Some("Patient/alice"), "Observation", Interaction::Read)
            .unwrap()
            .permitted());
        assert!(!ac
            .decide(&c, Some("Patient/bob"), "Observation", Interaction::Read)
            .unwrap()
            .permitted());
        assert!(!ac
            .decide(
                &c,
                Some("Patient/alice"),
                "Observation",
                Interaction::Update
            )
            .unwrap()
            .permitted());
        c.claims.patient = Some("alice".into());
        assert!(ac
            .decide(
                &c,
                Some("Patient/alice"),
                "Observation",
                Interaction::Search
            )
            .unwrap()
            .permitted());
    }

    #[test]
    fn admins_and_auditors_see_no_phi() {
        let ac = control();
        for role in [Role::Admin, Role::Auditor] {
            let c = caller(role);
            assert!(!ac
                .decide(&c, Some("Patient/alice"), "Observation", Interaction::Read)
                .unwrap()
                .permitted());
            assert!(ac
                .decide(&c, None, "Organization", Interaction::Read)
                .unwrap()
                .permitted());
        }
        assert!(ac
            .decide(
                &caller(Role::Admin),
                None,
                "Organization",
                Interaction::Create
            )
            .unwrap()
            .permitted());
        assert!(!ac
            .decide(
                &caller(Role::Auditor),
                None,
                "Organization",
                Interaction::Create
            )
            .unwrap()
            .permitted());
    }

    #[test]
    fn unloaded_replica_is_unavailable() {
        let ac = AccessControl::new(Replica::new(), RecordsMetrics::new());
        assert!(ac
            .decide(
                &caller(Role::Practitioner),
                Some("Patient/alice"),
                "Observation",
                Interaction::Read
            )
            .is_err());
    }
}
