//! The model's transferable, population-level parameters: what federated training shares
//! between hospitals (see [`crate::federated`]).
//!
//! Two things, both counts that do not name anyone:
//! - the Half-Space Trees' node masses (every point learned, per node): the trees come from the
//!   model's seed, so every hospital with the same seed has the same trees, and masses
//!   normalised by their root's average meaningfully;
//! - the calibration histogram (raw risks of the calibration period, [`CALIBRATION_BINS`] bins),
//!   from which the raw threshold at the importer's own target false-positive rate follows.
//!
//! Everything keyed by an actor, a patient, a department or a role (relationships, baselines,
//! windows) stays local: those keys are hospital-specific and would name people.

use serde::{Deserialize, Serialize};

use super::{
    ensemble::threshold_from_histogram,
    outlier::{NODES_PER_TREE, TREES},
    Detector,
};

/// Version of the parameters' layout.
pub const FORMAT: u32 = 1;
/// Bins of the exported calibration histogram (the model's 4,096 folded: coarser bins need
/// less noise for the same privacy; the threshold moves by at most 1/256 of raw risk).
pub const CALIBRATION_BINS: usize = 256;
/// Values in [`GlobalParameters::forest`].
pub const FOREST_VALUES: usize = TREES * NODES_PER_TREE;

/// Parameters that leave a hospital (noised) and come back averaged. Only numbers: no key,
/// id, reference or event field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalParameters {
    /// [`FORMAT`].
    pub format: u32,
    /// The Half-Space Trees' seed: parameters only fit a model with the same trees.
    pub seed: u64,
    /// Node masses, tree after tree ([`FOREST_VALUES`]); each tree's first value is its root.
    /// Counts from one hospital, or proportions of the root after averaging.
    pub forest: Vec<f64>,
    /// Raw-risk histogram of the calibration period ([`CALIBRATION_BINS`] equal bins on
    /// `[0, 1]`), counts or shares.
    pub calibration: Vec<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    #[error("parameters of format {found}, this model reads format {FORMAT}")]
    Format { found: u32 },
    #[error("parameters for trees of seed {found}, this model's seed is {expected}")]
    Seed { expected: u64, found: u64 },
    #[error("{field} holds {found} values, expected {expected}")]
    Length {
        field: &'static str,
        found: usize,
        expected: usize,
    },
}

impl GlobalParameters {
    /// Checks the layout against a model's seed.
    pub fn check(&self, seed: u64) -> Result<(), ImportError> {
        if self.format != FORMAT {
            return Err(ImportError::Format { found: self.format });
        }
        if self.seed != seed {
            return Err(ImportError::Seed {
                expected: seed,
                found: self.seed,
            });
        }
        for (field, found, expected) in [
            ("forest", self.forest.len(), FOREST_VALUES),
            ("calibration", self.calibration.len(), CALIBRATION_BINS),
        ] {
            if found != expected {
                return Err(ImportError::Length {
                    field,
                    found,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Each tree's masses divided by its root's (zeros for an empty or negative root).
    pub fn forest_proportions(&self) -> Vec<f64> {
        self.forest
            .chunks(NODES_PER_TREE)
            .flat_map(|tree| {
                let root = tree.first().copied().unwrap_or(0.0);
                tree.iter().map(move |&m| {
                    if root > 0.0 && m.is_finite() {
                        (m / root).clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                })
            })
            .collect()
    }
}

impl Detector {
    /// This detector's population-level parameters, as counts (before any noise).
    pub fn export_parameters(&self) -> GlobalParameters {
        GlobalParameters {
            format: FORMAT,
            seed: self.config.seed,
            forest: self.forest.masses(),
            calibration: self.calibrator.histogram(CALIBRATION_BINS),
        }
    }

    /// Adopts global parameters: the trees' reference becomes the imported masses at once
    /// (blended with the local window once one exists: the trees' own warm-up is skipped), and
    /// the raw threshold is the histogram's at this model's target false-positive rate, in
    /// place of the local calibration's (at once if that is over, else when it would end; see
    /// [`super::ensemble::Calibrator::import_threshold`]). An empty histogram leaves the
    /// calibration alone. Local state (relationships, baselines) is untouched.
    pub fn import_parameters(&mut self, parameters: &GlobalParameters) -> Result<(), ImportError> {
        parameters.check(self.config.seed)?;
        self.forest.set_prior(&parameters.forest_proportions());
        if let Some(q) =
            threshold_from_histogram(&parameters.calibration, self.config.calibration.target_fpr)
        {
            self.calibrator.import_threshold(q);
        }
        Ok(())
    }
}
