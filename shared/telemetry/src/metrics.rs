//! One Prometheus registry per service. Labels never carry patient data or resource ids: HTTP
//! metrics are labelled by the matched route pattern (`/fhir/{type}/{id}`), not the path.

use std::sync::OnceLock;

use actix_web::{http::header::CONTENT_TYPE, web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        // Fails only on an empty prefix, and "custodian" is a constant; label values are free text.
        #[allow(clippy::expect_used)]
        let registry = Registry::new_custom(
            Some("custodian".into()),
            Some(
                [("service".to_string(), service.to_string())]
                    .into_iter()
                    .collect(),
            ),
        )
        .expect("static registry options are valid");
        // Constant name, help and label names, all valid: this cannot fail.
        #[allow(clippy::expect_used)]
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["method", "route", "status"],
        )
        .expect("static metric options are valid");
        // Constant name, help, label names and increasing buckets, all valid: this cannot fail.
        #[allow(clippy::expect_used)]
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )
        .expect("static metric options are valid");
        let metrics = Self {
            registry,
            http_requests,
            http_duration,
        };
        metrics.register(Box::new(metrics.http_requests.clone()));
        metrics.register(Box::new(metrics.http_duration.clone()));
        if let Some(rejections) = stream_rejections() {
            metrics.register(Box::new(rejections.clone()));
        }
        if let Some(groups) = consumer_groups() {
            for collector in groups.collectors() {
                metrics.register(collector);
            }
        }
        metrics
    }

    /// Adds a service-specific collector. Registering the same name twice is a programming
    /// error caught by the first test that builds the app.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::error!(error = %e, "metric registration failed");
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metric encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// `stream_messages_rejected_total{stream,reason}`: stream messages refused before any handler
/// saw them (a missing or bad signature, a producer not trusted for the stream). One counter per
/// process, counted by whichever consumer refused the message and registered in every service's
/// registry by [`Metrics::new`], so no service has to wire it. The stream consumers
/// (`custodian_events::consumer`) give it fixed label values only.
pub fn stream_rejections() -> Option<&'static IntCounterVec> {
    static COUNTER: OnceLock<Option<IntCounterVec>> = OnceLock::new();
    COUNTER
        .get_or_init(|| {
            IntCounterVec::new(
                Opts::new(
                    "stream_messages_rejected_total",
                    "Stream messages refused unhandled (unsigned, bad signature, untrusted producer), by stream and reason",
                ),
                &["stream", "reason"],
            )
            .map_err(|e| tracing::error!(error = %e, "stream rejection counter not created"))
            .ok()
        })
        .as_ref()
}

/// How the consumer groups this process belongs to are doing, labelled by stream and group (both
/// fixed names). Process-wide like [`stream_rejections`], registered by [`Metrics::new`].
#[derive(Clone)]
pub struct ConsumerGroupMetrics {
    /// `stream_group_pending_messages`: delivered to the group, not yet acknowledged.
    pub pending: IntGaugeVec,
    /// `stream_group_lag_messages`: in the stream, not yet delivered to the group.
    pub lag: IntGaugeVec,
    /// `stream_messages_redelivered_total`: claimed from a consumer that stopped acknowledging.
    pub redelivered: IntCounterVec,
    /// `stream_messages_dead_lettered_total{reason}`: moved to `<stream>:dead`.
    pub dead_lettered: IntCounterVec,
}

impl ConsumerGroupMetrics {
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.pending.clone()),
            Box::new(self.lag.clone()),
            Box::new(self.redelivered.clone()),
            Box::new(self.dead_lettered.clone()),
        ]
    }
}

pub fn consumer_groups() -> Option<&'static ConsumerGroupMetrics> {
    static METRICS: OnceLock<Option<ConsumerGroupMetrics>> = OnceLock::new();
    METRICS
        .get_or_init(|| {
            let build = || -> Result<ConsumerGroupMetrics, prometheus::Error> {
                Ok(ConsumerGroupMetrics {
                    pending: IntGaugeVec::new(
                        Opts::new(
                            "stream_group_pending_messages",
                            "Messages delivered to the consumer group and not yet acknowledged",
                        ),
                        &["stream", "group"],
                    )?,
                    lag: IntGaugeVec::new(
                        Opts::new(
                            "stream_group_lag_messages",
                            "Messages in the stream not yet delivered to the consumer group",
                        ),
                        &["stream", "group"],
                    )?,
                    redelivered: IntCounterVec::new(
                        Opts::new(
                            "stream_messages_redelivered_total",
                            "Messages claimed from a group member that stopped acknowledging (died or hung)",
                        ),
                        &["stream", "group"],
                    )?,
                    dead_lettered: IntCounterVec::new(
                        Opts::new(
                            "stream_messages_dead_lettered_total",
                            "Messages moved to the dead-letter stream, by reason",
                        ),
                        &["stream", "group", "reason"],
                    )?,
                })
            };
            build()
                .map_err(|e| tracing::error!(error = %e, "consumer group metrics not created"))
                .ok()
        })
        .as_ref()
}

/// `GET /metrics`
pub async fn metrics_endpoint(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(metrics.render())
}
