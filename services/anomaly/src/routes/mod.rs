//! The HTTP routes: `/anomaly/alerts` for auditors and administrators. Health and metrics come
//! from `custodian_telemetry::health`.

pub mod alerts;

use actix_web::web;

/// Registers every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/anomaly/alerts", web::get().to(alerts::list::list_alerts))
        .route(
            "/anomaly/alerts/{id}",
            web::get().to(alerts::read::read_alert),
        );
}
