//! Domain types: the checkpoint a signed note carries. Who may see which entries is the access
//! kernel's decision (`custodian_access::ledger::LedgerView`).

pub mod checkpoint;

pub use checkpoint::Checkpoint;
pub use custodian_access::{ledger::LedgerView as Viewer, PatientRef};
