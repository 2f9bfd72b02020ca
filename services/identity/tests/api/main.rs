//! Black-box tests of identity: each spawns the real application on a free port with a fresh
//! database and stream prefix, against the local PostgreSQL and Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod admin;
mod discovery;
mod helpers;
mod keys;
mod login;
mod migrations;
mod revocation;
mod scopes;
mod suspension;
mod token;
mod trust;
