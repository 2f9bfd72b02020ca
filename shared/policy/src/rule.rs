use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleEffect {
    Permit,
    Deny,
}

/// One provision of an active consent, flattened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRule {
    /// `Consent/<id>` the rule came from.
    pub consent: String,
    /// `Patient/<id>` the consent belongs to.
    pub patient: String,
    pub effect: RuleEffect,
    /// References the rule applies to (`Organization/h1`, `Practitioner/p1`); empty: anyone.
    pub actors: Vec<String>,
    /// PurposeOfUse codes; empty: any purpose.
    pub purposes: Vec<String>,
    /// Resource types (`provision.class` codes); empty: every type.
    pub resource_types: Vec<String>,
    /// Consent action codes (`access`, `use`, `correct` ...); empty: every action.
    pub actions: Vec<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
}

/// A change to one consent's rules, published on the consent stream. `version` orders changes:
/// replicas ignore one older than what they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChange {
    pub consent: String,
    pub patient: String,
    pub version: i64,
    /// Empty when the consent was revoked, rejected, or deleted.
    pub rules: Vec<ConsentRule>,
}

/// What is being asked.
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    pub patient: &'a str,
    /// Every reference the requester is known by: its organisation, its practitioner record.
    pub actors: &'a [String],
    pub purpose: &'a str,
    pub resource_type: &'a str,
    /// `access` for reads and searches, `correct` for updates, `collect` for creates.
    pub action: &'a str,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionReason {
    /// A rule permitted it (and none denied).
    PermittedBy(String),
    /// A deny rule matched.
    DeniedBy(String),
    /// Nothing permitted it.
    NoConsent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub permit: bool,
    pub reason: DecisionReason,
}

impl ConsentRule {
    fn applies(&self, req: &AccessRequest<'_>) -> bool {
        self.patient == req.patient
            && (self.actors.is_empty()
                || self
                    .actors
                    .iter()
                    .any(|a| req.actors.iter().any(|r| r == a)))
            && (self.purposes.is_empty() || self.purposes.iter().any(|p| p == req.purpose))
            && (self.resource_types.is_empty()
                || self.resource_types.iter().any(|t| t == req.resource_type))
            && (self.actions.is_empty() || self.actions.iter().any(|a| a == req.action))
            && self.not_before.is_none_or(|t| req.at >= t)
            && self.not_after.is_none_or(|t| req.at <= t)
    }
}

/// Deny unless a rule permits and no rule denies.
pub fn decide<'r>(
    rules: impl IntoIterator<Item = &'r ConsentRule>,
    req: &AccessRequest<'_>,
) -> Decision {
    let mut permitted_by = None;
    for rule in rules {
        if !rule.applies(req) {
            continue;
        }
        match rule.effect {
            RuleEffect::Deny => {
                return Decision {
                    permit: false,
                    reason: DecisionReason::DeniedBy(rule.consent.clone()),
                }
            }
            RuleEffect::Permit => {
                permitted_by.get_or_insert_with(|| rule.consent.clone());
            }
        }
    }
    match permitted_by {
        Some(consent) => Decision {
            permit: true,
            reason: DecisionReason::PermittedBy(consent),
        },
        None => Decision {
            permit: false,
            reason: DecisionReason::NoConsent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(effect: RuleEffect, actors: &[&str], purposes: &[&str]) -> ConsentRule {
        ConsentRule {
            consent: "Consent/c1".into(),
            patient: "Patient/alice".into(),
            effect,
            actors: actors.iter().map(|s| s.to_string()).collect(),
            purposes: purposes.iter().map(|s| s.to_string()).collect(),
            resource_types: vec![],
            actions: vec![],
            not_before: None,
            not_after: None,
        }
    }

    fn request<'a>(actors: &'a [String], purpose: &'a str) -> AccessRequest<'a> {
        AccessRequest {
            patient: "Patient/alice",
            actors,
            purpose,
            resource_type: "Observation",
            action: "access",
            at: Utc::now(),
        }
    }

    #[test]
    fn denies_without_consent() {
        let actors = vec!["Organization/h1".to_string()];
        assert!(!decide(&[], &request(&actors, "TREAT")).permit);
    }

    #[test]
    fn permits_named_actor_for_named_purpose_only() {
        let rules = [rule(RuleEffect::Permit, &["Organization/h1"], &["TREAT"])];
        let h1 = vec!["Organization/h1".to_string()];
        let h2 = vec!["Organization/h2".to_string()];
        assert!(decide(&rules, &request(&h1, "TREAT")).permit);
        assert!(!decide(&rules, &request(&h1, "HMARKT")).permit);
        assert!(!decide(&rules, &request(&h2, "TREAT")).permit);
    }

    #[test]
    fn deny_beats_permit() {
        let rules = [
            rule(RuleEffect::Permit, &[], &[]),
            rule(RuleEffect::Deny, &["Organization/h2"], &[]),
        ];
        let h2 = vec!["Organization/h2".to_string()];
        let h1 = vec!["Organization/h1".to_string()];
        assert!(!decide(&rules, &request(&h2, "TREAT")).permit);
        assert!(decide(&rules, &request(&h1, "TREAT")).permit);
    }

    #[test]
    fn period_bounds_apply() {
        let mut r = rule(RuleEffect::Permit, &[], &[]);
        r.not_after = Some(Utc::now() - chrono::Duration::days(1));
        let h1 = vec!["Organization/h1".to_string()];
        assert!(!decide(&[r], &request(&h1, "TREAT")).permit);
    }
}
