//! Black-box tests of the ledger: the real app, a real database and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod accesses;
mod appends;
mod audit_event;
mod deny;
mod health;
mod helpers;
mod key_rotation;
mod migrations;
mod proofs;
mod restart;
mod stream_trust;
mod throughput;
mod tiles;
mod verify;
mod witness;
