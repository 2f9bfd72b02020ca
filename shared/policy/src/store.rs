//! The replica: every consent's current typed form, kept current from the consent stream,
//! indexed by patient (for decisions) and by the actors the root provisions name (for search
//! scopes, so a scope never scans every consent).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    condition::{partial, Condition, Conditional},
    eval::{verdict, Combine, ConsentRequest, Membership, ResourceFacts, DENY, NA, PERMIT},
    ConsentAction, ConsentVerdict, ParsedConsent,
};

/// A change to one consent, published on the consent stream and listed by the consent
/// service's snapshot. `version` orders changes: a replica ignores one older than what it
/// holds, so a stale change never resurrects a revoked consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChange {
    /// `Consent/<id>`.
    pub consent: String,
    /// `Patient/<id>`.
    pub patient: String,
    pub version: i64,
    /// The consent as the engine enforces it; `None` when revoked, deleted or not active.
    pub consent_policy: Option<ParsedConsent>,
}

/// A type-level question for a search: which patients' consents admit these actors to this
/// type for this purpose and action?
#[derive(Debug, Clone, Copy)]
pub struct ScopeRequest<'a> {
    pub actors: &'a [String],
    /// Containers the caller might be in without being listed in `actors`.
    pub membership: &'a dyn Membership,
    pub purpose: &'a str,
    pub action: ConsentAction,
    pub resource_type: &'a str,
    pub at: DateTime<Utc>,
}

/// Patients (`Patient/<id>`, sorted) whose consents answer Permit, Deny or Undetermined at
/// type level. A patient not listed: NotApplicable (no consent of hers speaks to the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientVerdicts {
    pub permit: Vec<String>,
    pub deny: Vec<String>,
    pub undetermined: Vec<String>,
}

#[derive(Clone, Default)]
pub struct ConsentStore {
    inner: Arc<RwLock<Inner>>,
}

struct Entry {
    version: i64,
    /// The consent in force, if it is.
    policy: Option<Arc<ParsedConsent>>,
}

#[derive(Default)]
struct Inner {
    /// Every consent ever seen (revoked ones too, so stale versions are recognised).
    entries: HashMap<String, Entry>,
    /// Consents in force, by patient.
    by_patient: HashMap<String, Vec<Arc<ParsedConsent>>>,
    /// Consents in force whose root provision names this actor.
    by_actor: HashMap<String, HashSet<String>>,
    /// Consents in force whose root provision names no actor (they speak to everyone).
    any_actor: HashSet<String>,
    /// How many consents are in force.
    in_force: usize,
}

impl Inner {
    fn unindex(&mut self, consent: &str, policy: &ParsedConsent) {
        self.in_force = self.in_force.saturating_sub(1);
        if let Some(list) = self.by_patient.get_mut(policy.patient()) {
            list.retain(|p| p.reference() != Some(consent));
            if list.is_empty() {
                self.by_patient.remove(policy.patient());
            }
        }
        match root_actors(policy) {
            Some(actors) if !actors.is_empty() => {
                for actor in actors {
                    if let Some(set) = self.by_actor.get_mut(actor) {
                        set.remove(consent);
                        if set.is_empty() {
                            self.by_actor.remove(actor);
                        }
                    }
                }
            }
            _ => {
                self.any_actor.remove(consent);
            }
        }
    }

    fn index(&mut self, consent: &str, policy: &Arc<ParsedConsent>) {
        self.in_force += 1;
        self.by_patient
            .entry(policy.patient().to_string())
            .or_default()
            .push(Arc::clone(policy));
        match root_actors(policy) {
            Some(actors) if !actors.is_empty() => {
                for actor in actors {
                    self.by_actor
                        .entry(actor.to_string())
                        .or_default()
                        .insert(consent.to_string());
                }
            }
            _ => {
                self.any_actor.insert(consent.to_string());
            }
        }
    }
}

/// The actor references the root provision names (a provision applies only when its parent
/// does, so a consent speaks to an actor only if its root does).
fn root_actors(policy: &ParsedConsent) -> Option<Vec<&str>> {
    policy
        .provision()
        .map(|root| root.actors().iter().map(|a| a.reference()).collect())
}

impl ConsentStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a change unless the store already holds a newer version of that consent.
    /// Returns whether it was applied.
    pub fn apply(&self, change: ConsentChange) -> bool {
        let Ok(mut inner) = self.inner.write() else {
            return false;
        };
        if let Some(entry) = inner.entries.get(&change.consent) {
            if entry.version > change.version {
                return false;
            }
        }
        if let Some(old) = inner.entries.remove(&change.consent).and_then(|e| e.policy) {
            inner.unindex(&change.consent, &old);
        }
        let policy = change
            .consent_policy
            .filter(ParsedConsent::in_force)
            .map(|p| Arc::new(p.with_reference(change.consent.clone())));
        if let Some(policy) = &policy {
            inner.index(&change.consent, policy);
        }
        inner.entries.insert(
            change.consent,
            Entry {
                version: change.version,
                policy,
            },
        );
        true
    }

    /// The patient's consents' answer. A replica whose lock was poisoned answers
    /// `Undetermined` (never a permit).
    pub fn evaluate(&self, req: &ConsentRequest<'_>) -> ConsentVerdict {
        let Ok(inner) = self.inner.read() else {
            return ConsentVerdict::Undetermined {
                consents: Vec::new(),
            };
        };
        match inner.by_patient.get(req.patient) {
            None => ConsentVerdict::NotApplicable,
            Some(list) => verdict(
                list.iter()
                    .map(|c| (c.reference().unwrap_or("Consent/?"), c.outcomes(req))),
            ),
        }
    }

    /// Whether the patient's consents could answer Deny (also when the verdict is
    /// `Undetermined`: one that can only be Permit or NotApplicable cannot deny).
    pub fn may_deny(&self, req: &ConsentRequest<'_>) -> bool {
        let Ok(inner) = self.inner.read() else {
            return true;
        };
        inner.by_patient.get(req.patient).is_some_and(|list| {
            let mut all = Combine::default();
            for c in list {
                all.add(c.outcomes(req));
            }
            all.result() & DENY != 0
        })
    }

    /// For a search: which patients' consents answer what for these actors, at type level
    /// (nothing known about the instances). Looks only at consents whose root names one of the
    /// actors or no actor at all.
    pub fn scope(&self, req: &ScopeRequest<'_>) -> PatientVerdicts {
        let Ok(inner) = self.inner.read() else {
            return PatientVerdicts::default();
        };
        let mut seen: HashSet<&str> = HashSet::new();
        let mut by_patient: BTreeMap<&str, Combine> = BTreeMap::new();
        let candidates = req
            .actors
            .iter()
            .filter_map(|a| inner.by_actor.get(a))
            .flatten()
            .chain(inner.any_actor.iter())
            // Consents naming a container the caller might be in: their answer for it may be
            // Undetermined (a deny that might apply), which a scope must not miss.
            .chain(
                inner
                    .by_actor
                    .iter()
                    .filter(|(actor, _)| req.membership.uncertain(actor))
                    .flat_map(|(_, consents)| consents),
            );
        for consent in candidates {
            if !seen.insert(consent.as_str()) {
                continue;
            }
            let Some(policy) = inner.entries.get(consent).and_then(|e| e.policy.as_ref()) else {
                continue;
            };
            let req = ConsentRequest {
                patient: policy.patient(),
                actors: req.actors,
                membership: req.membership,
                purpose: req.purpose,
                action: req.action,
                resource: ResourceFacts::of_type(req.resource_type),
                at: req.at,
            };
            by_patient
                .entry(policy.patient())
                .or_default()
                .add(policy.outcomes(&req));
        }
        let mut out = PatientVerdicts::default();
        for (patient, combined) in by_patient {
            match combined.result() {
                NA => {}
                PERMIT => out.permit.push(patient.to_string()),
                DENY => out.deny.push(patient.to_string()),
                _ => out.undetermined.push(patient.to_string()),
            }
        }
        out
    }

    /// The patient's consents in force.
    pub fn consents_of(&self, patient: &str) -> Vec<ParsedConsent> {
        self.inner
            .read()
            .map(|inner| {
                inner
                    .by_patient
                    .get(patient)
                    .map(|list| list.iter().map(|c| ParsedConsent::clone(c)).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// How many consents are in force.
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.in_force).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// For a search over one patient whose answer depends on the data: her consents' verdicts
    /// as formulas over the instance facts ([`crate::condition::partial`]). A replica whose
    /// lock was poisoned answers nothing as Permit or NotApplicable.
    pub fn conditional(&self, patient: &str, req: &ScopeRequest<'_>) -> Conditional {
        let Ok(inner) = self.inner.read() else {
            return Conditional {
                permit: Condition::False,
                deny: Condition::True,
                not_applicable: Condition::False,
                consents: Vec::new(),
            };
        };
        let consents = inner.by_patient.get(patient);
        partial(
            consents.into_iter().flatten().map(|c| c.as_ref()),
            &ConsentRequest {
                patient,
                actors: req.actors,
                membership: req.membership,
                purpose: req.purpose,
                action: req.action,
                resource: ResourceFacts::of_type(req.resource_type),
                at: req.at,
            },
        )
    }
}
