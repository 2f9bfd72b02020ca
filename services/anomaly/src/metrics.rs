//! The service's own metrics (registered beside the HTTP and relay collectors; the registry
//! prefixes them with `custodian_`).

use prometheus::{Histogram, HistogramOpts, IntCounter};

#[derive(Clone)]
pub struct AnomalyMetrics {
    /// Events scored (each event once).
    pub events_scored: IntCounter,
    /// Deliveries of events already scored (redeliveries, duplicates).
    pub events_duplicate: IntCounter,
    /// Alerts raised (stored and published).
    pub alerts: IntCounter,
    /// Scores over the threshold that raised no alert: the actor had one within 10 minutes.
    pub alerts_suppressed: IntCounter,
    /// Distribution of scores.
    pub score: Histogram,
}

impl AnomalyMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            events_scored: IntCounter::new("anomaly_events_scored_total", "Access events scored")?,
            events_duplicate: IntCounter::new(
                "anomaly_events_duplicate_total",
                "Deliveries of access events already scored (skipped)",
            )?,
            alerts: IntCounter::new("anomaly_alerts_total", "Alerts raised")?,
            alerts_suppressed: IntCounter::new(
                "anomaly_alerts_suppressed_total",
                "Scores over the threshold without a new alert (one per actor per 10 minutes)",
            )?,
            score: Histogram::with_opts(
                HistogramOpts::new("anomaly_score", "Anomaly scores of access events")
                    .buckets(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]),
            )?,
        })
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.events_scored.clone()),
            Box::new(self.events_duplicate.clone()),
            Box::new(self.alerts.clone()),
            Box::new(self.alerts_suppressed.clone()),
            Box::new(self.score.clone()),
        ]
    }
}
