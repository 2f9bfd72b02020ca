//! Alerts as FHIR R4 `DetectedIssue`s (security staff only; rendering in
//! [`crate::domain::detected_issue`]):
//!
//! - `GET /anomaly/DetectedIssue` ([`search`]): a `searchset` Bundle, newest first.
//! - `GET /anomaly/DetectedIssue/{id}` ([`read`]).
//! - `POST /anomaly/DetectedIssue/{id}/$acknowledge` and `.../$dismiss` ([`review`]): FHIR
//!   operations on the instance rather than a PATCH of `status`, because they do more than set
//!   a field: each is recorded (reviewer, date, an optional note) as a `mitigation`, audited as
//!   an access event, and a dismissal teaches the detector a legitimate relationship.

pub mod read;
pub mod review;
pub mod search;

use std::collections::HashMap;

use actix_web::HttpResponse;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::domain::{
    alert_events,
    alerts::AlertRecord,
    detected_issue::render,
    feedback::{self, FeedbackRow},
};

/// FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";

/// The issues of `alerts`, with their feedback and the other events of their incidents.
pub(crate) async fn render_all(
    conn: &mut AsyncPgConnection,
    alerts: &[AlertRecord],
) -> diesel::QueryResult<Vec<serde_json::Value>> {
    let ids: Vec<Uuid> = alerts.iter().map(|a| a.id).collect();
    let mut by_alert: HashMap<Uuid, Vec<FeedbackRow>> = feedback::for_alerts(conn, &ids).await?;
    let mut events = alert_events::for_alerts(conn, &ids).await?;
    Ok(alerts
        .iter()
        .map(|a| {
            render(
                a,
                &by_alert.remove(&a.id).unwrap_or_default(),
                &events.remove(&a.id).unwrap_or_default(),
            )
        })
        .collect())
}

pub(crate) fn fhir(body: &serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().content_type(FHIR_JSON).json(body)
}
