//! HTTP handlers: the proxy every public service path goes through, and the documentation.
//! `/healthz`, `/readyz` and `/metrics` come from `custodian_telemetry::health`.

pub mod docs;
pub mod health;
pub mod proxy;
