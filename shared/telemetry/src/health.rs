//! `/healthz` says the process is alive; `/readyz` says every dependency it needs answers, so
//! Kubernetes only routes traffic to instances that can serve it. Both name the service, so
//! whoever probes a port knows which process answered (a port another process took answers
//! too, and would otherwise look like a healthy service).

use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::metrics::{metrics_endpoint, Metrics};

pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One dependency check, e.g. "PostgreSQL answers SELECT 1".
pub trait ReadinessProbe: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> ProbeFuture;
}

/// The checks `/readyz` runs.
#[derive(Clone, Default)]
pub struct Readiness {
    probes: Vec<Arc<dyn ReadinessProbe>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, probe: impl ReadinessProbe + 'static) -> Self {
        self.probes.push(Arc::new(probe));
        self
    }

    async fn report(&self, service: &str) -> (bool, serde_json::Value) {
        let mut ready = true;
        let mut checks = serde_json::Map::new();
        for probe in &self.probes {
            let outcome =
                tokio::time::timeout(std::time::Duration::from_secs(2), probe.check()).await;
            let value = match outcome {
                Ok(Ok(())) => json!("ok"),
                Ok(Err(e)) => {
                    ready = false;
                    json!(format!("failing: {e}"))
                }
                Err(_) => {
                    ready = false;
                    json!("failing: timed out")
                }
            };
            checks.insert(probe.name().to_string(), value);
        }
        (
            ready,
            json!({
                "status": if ready { "ready" } else { "not ready" },
                "service": service,
                "checks": checks,
            }),
        )
    }
}

async fn healthz(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "service": metrics.service() }))
}

async fn readyz(readiness: web::Data<Readiness>, metrics: web::Data<Metrics>) -> HttpResponse {
    let (ready, body) = readiness.report(metrics.service()).await;
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Mounts `/healthz`, `/readyz` and `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig, readiness: Readiness, metrics: Metrics) {
    cfg.app_data(web::Data::new(readiness))
        .app_data(web::Data::new(metrics))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_endpoint));
}
