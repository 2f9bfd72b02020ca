//! One Prometheus registry per service. Labels never carry patient data or resource ids: HTTP
//! metrics are labelled by the matched route pattern (`/fhir/{type}/{id}`), not the path.
//!
//! Naming (<https://prometheus.io/docs/practices/naming/>): the registry prefixes every name
//! with `custodian_` and labels every series with `service`; counters end in `_total`, durations
//! are `_seconds`, sizes `_bytes`, and every metric has HELP text (`promtool check metrics`
//! against each service's live `/metrics` enforces it: `integration-tests/tests/metrics.rs`).

use std::sync::{Mutex, OnceLock};

use actix_web::{http::header::CONTENT_TYPE, web, HttpResponse};
use prometheus::{
    Counter, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::memory;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// The service these metrics are of (every series' `service` label).
    service: String,
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
                "HTTP requests by route pattern (unmatched paths: `unmatched`), method and status code",
            ),
            &["method", "route", "status"],
        )
        .expect("static metric options are valid");
        // Constant name, help, label names and increasing buckets, all valid: this cannot fail.
        #[allow(clippy::expect_used)]
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern, method and status class (2xx, 4xx, 5xx)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["method", "route", "status_class"],
        )
        .expect("static metric options are valid");
        let metrics = Self {
            registry,
            service: service.to_string(),
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
        if let Some(process) = process() {
            for collector in process.collectors() {
                metrics.register(collector);
            }
        }
        if let Some(pools) = pools() {
            for collector in pools.collectors() {
                metrics.register(collector);
            }
        }
        metrics
    }

    /// The service these metrics are of.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Adds a service-specific collector. Registering the same name twice is a programming
    /// error caught by the first test that builds the app.
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::error!(error = %e, "metric registration failed");
        }
    }

    pub fn render(&self) -> String {
        // Values read from the process and the pools as of this scrape.
        if let Some(process) = process() {
            process.refresh();
        }
        if let Some(pools) = pools() {
            pools.refresh();
        }
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

/// The process itself, read from `/proc` at each scrape (Linux; elsewhere they stay 0):
/// `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
/// `process_start_time_seconds`. Process-wide, registered by [`Metrics::new`].
pub struct ProcessMetrics {
    resident: IntGauge,
    cpu: Counter,
    open_fds: IntGauge,
    started: IntGauge,
}

impl ProcessMetrics {
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.resident.clone()),
            Box::new(self.cpu.clone()),
            Box::new(self.open_fds.clone()),
            Box::new(self.started.clone()),
        ]
    }

    fn refresh(&self) {
        if let Some(bytes) = memory::resident_bytes() {
            self.resident.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        if let Some(seconds) = cpu_seconds() {
            // A counter only goes up: add what was used since the last scrape.
            let delta = seconds - self.cpu.get();
            if delta > 0.0 {
                self.cpu.inc_by(delta);
            }
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(entries.count() as i64);
        }
    }
}

/// User and system CPU time of this process, from `/proc/self/stat` (fields 14 and 15, in
/// clock ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf reads a configuration value; no pointer, no precondition.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (user + system) / ticks as f64)
}

pub fn process() -> Option<&'static ProcessMetrics> {
    static METRICS: OnceLock<Option<ProcessMetrics>> = OnceLock::new();
    METRICS
        .get_or_init(|| {
            let build = || -> Result<ProcessMetrics, prometheus::Error> {
                let started = IntGauge::new(
                    "process_start_time_seconds",
                    "When the process started (Unix time)",
                )?;
                // The first registry is built at start-up: close enough to the process's start.
                started.set(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0),
                );
                Ok(ProcessMetrics {
                    resident: IntGauge::new(
                        "process_resident_memory_bytes",
                        "Resident memory of the process (RSS)",
                    )?,
                    cpu: Counter::new(
                        "process_cpu_seconds_total",
                        "User and system CPU time used by the process",
                    )?,
                    open_fds: IntGauge::new(
                        "process_open_fds",
                        "File descriptors the process holds open (sockets included)",
                    )?,
                    started,
                })
            };
            build()
                .map_err(|e| tracing::error!(error = %e, "process metrics not created"))
                .ok()
        })
        .as_ref()
}

/// What a connection pool reports of itself (deadpool's `Status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Open connections not checked out.
    pub available: usize,
    /// Tasks waiting for a connection.
    pub waiting: usize,
}

/// Reads one pool's status; None once the pool is gone (it is then forgotten).
pub type PoolSource = Box<dyn Fn() -> Option<PoolStatus> + Send + Sync>;

/// The database connection pools of this process, summed (a service may keep several: the
/// request pool and the group-commit writers'): `db_pool_connections{state="in_use|idle"}`,
/// `db_pool_max_connections`, `db_pool_waiting_tasks`. `custodian_database::pool` adds each pool
/// it builds ([`observe_pool`]); registered by [`Metrics::new`].
pub struct PoolMetrics {
    connections: IntGaugeVec,
    max: IntGauge,
    waiting: IntGauge,
    sources: Mutex<Vec<PoolSource>>,
}

impl PoolMetrics {
    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.connections.clone()),
            Box::new(self.max.clone()),
            Box::new(self.waiting.clone()),
        ]
    }

    fn refresh(&self) {
        let Ok(mut sources) = self.sources.lock() else {
            return;
        };
        let mut total = PoolStatus::default();
        sources.retain(|source| match source() {
            Some(s) => {
                total.max_size += s.max_size;
                total.size += s.size;
                total.available += s.available;
                total.waiting += s.waiting;
                true
            }
            None => false,
        });
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.connections
            .with_label_values(&["in_use"])
            .set(gauge(total.size.saturating_sub(total.available)));
        self.connections
            .with_label_values(&["idle"])
            .set(gauge(total.available));
        self.max.set(gauge(total.max_size));
        self.waiting.set(gauge(total.waiting));
    }
}

pub fn pools() -> Option<&'static PoolMetrics> {
    static METRICS: OnceLock<Option<PoolMetrics>> = OnceLock::new();
    METRICS
        .get_or_init(|| {
            let build = || -> Result<PoolMetrics, prometheus::Error> {
                let connections = IntGaugeVec::new(
                    Opts::new(
                        "db_pool_connections",
                        "PostgreSQL connections open in the process's pools, by state (in_use, idle)",
                    ),
                    &["state"],
                )?;
                for state in ["in_use", "idle"] {
                    connections.with_label_values(&[state]);
                }
                Ok(PoolMetrics {
                    connections,
                    max: IntGauge::new(
                        "db_pool_max_connections",
                        "Most PostgreSQL connections the process's pools may open",
                    )?,
                    waiting: IntGauge::new(
                        "db_pool_waiting_tasks",
                        "Tasks waiting for a PostgreSQL connection from the process's pools",
                    )?,
                    sources: Mutex::new(Vec::new()),
                })
            };
            build()
                .map_err(|e| tracing::error!(error = %e, "pool metrics not created"))
                .ok()
        })
        .as_ref()
}

/// Counts a pool in the `db_pool_*` gauges for as long as `source` answers.
pub fn observe_pool(source: PoolSource) {
    if let Some(pools) = pools() {
        if let Ok(mut sources) = pools.sources.lock() {
            sources.push(source);
        }
    }
}

/// The `status_class` label of a status code: `2xx`, `4xx`, ... (`other` outside 100-599).
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// `GET /metrics`
pub async fn metrics_endpoint(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_are_bounded() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(304), "3xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(999), "other");
    }

    #[test]
    fn process_and_pools_are_exported_with_the_prefix() {
        let metrics = Metrics::new("test");
        observe_pool(Box::new(|| {
            Some(PoolStatus {
                max_size: 8,
                size: 3,
                available: 1,
                waiting: 0,
            })
        }));
        // A dropped pool is forgotten at the next scrape.
        observe_pool(Box::new(|| None));
        let text = metrics.render();
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        };
        assert!(value("custodian_process_resident_memory_bytes{") > 0.0);
        assert!(value("custodian_process_open_fds{") > 0.0);
        assert!(value("custodian_process_start_time_seconds{") > 1.6e9);
        // Other tests of this binary may add pools of their own: at least this one's.
        assert!(value("custodian_db_pool_max_connections{") >= 8.0);
        assert!(value("custodian_db_pool_connections{state=\"in_use\"") >= 2.0);
        assert!(text.contains("# HELP custodian_process_cpu_seconds_total "));
        assert!(text.contains("# TYPE custodian_process_cpu_seconds_total counter"));
        assert_eq!(
            pools().map(|p| p.sources.lock().map(|s| s.len()).unwrap_or(0)),
            Some(1)
        );
    }
}
