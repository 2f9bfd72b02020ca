//! The records service's own metrics. Labels never carry ids or patient data.

use prometheus::{IntCounterVec, Opts};

#[derive(Clone)]
pub struct RecordsMetrics {
    /// `interaction` (read, vread, history, create, update, delete, search, metadata),
    /// `resource_type`, `outcome` (ok, denied, invalid, not_found, error ...).
    pub fhir_operations: IntCounterVec,
}

impl Default for RecordsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordsMetrics {
    pub fn new() -> Self {
        #[allow(clippy::expect_used)]
        let fhir_operations = IntCounterVec::new(
            Opts::new("fhir_operations_total", "FHIR interactions by outcome"),
            &["interaction", "resource_type", "outcome"],
        )
        .expect("static metric options are valid");
        Self { fhir_operations }
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.fhir_operations.clone())]
    }

    pub fn operation(&self, interaction: &str, resource_type: &str, outcome: &str) {
        self.fhir_operations
            .with_label_values(&[interaction, resource_type, outcome])
            .inc();
    }
}
