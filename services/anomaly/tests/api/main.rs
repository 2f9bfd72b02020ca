//! Black-box tests: the real service on port 0, a fresh database per test, a random stream
//! prefix, the local PostgreSQL and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod alerts;
mod care_facts;
mod detected_issue;
mod helpers;
mod migrations;
mod replay;
mod scoring;
mod suspension;
mod trust;
mod webhook;
