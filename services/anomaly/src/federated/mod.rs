//! Federated training across hospitals: each hospital trains the detector on its own events;
//! only the model's population-level parameters ([`GlobalParameters`]: the Half-Space Trees'
//! node masses and the calibration histogram, counts that name no one) leave it, with Gaussian
//! noise for a stated (ε, δ); an aggregator averages them (FedAvg, weighted by the noised event
//! counts) and every hospital imports the average. Events, relationships and per-actor or
//! per-department baselines never leave.
//!
//! # Privacy
//!
//! The unit protected is one event's contribution to the released counts. Through a fixed
//! feature map, one event adds 1 to `DEPTH + 1 = 9` nodes of each of the 24 trees (L2 norm
//! `√216`) and at most 1 to one calibration bin, or moves one sample between two bins when the
//! per-actor-hour cap lets another event in its place (L2 ≤ `√2`). [`clip_and_noise`] scales the
//! forest block by `0.3·C/√216` and the calibration block by `0.95·C/√2`, so one event moves the
//! scaled vector by at most `C·√(0.3² + 0.95²) < C` (the clipping: a bound by construction, not
//! by data), adds `N(0, σ²)` to every value with the Gaussian mechanism's
//! `σ = C·√(2 ln(1.25/δ))/ε`, and scales back. `C` only sets the units: the noise relative to
//! the counts depends on ε and δ alone.
//!
//! One update is one release: (ε, δ) per round. R rounds (each re-releasing cumulative counts)
//! compose to (Rε, Rδ) (basic composition) or, for any δ′, to
//! `(ε√(2R ln(1/δ′)) + Rε(e^ε − 1), Rδ + δ′)` (advanced composition; better only for small ε):
//! [`budget`]. The statistics are sufficient, so one round is all training needs.
//!
//! What this does not cover, said plainly: the feature map is itself learned from the stream (an
//! event changes later events' relationships and baselines, hence their feature vectors and
//! whether they alert and are learned by the trees), so the bound above is for the released
//! statistics given the feature vectors, not a formal event-level guarantee over the whole
//! adaptive pipeline. And the classical Gaussian-mechanism theorem is stated for ε < 1; for the
//! ε = 8, δ = 1e-5 used by default, this σ (0.61·C) satisfies the exact (analytic) Gaussian
//! mechanism condition of Balle and Wang (2018) with δ ≈ 8e-6.
//!
//! The noise must be unpredictable to the aggregator: `anomaly federate train` draws its seed
//! from the operating system unless `--noise-seed` is given (tests only).

pub mod cli;

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::model::{
    outlier::{DEPTH, NODES_PER_TREE, TREES},
    parameters::{CALIBRATION_BINS, FORMAT},
    Detector, GlobalParameters, ImportError,
};

/// Share of the per-event norm bound spent on the forest's masses (they are large counts).
const FOREST_SHARE: f64 = 0.3;
/// Share spent on the calibration histogram, whose tail is a few hundred events.
const CALIBRATION_SHARE: f64 = 0.95;

/// What one hospital sends: its parameters with noise, and how they were noised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub parameters: GlobalParameters,
    pub privacy: Privacy,
}

/// The privacy of one update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Privacy {
    pub epsilon: f64,
    pub delta: f64,
    /// The L2 bound of one event's (scaled) contribution.
    pub clip: f64,
    /// The Gaussian noise's standard deviation, in the scaled units.
    pub sigma: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum FederatedError {
    #[error("epsilon must be > 0, delta within (0, 1), clip > 0")]
    Privacy,
    #[error("nothing to aggregate")]
    Empty,
    #[error("the updates' noised event counts sum to nothing")]
    NoWeight,
    #[error("{0}")]
    Import(#[from] ImportError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The Gaussian mechanism's standard deviation for an L2 sensitivity of `clip`.
pub fn sigma(clip: f64, epsilon: f64, delta: f64) -> f64 {
    clip * (2.0 * (1.25 / delta).ln()).sqrt() / epsilon
}

/// A standard normal draw (Box-Muller): seeded and portable, so tests reproduce.
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Bounds one event's contribution to `clip` (by scaling the two blocks, see the module doc)
/// and adds the Gaussian mechanism's noise for (ε, δ), with noise from `seed`.
pub fn clip_and_noise(
    params: &GlobalParameters,
    clip: f64,
    epsilon: f64,
    delta: f64,
    seed: u64,
) -> Result<Update, FederatedError> {
    let valid = epsilon > 0.0 && epsilon.is_finite() && delta > 0.0 && delta < 1.0;
    if !(valid && clip > 0.0 && clip.is_finite()) {
        return Err(FederatedError::Privacy);
    }
    params.check(params.seed)?;
    let sigma = sigma(clip, epsilon, delta);
    let forest_scale = FOREST_SHARE * clip / ((TREES * (DEPTH + 1)) as f64).sqrt();
    let calibration_scale = CALIBRATION_SHARE * clip / 2f64.sqrt();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut noised = |values: &[f64], scale: f64| -> Vec<f64> {
        values
            .iter()
            .map(|v| (v * scale + sigma * gaussian(&mut rng)) / scale)
            .collect()
    };
    let forest = noised(&params.forest, forest_scale);
    let calibration = noised(&params.calibration, calibration_scale);
    Ok(Update {
        parameters: GlobalParameters {
            format: FORMAT,
            seed: params.seed,
            forest,
            calibration,
        },
        privacy: Privacy {
            epsilon,
            delta,
            clip,
            sigma,
        },
    })
}

/// FedAvg: the average of `vectors` weighted by `weights` (negative weights count 0).
pub fn fed_avg(vectors: &[Vec<f64>], weights: &[f64]) -> Result<Vec<f64>, FederatedError> {
    let first = vectors.first().ok_or(FederatedError::Empty)?;
    let weights: Vec<f64> = weights.iter().map(|w| w.max(0.0)).collect();
    let total: f64 = weights.iter().sum();
    if weights.len() != vectors.len() || total <= 0.0 || !total.is_finite() {
        return Err(FederatedError::NoWeight);
    }
    let mut average = vec![0.0; first.len()];
    for (vector, weight) in vectors.iter().zip(&weights) {
        for (a, v) in average.iter_mut().zip(vector) {
            *a += v * weight / total;
        }
    }
    Ok(average)
}

/// The aggregator: each update normalised (the trees' masses by their roots, the histogram by
/// its total, noise below 0 counted 0), then averaged with FedAvg weighted by its noised event
/// counts (the mean noised root of its trees; the histogram's noised total). The weights are
/// read off the noised updates, so they cost no privacy (post-processing).
pub fn aggregate(updates: &[Update]) -> Result<GlobalParameters, FederatedError> {
    let first = updates.first().ok_or(FederatedError::Empty)?;
    let seed = first.parameters.seed;
    let mut forests = Vec::new();
    let mut forest_weights = Vec::new();
    let mut histograms = Vec::new();
    let mut histogram_weights = Vec::new();
    for update in updates {
        let p = &update.parameters;
        p.check(seed)?;
        forests.push(p.forest_proportions());
        let roots: f64 = p.forest.iter().step_by(NODES_PER_TREE).sum();
        forest_weights.push(roots / TREES as f64);
        let clean: Vec<f64> = p.calibration.iter().map(|n| n.max(0.0)).collect();
        let total: f64 = clean.iter().sum();
        histograms.push(if total > 0.0 {
            clean.iter().map(|n| n / total).collect()
        } else {
            vec![0.0; CALIBRATION_BINS]
        });
        histogram_weights.push(total);
    }
    let forest = fed_avg(&forests, &forest_weights)?;
    // A hospital still in its warm-up has no histogram yet: the others calibrate.
    let calibration =
        fed_avg(&histograms, &histogram_weights).unwrap_or_else(|_| vec![0.0; CALIBRATION_BINS]);
    Ok(GlobalParameters {
        format: FORMAT,
        seed,
        forest,
        calibration,
    })
}

/// Privacy settings of a round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub epsilon: f64,
    pub delta: f64,
    pub clip: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            epsilon: 8.0,
            delta: 1e-5,
            clip: 1.0,
        }
    }
}

/// One round: every hospital's detector (trained on its own events) exports and noises its
/// parameters (noise seed `seed + i`), the aggregator averages them, and every detector
/// imports the average. Returns the global parameters.
pub fn round(
    detectors: &mut [Detector],
    settings: Settings,
    seed: u64,
) -> Result<GlobalParameters, FederatedError> {
    let updates = detectors
        .iter()
        .enumerate()
        .map(|(i, d)| {
            clip_and_noise(
                &d.export_parameters(),
                settings.clip,
                settings.epsilon,
                settings.delta,
                seed.wrapping_add(i as u64),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let global = aggregate(&updates)?;
    for detector in detectors.iter_mut() {
        detector.import_parameters(&global)?;
    }
    Ok(global)
}

/// The privacy spent by `rounds` releases at (ε, δ) each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Budget {
    /// Basic composition: (Rε, Rδ).
    pub basic: (f64, f64),
    /// Advanced composition with slack `δ′`: (ε√(2R ln(1/δ′)) + Rε(e^ε − 1), Rδ + δ′).
    pub advanced: (f64, f64),
}

/// The total over `rounds` rounds (see [`Budget`]).
pub fn budget(epsilon: f64, delta: f64, rounds: u32, slack: f64) -> Budget {
    let r = f64::from(rounds);
    Budget {
        basic: (r * epsilon, r * delta),
        advanced: (
            epsilon * (2.0 * r * (1.0 / slack).ln()).sqrt() + r * epsilon * epsilon.exp_m1(),
            r * delta + slack,
        ),
    }
}

/// Reads global parameters (the aggregator's output) from a JSON file.
pub fn read_parameters(path: &Path) -> Result<GlobalParameters, FederatedError> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

#[cfg(test)]
mod tests;
