//! Identity's own Prometheus collectors (registered on the service's `Metrics`).

use custodian_telemetry::Metrics;
use prometheus::{IntCounter, IntCounterVec, Opts};

#[derive(Clone)]
pub struct IdentityMetrics {
    /// Tokens issued, by grant type (`password`, `client_credentials`).
    pub tokens_issued: IntCounterVec,
    /// Refused token requests, by reason (`invalid_credentials`: a wrong password or client
    /// secret, `locked_out`, `throttled`, `busy`, `suspended`, or the OAuth error code).
    pub token_failures: IntCounterVec,
    /// Users suspended (by an administrator or an anomaly alert).
    pub users_suspended: IntCounter,
    /// Accounts and clients locked out after repeated failed logins.
    pub login_lockouts: IntCounter,
    /// Login attempts refused before any hash, by reason (`address`: too many failures from the
    /// address; `busy`: every hash slot and queue place taken).
    pub login_throttled: IntCounterVec,
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
        let login_lockouts = IntCounter::new(
            "login_lockouts_total",
            "Accounts and clients locked out after repeated failed logins",
        )?;
        let login_throttled = IntCounterVec::new(
            Opts::new(
                "login_throttled_total",
                "Login attempts refused before hashing (address throttle, hash queue full)",
            ),
            &["reason"],
        )?;
        // The series alerts and dashboards read exist from the start, at 0, so an alert on
        // their increase sees the first failure.
        for reason in [
            "invalid_credentials",
            "locked_out",
            "suspended",
            "throttled",
            "busy",
        ] {
            token_failures.with_label_values(&[reason]);
        }
        for reason in ["address", "busy"] {
            login_throttled.with_label_values(&[reason]);
        }
        metrics.register(Box::new(tokens_issued.clone()));
        metrics.register(Box::new(token_failures.clone()));
        metrics.register(Box::new(users_suspended.clone()));
        metrics.register(Box::new(login_lockouts.clone()));
        metrics.register(Box::new(login_throttled.clone()));
        Ok(Self {
            tokens_issued,
            token_failures,
            users_suspended,
            login_lockouts,
            login_throttled,
        })
    }
}
