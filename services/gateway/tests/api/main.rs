//! Black-box tests: the real gateway on port 0 in front of echo servers standing in for the
//! five services, with a test token issuer and the local Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod auth;
mod docs;
mod forwarding;
mod helpers;
mod proxy;
mod routing;
mod streams;
