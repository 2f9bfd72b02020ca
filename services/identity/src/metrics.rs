//! Identity's own Prometheus collectors (registered on the service's `Metrics`).

use custodian_telemetry::Metrics;
use prometheus::{IntCounter, IntCounterVec, Opts};

#[derive(Clone)]
pub struct IdentityMetrics {
    /// Tokens issued, by grant type (`password`, `client_credentials`).
    pub tokens_issued: IntCounterVec,
    /// Refused token requests, by reason (`invalid_credentials`, `suspended`, ...).
    pub token_failures: IntCounterVec,
    /// Users suspended (by an administrator or an anomaly alert).
    pub users_suspended: IntCounter,
}

impl IdentityMetrics {
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let tokens_issued = IntCounterVec::new(
            Opts::new("tokens_issued_total", "Access tokens issued"),
            &["grant_type"],
        )?;
        let token_failures = IntCounterVec::new(
            Opts::new("token_failures_total", "Token requests refused"),
            &["reason"],
        )?;
        let users_suspended = IntCounter::new("users_suspended_total", "Users suspended")?;
        metrics.register(Box::new(tokens_issued.clone()));
        metrics.register(Box::new(token_failures.clone()));
        metrics.register(Box::new(users_suspended.clone()));
        Ok(Self {
            tokens_issued,
            token_failures,
            users_suspended,
        })
    }
}
