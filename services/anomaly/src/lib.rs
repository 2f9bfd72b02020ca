//! Custodian's `anomaly` service: scores every access event, raises alerts and can get a user
//! suspended.
//!
//! - [`model`]: the detector, pure and deterministic (time comes from the events); the same
//!   code scores live and offline. Its module doc gives the features and the formula.
//! - [`replay`]: `anomaly replay --events FILE.jsonl`, offline scoring without database or Redis.
//! - [`simulate`]: `anomaly simulate`, a synthetic hospital's access log with labelled incidents;
//!   [`evaluate`]: `anomaly evaluate`, precision, recall and delays of a detector against it.
//! - [`federated`]: federated training across hospitals: parameters with Gaussian noise for a
//!   stated (ε, δ), averaged (FedAvg); `anomaly federate train|aggregate`.
//! - [`consumer`]: the `anomaly` group's handler on the access stream: idempotent by event id,
//!   stores scores, raises alerts (one per actor per 10 minutes) through the outbox onto the
//!   alerts stream, where identity picks them up.
//! - [`care_facts`]: the `anomaly` group's handler on records' relationships stream: care facts
//!   stored and taught to the detector.
//! - [`webhook`]: new alerts POSTed as `DetectedIssue`s, signed, from a durable queue.
//! - [`routes`]: `/anomaly/DetectedIssue` (search, read, `$acknowledge`, `$dismiss`) and
//!   `/anomaly/alerts` (security staff: auditor, admin).
//! - [`domain`]: rows, queries, the FHIR view and who may see it; [`schema`]: the tables;
//!   [`metrics`]: the service's counters.
//! - [`configuration`], [`startup`], [`error`]: settings, wiring, the error policy.

pub mod care_facts;
pub mod configuration;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod evaluate;
pub mod federated;
pub mod jsonl;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod routes;
pub mod schema;
pub mod simulate;
pub mod startup;
pub mod webhook;

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Custodian anomaly", description = "Alerts raised by scoring access events."),
    paths(
        routes::alerts::list::list_alerts,
        routes::alerts::read::read_alert,
        routes::detected_issue::search::search_issues,
        routes::detected_issue::read::read_issue,
        routes::detected_issue::review::acknowledge,
        routes::detected_issue::review::dismiss,
    ),
    components(schemas(domain::alerts::AlertRecord)),
    tags(
        (name = "alerts", description = "Anomaly alerts (roles auditor and admin)"),
        (name = "DetectedIssue", description = "Alerts as FHIR DetectedIssues, and their review (roles auditor and admin)")
    )
)]
struct ApiDoc;

/// The service's OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    custodian_auth::openapi::finish(&mut doc, "anomaly");
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_lists_the_routes() {
        let doc = super::openapi();
        let json = serde_json::to_value(&doc).expect("json");
        assert!(json["paths"]["/anomaly/alerts"]["get"].is_object());
        assert!(json["paths"]["/anomaly/alerts/{id}"]["get"].is_object());
        assert!(json["paths"]["/anomaly/DetectedIssue"]["get"].is_object());
        assert!(json["paths"]["/anomaly/DetectedIssue/{id}/$dismiss"]["post"].is_object());
        assert!(json["components"]["schemas"]["AlertRecord"].is_object());
    }
}
