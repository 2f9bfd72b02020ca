//! Domain types: the checkpoint a signed note carries; a leaf as a FHIR `AuditEvent` and the
//! parsed search over them. Who may see which entries is the access
//! kernel's decision (`custodian_access::ledger::LedgerView`).

pub mod audit_event;
pub mod audit_search;
pub mod checkpoint;

pub use checkpoint::Checkpoint;
pub use custodian_access::{ledger::LedgerView as Viewer, PatientRef};
