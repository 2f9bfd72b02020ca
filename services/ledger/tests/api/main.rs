//! Black-box tests of the ledger: the real app, a real database and Redis.

mod accesses;
mod appends;
mod deny;
mod health;
mod helpers;
mod migrations;
mod proofs;
mod restart;
mod throughput;
