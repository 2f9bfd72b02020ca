//! End-to-end support: the whole suite as real processes, and a client for its gateway.
//!
//! - [`suite`]: starts the six service binaries on free ports with fresh databases and a fresh
//!   stream prefix against the local PostgreSQL and Redis, and stops them on drop.
//! - [`api`]: a small HTTP client for the gateway (tokens, FHIR, admin calls).
//! - [`bulk`]: a synthetic population, bulk import as transaction Bundles, and `$export` to
//!   files (the `custodian-bulk` command, the load runs).
//! - [`demo`]: the demo data set (two hospitals, their practitioners, Alice and her consent),
//!   loaded by `make run` through the `demo-seed` binary and by the end-to-end story.
//! - [`faults`]: the fault harness (`make faults`): load through the gateway while services,
//!   Redis and PostgreSQL are killed, then proof that nothing acknowledged was lost.
//! - [`verify`]: an independent check of ledger proofs and checkpoint signatures, so the
//!   story does not trust the ledger's own verifier.

pub mod api;
pub mod bulk;
pub mod demo;
pub mod faults;
pub mod suite;
pub mod verify;
