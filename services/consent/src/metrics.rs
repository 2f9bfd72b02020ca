//! Consent's own Prometheus metrics (the HTTP and relay ones are registered beside them).

use prometheus::{IntCounterVec, Opts};

#[derive(Clone)]
pub struct ConsentMetrics {
    /// `consents_written_total{operation="create|update|delete"}`
    pub written: IntCounterVec,
    /// `consent_decisions_total{decision="permit|deny|not-applicable|undetermined"}`
    pub decisions: IntCounterVec,
}

impl ConsentMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            written: IntCounterVec::new(
                Opts::new(
                    "consents_written_total",
                    "Consents created, updated or deleted",
                ),
                &["operation"],
            )?,
            decisions: IntCounterVec::new(
                Opts::new(
                    "consent_decisions_total",
                    "Access decisions answered by /consent/decide",
                ),
                &["decision"],
            )?,
        })
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.written.clone()),
            Box::new(self.decisions.clone()),
        ]
    }
}
