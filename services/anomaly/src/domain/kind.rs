//! What kind of alert: a fixed set, the `code` of the `DetectedIssue` (our CodeSystem
//! [`KIND_SYSTEM`]) and the `kind` label of `anomaly_alerts_total`. The kind is the family of
//! the strongest contribution to the score (a permitted break-glass below the threshold is
//! `break-glass`); a feature this version does not know is `other`.

use serde::Serialize;
use utoipa::ToSchema;

/// The CodeSystem of alert kinds.
pub const KIND_SYSTEM: &str = "https://custodian.example/fhir/CodeSystem/anomaly-alert-kind";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// Records opened with no care relationship (curiosity: a VIP, a colleague, a neighbour).
    Snooping,
    /// Many patients, sweeps, searches with few reads, unusual volume.
    Enumeration,
    /// Exports and large result sets.
    Exfiltration,
    /// Break-glass without emergency context, or far more often than peers.
    BreakGlass,
    /// A new address or device, failed logins, work outside the usual hours.
    StolenCredentials,
    /// What the role or department (almost) never does.
    RoleMisuse,
    /// Many accesses refused.
    DeniedAccess,
    /// Entries changed or deleted after the fact: a run of amendments of one patient's data
    /// of a kind the role hardly ever amends, or a change to the user's own record.
    RecordTampering,
    /// Anything else (the outlier model alone, a feature this version does not know).
    Other,
}

impl AlertKind {
    /// Every kind: the fixed label set of the metrics.
    pub const ALL: [AlertKind; 9] = [
        AlertKind::Snooping,
        AlertKind::Enumeration,
        AlertKind::Exfiltration,
        AlertKind::BreakGlass,
        AlertKind::StolenCredentials,
        AlertKind::RoleMisuse,
        AlertKind::DeniedAccess,
        AlertKind::RecordTampering,
        AlertKind::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AlertKind::Snooping => "snooping",
            AlertKind::Enumeration => "enumeration",
            AlertKind::Exfiltration => "exfiltration",
            AlertKind::BreakGlass => "break-glass",
            AlertKind::StolenCredentials => "stolen-credentials",
            AlertKind::RoleMisuse => "role-misuse",
            AlertKind::DeniedAccess => "denied-access",
            AlertKind::RecordTampering => "record-tampering",
            AlertKind::Other => "other",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            AlertKind::Snooping => "Access without a care relationship",
            AlertKind::Enumeration => "Enumeration of patient records",
            AlertKind::Exfiltration => "Possible data exfiltration",
            AlertKind::BreakGlass => "Break-glass access to review",
            AlertKind::StolenCredentials => "Possibly stolen credentials",
            AlertKind::RoleMisuse => "Access outside the role's work",
            AlertKind::DeniedAccess => "Repeated denied accesses",
            AlertKind::RecordTampering => "Records changed after the fact",
            AlertKind::Other => "Unusual access behaviour",
        }
    }

    /// The kind stored as [`AlertKind::code`]; unknown spellings are `other`.
    pub fn parse(code: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .unwrap_or(AlertKind::Other)
    }

    /// The family of a model feature (by its name in `model::ensemble::Feature::name`).
    pub fn of_feature(feature: &str) -> Self {
        match feature {
            "no_relationship"
            | "sensitive_unexplained"
            | "dormant_unexplained"
            | "unexplained_context"
            | "unexplained_spree"
            | "restricted"
            | "unreviewed_prescription" => AlertKind::Snooping,
            "distinct_patients" | "rate" | "sweep" | "search_sweep" | "volume"
            | "patients_per_hour" => AlertKind::Enumeration,
            "export" | "whole_record" | "large_result" | "long_list" => AlertKind::Exfiltration,
            "break_glass_no_context" | "break_glass_excess" => AlertKind::BreakGlass,
            "new_source" | "failed_logins" | "odd_hour" | "two_places" => {
                AlertKind::StolenCredentials
            }
            // A user opening her own record through her staff role: not her role's work.
            "role_misuse" | "misuse_run" | "own_record" => AlertKind::RoleMisuse,
            "amendments" => AlertKind::RecordTampering,
            "denied" | "objections" => AlertKind::DeniedAccess,
            _ => AlertKind::Other,
        }
    }

    /// The kind of an alert: the family of its strongest contribution (`features` strongest
    /// first), or `break-glass` for a break-glass alerted on below the threshold.
    pub fn of_alert<'a>(
        mut features: impl Iterator<Item = &'a str>,
        break_glass_below_threshold: bool,
    ) -> Self {
        if break_glass_below_threshold {
            return AlertKind::BreakGlass;
        }
        features.next().map_or(AlertKind::Other, Self::of_feature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknowns_are_other() {
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.code()), kind);
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::json!(kind.code()))
            );
        }
        assert_eq!(AlertKind::parse("new-kind"), AlertKind::Other);
        assert_eq!(
            AlertKind::of_feature("a_feature_of_tomorrow"),
            AlertKind::Other
        );
    }

    #[test]
    fn every_feature_of_the_model_has_its_family() {
        use crate::model::ensemble::Feature;
        // The outlier model's is unusual behaviour as such: `other`.
        for feature in Feature::ALL.into_iter().filter(|f| *f != Feature::Outlier) {
            assert_ne!(
                AlertKind::of_feature(feature.name()),
                AlertKind::Other,
                "{}",
                feature.name()
            );
        }
    }

    #[test]
    fn the_strongest_feature_decides() {
        let features = ["sensitive_unexplained", "distinct_patients"];
        assert_eq!(
            AlertKind::of_alert(features.into_iter(), false),
            AlertKind::Snooping
        );
        assert_eq!(
            AlertKind::of_alert(["distinct_patients"].into_iter(), false),
            AlertKind::Enumeration
        );
        assert_eq!(
            AlertKind::of_alert(features.into_iter(), true),
            AlertKind::BreakGlass
        );
        assert_eq!(
            AlertKind::of_alert(std::iter::empty(), false),
            AlertKind::Other
        );
    }
}
