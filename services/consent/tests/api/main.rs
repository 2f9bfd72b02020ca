//! Black-box tests of the consent service: the real application, a fresh database per test, real
//! PostgreSQL and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod authorization;
mod decide;
mod helpers;
mod history;
mod lifecycle;
mod memberships;
mod migrations;
mod operations;
mod search;
mod validation;
