//! Black-box tests: the real app on port 0, a fresh database per test, a random stream prefix,
//! real PostgreSQL and Redis, a test token issuer and a stand-in consent service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod attacks;
mod conditional;
mod consent;
mod crud;
mod decisions;
mod encryption;
mod erasure;
mod events;
mod examples;
mod export;
mod helpers;
mod interactions;
mod memberships;
mod metadata;
mod migrations;
mod operations;
mod references;
mod reindex;
mod search;
mod search_composites;
mod search_depth;
mod search_gaps;
mod stream_trust;
mod transaction;
mod validation;
