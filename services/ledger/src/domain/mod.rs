//! Domain types: the checkpoint a signed note carries, and who may see which entries.

pub mod checkpoint;
pub mod viewer;

pub use checkpoint::Checkpoint;
pub use viewer::{PatientRef, Viewer};
