//! The access events consent publishes on the `access` stream (ledger and anomaly consume them):
//! one per read, search, write or refusal, about the patient whose consent it was.

use actix_web::HttpRequest;
use custodian_auth::Claims;
use custodian_events::{AccessAction, AccessEvent, AccessOutcome, Actor, Source};
use uuid::Uuid;

use super::PatientRef;
use crate::error::ConsentError;

pub const PURPOSE_HEADER: &str = "x-purpose-of-use";
pub const DEFAULT_PURPOSE: &str = "TREAT";

/// What a request says about itself beyond its token: purpose of use and origin.
#[derive(Debug, Clone)]
pub struct RequestContext {
    purpose: String,
    source: Source,
}

impl RequestContext {
    /// Reads `X-Purpose-Of-Use` (an HL7 v3 PurposeOfUse code; `TREAT` when absent).
    pub fn from_request(req: &HttpRequest) -> Result<Self, ConsentError> {
        let purpose = match req.headers().get(PURPOSE_HEADER) {
            None => DEFAULT_PURPOSE.to_string(),
            Some(value) => {
                let raw = value.to_str().unwrap_or_default().trim();
                if raw.is_empty()
                    || raw.len() > 32
                    || !raw
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(ConsentError::bad_request(
                        "X-Purpose-Of-Use must be a PurposeOfUse code such as TREAT",
                    ));
                }
                raw.to_string()
            }
        };
        let source = Source {
            ip: req
                .connection_info()
                .realip_remote_addr()
                .map(str::to_string),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect()),
        };
        Ok(Self { purpose, source })
    }

    /// One access event about consents.
    pub fn event(
        &self,
        claims: &Claims,
        patient: Option<&PatientRef>,
        action: AccessAction,
        count: u32,
        outcome: AccessOutcome,
    ) -> AccessEvent {
        AccessEvent {
            id: Uuid::new_v4(),
            time: chrono::Utc::now(),
            actor: Actor {
                id: claims.sub.clone(),
                role: claims.role.as_str().to_string(),
                organization: claims.organization.clone(),
                department: claims.department.clone(),
            },
            patient: patient.map(|p| p.to_string()),
            action,
            resource_type: Some("Consent".into()),
            count,
            purpose: self.purpose.clone(),
            outcome,
            break_glass: false,
            confidentiality: None,
            source: self.source.clone(),
        }
    }
}
