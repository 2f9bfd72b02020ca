//! `POST /consent/decide`: what do a patient's consents answer for these actors, this purpose,
//! this action on this data? Answered by the policy engine ([`custodian_policy::evaluate`])
//! over the patient's stored active consents, exactly as records' replica would.
//!
//! Asked by services, or by a patient about herself; everyone else gets 403. Every call is an
//! access event (a read of the patient's consents), permitted or not.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_access::{Caller, Interaction, Touched};
use custodian_fhir::FhirError;
use custodian_policy::{
    evaluate, resource_types::is_resource_type, Coding, ConsentAction, ConsentVerdict,
    ParsedConsent, ResourceFacts,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::{
        access::{self, CONSENT},
        ConsentResource, PatientRef,
    },
    error::ConsentError,
    routes::{consent::refuse, AppState},
    store,
};

/// The data's clinically relevant time.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataTime {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// An access question. The instance facts (`resource_id`, `security_labels`, `codes`,
/// `data_time`) are optional: a consent that depends on one that is not given answers
/// `undetermined`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// `Patient/<id>` (or the bare id) whose data is asked for.
    pub patient: String,
    /// Every reference the requester is known by (`Organization/h1`, `Practitioner/p1`). The
    /// CareTeams, Groups and PractitionerRoles they are in (as records knows them) are added.
    #[serde(default)]
    pub actors: Vec<String>,
    /// HL7 v3 PurposeOfUse code (`TREAT`, `HPAYMT` ...).
    pub purpose: String,
    /// FHIR resource type asked for (`Observation`).
    pub resource_type: String,
    /// consentaction code (`access`, `collect`, `correct`, `use`, `disclose`); `access` when
    /// absent.
    #[schema(value_type = Option<String>)]
    pub action: Option<ConsentAction>,
    /// When; now when absent.
    pub at: Option<DateTime<Utc>>,
    /// The resource's id, for `provision.data` instances.
    pub resource_id: Option<String>,
    /// The resource's `meta.security` codings (`[]`: none, which is confidentiality N).
    #[schema(value_type = Option<Vec<Object>>)]
    pub security_labels: Option<Vec<Coding>>,
    /// The resource's codes (e.g. `Observation.code` codings).
    #[schema(value_type = Option<Vec<Object>>)]
    pub codes: Option<Vec<Coding>>,
    pub data_time: Option<DataTime>,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecideResponse {
    /// `permit`, `deny`, `not-applicable` (no consent speaks to it) or `undetermined` (it
    /// depends on facts of the data not given).
    pub decision: &'static str,
    /// True only for `permit`.
    pub permit: bool,
    /// `Consent/<id>` that decided.
    pub consents: Vec<String>,
}

fn label(verdict: &ConsentVerdict) -> &'static str {
    match verdict {
        ConsentVerdict::Permit { .. } => "permit",
        ConsentVerdict::Deny { .. } => "deny",
        ConsentVerdict::NotApplicable => "not-applicable",
        ConsentVerdict::Undetermined { .. } => "undetermined",
    }
}

#[utoipa::path(
    post,
    path = "/consent/decide",
    tag = "decide",
    request_body = DecideRequest,
    responses(
        (status = 200, description = "What the patient's consents answer (any deny wins, else any permit, else not-applicable)", body = DecideResponse),
        (status = 400, description = "Malformed question", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "No valid token", body = Object, content_type = "application/fhir+json"),
        (status = 403, description = "Neither a service nor the patient herself", body = Object, content_type = "application/fhir+json"),
    ),
    security(("smart" = []))
)]
pub async fn decide(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<DecideRequest>,
) -> Result<HttpResponse, ConsentError> {
    let interaction = Interaction::Read;
    let question = body.into_inner();
    let patient = PatientRef::parse_lenient(&question.patient)
        .map_err(|e| ConsentError::bad_request(e.to_string()))?;
    let purpose = question.purpose.trim();
    let resource_type = question.resource_type.trim();
    if purpose.is_empty() || !is_resource_type(resource_type) {
        return Err(ConsentError::bad_request(
            "purpose and resource_type (a FHIR resource type) are required",
        ));
    }
    let decision = access::decide(&caller, &patient);
    if !decision.permitted() {
        let error = ConsentError::forbidden(decision.explanation.clone());
        return Err(refuse(
            &state,
            &caller,
            interaction,
            &decision,
            Some(&patient),
            error,
        )
        .await);
    }
    if !state.memberships.is_loaded() {
        return Err(FhirError::Unavailable(
            "memberships are not loaded yet; try again shortly".into(),
        )
        .into());
    }
    let mut conn = state.pool.get().await?;
    let stored = store::active_for_patient(&mut conn, patient.as_str()).await?;
    let consents: Vec<ParsedConsent> = stored
        .into_iter()
        .map(|(id, resource)| {
            let reference = format!("Consent/{id}");
            match ConsentResource::from_stored(resource) {
                Ok(r) => r.policy().clone().with_reference(reference),
                Err(e) => {
                    // Never a wider rule: a consent that cannot be read any more denies.
                    tracing::error!(error = %e, consent = %reference, "stored consent is unreadable; it denies everything until fixed");
                    ParsedConsent::deny_all(reference, patient.as_str())
                }
            }
        })
        .collect();
    // The actors with every container they are in at that time (CareTeam, Group,
    // PractitionerRole); a container whose members are unknown makes a deny naming it
    // Undetermined. The view's lock is released before the next await.
    let at = question.at.unwrap_or_else(Utc::now);
    let verdict = {
        let view = state.memberships.view(question.actors.clone(), at);
        let request = custodian_policy::ConsentRequest {
            patient: patient.as_str(),
            actors: view.actors(),
            membership: &view,
            purpose,
            action: question.action.unwrap_or(ConsentAction::Access),
            resource: ResourceFacts {
                resource_type,
                id: question.resource_id.as_deref(),
                security_labels: question.security_labels.as_deref(),
                data_time: question.data_time.map(|t| (t.start, t.end)),
                codes: question.codes.as_deref(),
                // The consent service holds no clinical data: what refers to what is unknown
                // here, so `data.meaning` dependents/related answer Undetermined (records
                // decides them on its own facts).
                references: None,
                referrers: None,
            },
            at,
        };
        evaluate(&consents, &request)
    };
    let decided = label(&verdict);
    state.metrics.decisions.with_label_values(&[decided]).inc();
    let mut call = decision;
    call.consents = verdict.consents().to_vec();
    let consulted = u32::try_from(consents.len()).unwrap_or(u32::MAX);
    let event = call.event(
        &caller,
        interaction,
        Touched::new(CONSENT, Some(&patient)).count(consulted),
    );
    state.log.record(&mut conn, &[event]).await?;
    drop(conn);
    Ok(HttpResponse::Ok().json(DecideResponse {
        decision: decided,
        permit: verdict.is_permit(),
        consents: verdict.consents().to_vec(),
    }))
}
