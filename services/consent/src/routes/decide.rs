//! `POST /consent/decide`: may these actors see this patient's data of this type for this
//! purpose? Answered with `custodian_policy::decide` over the patient's stored active consents.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_auth::Authenticated;
use custodian_policy::{decide as policy_decide, AccessRequest, DecisionReason};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::{Caller, ConsentResource, PatientRef},
    error::ConsentError,
    routes::AppState,
    store,
};

/// An access question.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// `Patient/<id>` (or the bare id) whose data is asked for.
    pub patient: String,
    /// Every reference the requester is known by (`Organization/h1`, `Practitioner/p1`).
    #[serde(default)]
    pub actors: Vec<String>,
    /// HL7 v3 PurposeOfUse code (`TREAT`, `HPAYMT` ...).
    pub purpose: String,
    /// FHIR resource type asked for (`Observation`).
    pub resource_type: String,
    /// Consent action code; `access` when absent.
    pub action: Option<String>,
    /// When; now when absent.
    pub at: Option<DateTime<Utc>>,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecideResponse {
    pub permit: bool,
    /// `{"permitted_by": "Consent/<id>"}`, `{"denied_by": "Consent/<id>"}` or `"no_consent"`.
    #[schema(value_type = Value)]
    pub reason: DecisionReason,
}

#[utoipa::path(
    post,
    path = "/consent/decide",
    tag = "decide",
    request_body = DecideRequest,
    responses(
        (status = 200, description = "The decision (deny by default, deny beats permit)", body = DecideResponse),
        (status = 400, description = "Malformed question", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Patients may not ask", body = Object, content_type = "application/fhir+json"),
    ),
    security(("bearer" = []))
)]
pub async fn decide(
    auth: Authenticated,
    state: web::Data<AppState>,
    body: web::Json<DecideRequest>,
) -> Result<HttpResponse, ConsentError> {
    let Authenticated(claims) = auth;
    Caller::new(&claims).may_decide()?;
    let question = body.into_inner();
    let patient = PatientRef::parse(&question.patient).map_err(ConsentError::bad_request)?;
    if question.purpose.trim().is_empty() || question.resource_type.trim().is_empty() {
        return Err(ConsentError::bad_request(
            "purpose and resource_type are required",
        ));
    }
    let mut conn = state.pool.get().await?;
    let resources = store::active_for_patient(&mut conn, patient.as_str()).await?;
    drop(conn);
    let mut rules = Vec::new();
    for resource in resources {
        match ConsentResource::from_stored(resource).and_then(|r| r.rules()) {
            Ok(found) => rules.extend(found),
            Err(e) => {
                tracing::error!(error = %e, "stored consent has unreadable rules; ignored (deny by default)")
            }
        }
    }
    let request = AccessRequest {
        patient: patient.as_str(),
        actors: &question.actors,
        purpose: question.purpose.trim(),
        resource_type: question.resource_type.trim(),
        action: question.action.as_deref().unwrap_or("access"),
        at: question.at.unwrap_or_else(Utc::now),
    };
    let decision = policy_decide(&rules, &request);
    let label = if decision.permit { "permit" } else { "deny" };
    state.metrics.decisions.with_label_values(&[label]).inc();
    Ok(HttpResponse::Ok().json(DecideResponse {
        permit: decision.permit,
        reason: decision.reason,
    }))
}
