//! The gateway's own metrics, beside the HTTP metrics every service has. Labels are bounded:
//! the upstream's name, a status code, a rejection reason; never a path, an id or a user.

use custodian_telemetry::Metrics;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

#[derive(Clone)]
pub struct GatewayMetrics {
    /// `gateway_upstream_requests_total{upstream,status}`; status is the upstream's, or the
    /// gateway's 502/504 when it did not answer.
    pub upstream_requests: IntCounterVec,
    /// `gateway_upstream_duration_seconds{upstream}`: until the upstream's response head.
    pub upstream_duration: HistogramVec,
    /// `gateway_auth_rejections_total{reason}`: missing, invalid, revoked, suspended,
    /// keys_unavailable.
    pub auth_rejections: IntCounterVec,
}

impl GatewayMetrics {
    /// Creates the collectors and registers them in the service's registry.
    #[allow(clippy::expect_used)]
    pub fn new(metrics: &Metrics) -> Self {
        // Constant options: these fail only on a programming error, at start, which the first
        // test that builds the app reveals (as the shared `Metrics::new` does).
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "gateway_upstream_requests_total",
                "Requests forwarded, by upstream service and status",
            ),
            &["upstream", "status"],
        )
        .expect("constant metric options");
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_upstream_duration_seconds",
                "Time until the upstream's response head",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                30.0,
            ]),
            &["upstream"],
        )
        .expect("constant metric options");
        let auth_rejections = IntCounterVec::new(
            Opts::new(
                "gateway_auth_rejections_total",
                "Requests refused at the edge, by reason",
            ),
            &["reason"],
        )
        .expect("constant metric options");
        // Every reason exists from the start, at 0, so an alert on its increase sees the first.
        for reason in [
            "missing",
            "invalid",
            "revoked",
            "suspended",
            "keys_unavailable",
            "forbidden",
        ] {
            auth_rejections.with_label_values(&[reason]);
        }
        metrics.register(Box::new(upstream_requests.clone()));
        metrics.register(Box::new(upstream_duration.clone()));
        metrics.register(Box::new(auth_rejections.clone()));
        Self {
            upstream_requests,
            upstream_duration,
            auth_rejections,
        }
    }
}
