//! How every Custodian service runs: configuration from the environment, structured JSON logs
//! with request ids, Prometheus metrics, health probes and graceful shutdown.
//!
//! - [`config`]: typed reads of environment variables with working defaults.
//! - [`logging`]: JSON logs on stdout; spans never record request bodies (no PHI in logs).
//! - [`http`]: the request-id and metrics middleware every service wraps its app in.
//! - [`metrics`]: one Prometheus registry per service and the `/metrics` handler.
//! - [`health`]: `/healthz` (alive) and `/readyz` (dependencies answer).
//! - [`shutdown`]: stopping background tasks once the HTTP server has drained.
//! - [`tls`]: HTTPS on the listeners (optionally mutual TLS) and TLS for calls between services.

pub mod config;
pub mod health;
pub mod http;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod shutdown;
pub mod tls;

pub use config::{ConfigError, Env};
pub use health::{Readiness, ReadinessProbe};
pub use metrics::Metrics;
