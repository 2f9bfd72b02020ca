//! The detector's whole state as bytes, so that a restart (a rolling update, a crash, a
//! rescheduled pod) resumes where the model stood: its calibration, every actor's and group's
//! baselines, the relationships it learned, open incidents and the alerts still waiting.
//! Without it a restart would relearn for days (48 h of warm-up, 48 h of calibration) with
//! the prior threshold in force, blind to most of what needs history.
//!
//! Layout: a 4-byte big-endian [`FORMAT`] then the state in CBOR (`ciborium`). A snapshot of
//! another format, or one that does not decode, is refused (the caller falls back to
//! relearning); settings (threshold, grace, calibration target) come from the running
//! configuration, not from the snapshot.

use super::{Detector, ModelConfig};

/// Bumped whenever the state's shape changes.
pub const FORMAT: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot format {found}; this version reads format {FORMAT}")]
    Format { found: u32 },
    #[error("snapshot too short")]
    Truncated,
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    #[error("snapshot not encoded: {0}")]
    Encode(String),
}

impl Detector {
    /// The state, with the running settings, as [`FORMAT`] bytes.
    pub fn encode_snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        let mut bytes = FORMAT.to_be_bytes().to_vec();
        ciborium::into_writer(self, &mut bytes)
            .map_err(|e| SnapshotError::Encode(e.to_string()))?;
        Ok(bytes)
    }

    /// The detector a snapshot holds, under the running `threshold` and `config` (the learned
    /// state is kept; the memory limits are the snapshot's until it is rebuilt).
    pub fn decode_snapshot(
        bytes: &[u8],
        threshold: f64,
        config: ModelConfig,
    ) -> Result<Self, SnapshotError> {
        let (format, state) = bytes
            .split_first_chunk::<4>()
            .ok_or(SnapshotError::Truncated)?;
        let found = u32::from_be_bytes(*format);
        if found != FORMAT {
            return Err(SnapshotError::Format { found });
        }
        let mut detector: Detector =
            ciborium::from_reader(state).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        detector.threshold = threshold;
        detector.config = config;
        detector.calibrator.set_settings(config.calibration);
        Ok(detector)
    }
}
