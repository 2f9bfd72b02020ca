//! OpenAPI descriptions of the probes `custodian_telemetry::health::configure` mounts (the
//! handlers live there; these functions only carry the documentation).

#![allow(dead_code)]

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub(crate) async fn healthz() {}

/// Redis and every upstream service answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: every check passed"),
        (status = 503, description = "Not ready: the failing checks are listed")
    )
)]
pub(crate) async fn readyz() {}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Metrics", content_type = "text/plain")))]
pub(crate) async fn metrics() {}
