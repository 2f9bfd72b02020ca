//! The service's own metrics (registered beside the HTTP and relay collectors; the registry
//! prefixes them with `custodian_`). Labels come from fixed sets only (alert kinds, feedback
//! actions, delivery outcomes): never a user, a patient or a URL.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

use crate::domain::kind::AlertKind;

/// `outcome` of a webhook delivery attempt.
pub const DELIVERED: &str = "delivered";
/// An attempt failed and will be retried.
pub const RETRY: &str = "retry";
/// The attempts ran out: the delivery is given up (kept in the table).
pub const ABANDONED: &str = "abandoned";

#[derive(Clone)]
pub struct AnomalyMetrics {
    /// Events scored (each event once).
    pub events_scored: IntCounter,
    /// Deliveries of events already scored (redeliveries, duplicates).
    pub events_duplicate: IntCounter,
    /// Alerts raised (stored and published), by kind.
    pub alerts: IntCounterVec,
    /// Scores over the threshold that raised no alert: the actor had one within 10 minutes.
    pub alerts_suppressed: IntCounter,
    /// Alerts that asked identity to suspend the user.
    pub suspensions: IntCounter,
    /// Alerts acknowledged by security staff.
    pub acknowledgements: IntCounter,
    /// Alerts dismissed by security staff (each teaches the detector a relationship).
    pub dismissals: IntCounter,
    /// Webhook delivery attempts, by outcome (`delivered`, `retry`, `abandoned`).
    pub webhook_deliveries: IntCounterVec,
    /// Webhook deliveries waiting (not delivered, not abandoned), as of the worker's last pass.
    pub webhook_pending: IntGauge,
    /// Care facts from records' relationships stream taught to the detector.
    pub care_facts: IntCounter,
    /// Distribution of scores.
    pub score: Histogram,
    /// Time the detector takes to score one event (under its lock): the live scoring latency.
    pub score_duration: Histogram,
    /// Alerts waiting for an explanation (grace period or quiet look), as of the last batch.
    pub alerts_waiting: IntGauge,
    /// Size of the detector's last saved state, and when it was saved (Unix seconds).
    pub snapshot_bytes: IntGauge,
    pub snapshot_time: IntGauge,
}

impl AnomalyMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let alerts = IntCounterVec::new(
            Opts::new("anomaly_alerts_total", "Alerts raised, by kind"),
            &["kind"],
        )?;
        for kind in AlertKind::ALL {
            alerts.with_label_values(&[kind.code()]);
        }
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "anomaly_webhook_deliveries_total",
                "Webhook delivery attempts, by outcome (delivered, retry, abandoned)",
            ),
            &["outcome"],
        )?;
        for outcome in [DELIVERED, RETRY, ABANDONED] {
            webhook_deliveries.with_label_values(&[outcome]);
        }
        Ok(Self {
            events_scored: IntCounter::new("anomaly_events_scored_total", "Access events scored")?,
            events_duplicate: IntCounter::new(
                "anomaly_events_duplicate_total",
                "Deliveries of access events already scored (skipped)",
            )?,
            alerts,
            alerts_suppressed: IntCounter::new(
                "anomaly_alerts_suppressed_total",
                "Scores over the threshold without a new alert (one per actor per 10 minutes)",
            )?,
            suspensions: IntCounter::new(
                "anomaly_suspensions_requested_total",
                "Alerts that asked identity to suspend the user",
            )?,
            acknowledgements: IntCounter::new(
                "anomaly_alerts_acknowledged_total",
                "Alerts acknowledged by security staff",
            )?,
            dismissals: IntCounter::new(
                "anomaly_alerts_dismissed_total",
                "Alerts dismissed by security staff",
            )?,
            webhook_deliveries,
            webhook_pending: IntGauge::new(
                "anomaly_webhook_pending",
                "Webhook deliveries waiting to be delivered",
            )?,
            care_facts: IntCounter::new(
                "anomaly_care_facts_total",
                "Care facts from the relationships stream taught to the detector",
            )?,
            score: Histogram::with_opts(
                HistogramOpts::new("anomaly_score", "Anomaly scores of access events")
                    .buckets(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]),
            )?,
            alerts_waiting: IntGauge::new(
                "anomaly_alerts_waiting",
                "Alerts waiting for an explanation before they are raised",
            )?,
            score_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "anomaly_score_duration_seconds",
                    "Time to score one access event (the detector alone)",
                )
                .buckets(vec![
                    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3,
                ]),
            )?,
            snapshot_bytes: IntGauge::new(
                "anomaly_detector_snapshot_bytes",
                "Size of the detector's last saved state",
            )?,
            snapshot_time: IntGauge::new(
                "anomaly_detector_snapshot_timestamp_seconds",
                "When the detector's state was last saved (Unix time)",
            )?,
        })
    }

    /// Counts an alert of `kind`.
    pub fn alert(&self, kind: AlertKind) {
        self.alerts.with_label_values(&[kind.code()]).inc();
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.events_scored.clone()),
            Box::new(self.events_duplicate.clone()),
            Box::new(self.alerts.clone()),
            Box::new(self.alerts_suppressed.clone()),
            Box::new(self.suspensions.clone()),
            Box::new(self.acknowledgements.clone()),
            Box::new(self.dismissals.clone()),
            Box::new(self.webhook_deliveries.clone()),
            Box::new(self.webhook_pending.clone()),
            Box::new(self.care_facts.clone()),
            Box::new(self.score.clone()),
            Box::new(self.score_duration.clone()),
            Box::new(self.alerts_waiting.clone()),
            Box::new(self.snapshot_bytes.clone()),
            Box::new(self.snapshot_time.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_exported_from_the_start() {
        let metrics = AnomalyMetrics::new().expect("metrics");
        let registry = prometheus::Registry::new();
        for c in metrics.collectors() {
            registry.register(c).expect("register");
        }
        let families = registry.gather();
        let alerts = families
            .iter()
            .find(|f| f.name() == "anomaly_alerts_total")
            .expect("alerts family");
        assert_eq!(alerts.get_metric().len(), AlertKind::ALL.len());
    }
}
