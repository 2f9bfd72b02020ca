//! An in-memory replica of every active consent's rules, indexed by patient.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use crate::{decide, AccessRequest, ConsentChange, ConsentRule, Decision, DecisionReason};

#[derive(Clone, Default)]
pub struct ConsentStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// consent reference -> (version, patient, rules)
    consents: HashMap<String, (i64, String, Vec<ConsentRule>)>,
    /// patient reference -> consent references
    by_patient: HashMap<String, Vec<String>>,
}

impl ConsentStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a change unless the store already holds a newer version of that consent.
    pub fn apply(&self, change: ConsentChange) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        if let Some((version, _, _)) = inner.consents.get(&change.consent) {
            if *version > change.version {
                return;
            }
        }
        let ids = inner.by_patient.entry(change.patient.clone()).or_default();
        if !ids.contains(&change.consent) {
            ids.push(change.consent.clone());
        }
        inner.consents.insert(
            change.consent,
            (change.version, change.patient, change.rules),
        );
    }

    pub fn decide(&self, req: &AccessRequest<'_>) -> Decision {
        let Ok(inner) = self.inner.read() else {
            return Decision {
                permit: false,
                reason: DecisionReason::NoConsent,
            };
        };
        let rules = inner
            .by_patient
            .get(req.patient)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.consents.get(id))
            .flat_map(|(_, _, rules)| rules.iter());
        decide(rules, req)
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.consents.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleEffect;
    use chrono::Utc;

    fn change(version: i64, permit: bool) -> ConsentChange {
        let rules = if permit {
            vec![ConsentRule {
                consent: "Consent/c1".into(),
                patient: "Patient/alice".into(),
                effect: RuleEffect::Permit,
                actors: vec!["Organization/h1".into()],
                purposes: vec![],
                resource_types: vec![],
                actions: vec![],
                not_before: None,
                not_after: None,
            }]
        } else {
            vec![]
        };
        ConsentChange {
            consent: "Consent/c1".into(),
            patient: "Patient/alice".into(),
            version,
            rules,
        }
    }

    #[test]
    fn newer_versions_win_and_stale_ones_are_ignored() {
        let store = ConsentStore::new();
        let actors = vec!["Organization/h1".to_string()];
        let req = AccessRequest {
            patient: "Patient/alice",
            actors: &actors,
            purpose: "TREAT",
            resource_type: "Observation",
            action: "access",
            at: Utc::now(),
        };
        store.apply(change(1, true));
        assert!(store.decide(&req).permit);
        store.apply(change(2, false));
        assert!(!store.decide(&req).permit);
        store.apply(change(1, true));
        assert!(
            !store.decide(&req).permit,
            "a stale change must not resurrect a revoked consent"
        );
    }
}
