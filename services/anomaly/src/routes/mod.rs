//! The HTTP routes: alerts for security staff, as FHIR `DetectedIssue`s
//! (`/anomaly/DetectedIssue`, with the `$acknowledge` and `$dismiss` operations) and in the
//! earlier plain shape (`/anomaly/alerts`). Who may call them is the access kernel's decision
//! ([`crate::domain::access`]). Health and metrics come from `custodian_telemetry::health`.

pub mod alerts;
pub mod detected_issue;

use actix_web::web;
use custodian_access::AccessLog;

use crate::{consumer::SharedDetector, metrics::AnomalyMetrics};

/// What the review operations need beside the pool.
#[derive(Clone)]
pub struct Review {
    /// Where their access events go.
    pub log: AccessLog,
    /// Dismissals teach it at once.
    pub detector: SharedDetector,
    pub metrics: AnomalyMetrics,
}

/// Registers every route of the service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/anomaly/alerts", web::get().to(alerts::list::list_alerts))
        .route(
            "/anomaly/alerts/{id}",
            web::get().to(alerts::read::read_alert),
        )
        .route(
            "/anomaly/DetectedIssue",
            web::get().to(detected_issue::search::search_issues),
        )
        .route(
            "/anomaly/DetectedIssue/{id}",
            web::get().to(detected_issue::read::read_issue),
        )
        .route(
            "/anomaly/DetectedIssue/{id}/$acknowledge",
            web::post().to(detected_issue::review::acknowledge),
        )
        .route(
            "/anomaly/DetectedIssue/{id}/$dismiss",
            web::post().to(detected_issue::review::dismiss),
        );
}
