//! Black-box tests of the consent service: the real application, a fresh database per test, real
//! PostgreSQL and Redis.

mod authorization;
mod decide;
mod helpers;
mod lifecycle;
mod migrations;
mod operations;
mod search;
mod validation;
