//! The route table: the FHIR Consent interactions under both `/fhir` (the gateway sends FHIR
//! clients' Consent requests here) and `/consent`, the decision endpoint, and the internal
//! snapshot records loads at start.

pub mod consent;
pub mod decide;
pub mod internal;

use actix_web::{web, HttpResponse};
use custodian_access::AccessLog;
use custodian_database::Pool;
use custodian_events::{outbox::Relay, Streams};
use custodian_fhir::FhirError;

use crate::{error::ConsentError, metrics::ConsentMetrics};

/// What every handler shares.
pub struct AppState {
    pub pool: Pool,
    pub streams: Streams,
    pub relay: Relay,
    /// The one way access events leave the service (the outbox, then the relay).
    pub log: AccessLog,
    pub metrics: ConsentMetrics,
    /// `PUBLIC_URL` without a trailing slash.
    pub public_url: String,
    /// Who is in which CareTeam, Group and PractitionerRole (records' relationships).
    pub memberships: custodian_access::MembershipStore,
}

/// Mounts every route of the service (health and metrics are mounted by startup).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/fhir").configure(consent::configure))
        .service(
            web::scope("/consent")
                .route("/decide", web::post().to(decide::decide))
                .configure(consent::configure),
        )
        .route("/internal/consents", web::get().to(internal::list));
}

/// Unknown paths answer with an `OperationOutcome` too.
pub async fn not_found() -> Result<HttpResponse, ConsentError> {
    Err(FhirError::NotFound("no such endpoint".into()).into())
}
