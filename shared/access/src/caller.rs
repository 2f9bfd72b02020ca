//! `Caller`: who is asking, built once per request from the verified token, the declared
//! purpose of use, a break-glass reason and where the request came from.

use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
pub use custodian_auth::source::{client_ip, source_of};
use custodian_auth::{Authenticated, Claims, Role};
use custodian_events::Source;
use futures_util::future::LocalBoxFuture;

use crate::{
    error::AccessError,
    reference::{OrganizationRef, PatientRef, PractitionerRef},
    scope::ScopeSet,
    settings::AccessSettings,
};

pub const PURPOSE_HEADER: &str = "x-purpose-of-use";
pub const BREAK_GLASS_HEADER: &str = "x-break-glass";
pub const DEFAULT_PURPOSE: &str = "TREAT";
/// The purpose an access made under break-glass is recorded with.
pub const BREAK_GLASS_PURPOSE: &str = "ETREAT";

/// An HL7 v3 PurposeOfUse code (`TREAT`, `HOPERAT`, `HRESCH` ...), checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose(String);

impl Purpose {
    pub fn parse(raw: &str) -> Result<Self, AccessError> {
        let raw = raw.trim();
        if (1..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(Self(raw.to_string()))
        } else {
            Err(AccessError::BadRequest(
                "X-Purpose-Of-Use must be a PurposeOfUse code".into(),
            ))
        }
    }

    pub fn treatment() -> Self {
        Self(DEFAULT_PURPOSE.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Treatment and healthcare operations: what a custodian may do without a permit.
    pub fn is_treatment_or_operations(&self) -> bool {
        matches!(
            self.0.as_str(),
            "TREAT" | "ETREAT" | "CAREMGT" | "POPHLTH" | "HOPERAT"
        )
    }
}

/// Why a practitioner breaks the glass: free text, bounded, recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassReason(String);

impl BreakGlassReason {
    /// None for an empty reason: break-glass needs one.
    pub fn parse(raw: &str) -> Option<Self> {
        let cleaned: String = raw.chars().filter(|c| !c.is_control()).take(500).collect();
        let cleaned = cleaned.trim();
        (!cleaned.is_empty()).then(|| Self(cleaned.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub scopes: ScopeSet,
    pub purpose: Purpose,
    pub break_glass: Option<BreakGlassReason>,
    pub source: Source,
    pub request_id: Option<String>,
    organization: Option<OrganizationRef>,
    practitioner: Option<PractitionerRef>,
    patient: Option<PatientRef>,
    /// Containers (PractitionerRole, CareTeam, Group) the caller is a member of, when a service
    /// resolved them ([`Caller::with_memberships`]); the kernel resolves its own.
    memberships: Vec<String>,
}

impl Caller {
    /// A caller from claims alone (service-internal calls and tests): purpose TREAT, no
    /// break-glass, no source.
    pub fn from_claims(claims: Claims) -> Self {
        let organization = claims
            .organization
            .as_deref()
            .and_then(|o| OrganizationRef::parse(o).ok());
        let practitioner = claims
            .practitioner
            .as_deref()
            .and_then(|p| PractitionerRef::parse(p).ok());
        let patient = claims
            .patient
            .as_deref()
            .and_then(|p| PatientRef::parse_lenient(p).ok());
        Self {
            scopes: ScopeSet::from_token(&claims.scope),
            claims,
            purpose: Purpose::treatment(),
            break_glass: None,
            source: Source::default(),
            request_id: None,
            organization,
            practitioner,
            patient,
            memberships: Vec::new(),
        }
    }

    /// The same caller, also known by the containers it is a member of (a consent naming its
    /// care team names it).
    pub fn with_memberships(mut self, containers: Vec<String>) -> Self {
        self.memberships = containers;
        self
    }

    /// The caller of `req`, whose token was verified into `claims`.
    pub fn from_request(
        req: &HttpRequest,
        claims: Claims,
        settings: &AccessSettings,
    ) -> Result<Self, AccessError> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let purpose = match header(PURPOSE_HEADER) {
            None | Some("") => Purpose::treatment(),
            Some(raw) => Purpose::parse(raw)?,
        };
        let break_glass = match req.headers().get(BREAK_GLASS_HEADER) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(BreakGlassReason::parse)
                    .ok_or_else(|| {
                        AccessError::BadRequest("X-Break-Glass needs a reason".into())
                    })?,
            ),
        };
        let mut caller = Self::from_claims(claims);
        caller.purpose = purpose;
        caller.break_glass = break_glass;
        caller.source = source_of(req, &settings.trusted_proxies);
        caller.request_id = request_id_of(req);
        Ok(caller)
    }

    pub fn role(&self) -> Role {
        self.claims.role
    }

    pub fn organization(&self) -> Option<&OrganizationRef> {
        self.organization.as_ref()
    }

    pub fn practitioner(&self) -> Option<&PractitionerRef> {
        self.practitioner.as_ref()
    }

    /// The patient a patient's token speaks for (her launch context).
    pub fn own_patient(&self) -> Option<&PatientRef> {
        self.patient.as_ref()
    }

    /// Every reference the caller is known by in consents: its organisation, its practitioner,
    /// and the containers a service resolved for it.
    /// The kernel adds the CareTeams, Groups and PractitionerRoles it is in
    /// ([`crate::MembershipStore::view`]).
    pub fn actor_references(&self) -> Vec<String> {
        let mut references: Vec<String> = self
            .organization
            .iter()
            .map(|o| o.as_str().to_string())
            .chain(self.practitioner.iter().map(|p| p.as_str().to_string()))
            .collect();
        for container in &self.memberships {
            if !references.contains(container) {
                references.push(container.clone());
            }
        }
        references
    }

    /// The same caller with other scopes (tests, and narrowing a caller for a sub-request).
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scopes = ScopeSet::from_token(scope);
        self.claims.scope = scope.to_string();
        self
    }

    /// The same caller without break-glass: what it may do on its own rights.
    pub fn without_break_glass(&self) -> Self {
        Self {
            break_glass: None,
            ..self.clone()
        }
    }

    /// Whether this request asks for break-glass (only a practitioner's can succeed).
    pub fn asks_break_glass(&self) -> bool {
        self.break_glass.is_some()
    }
}

/// The request id the telemetry middleware assigned.
pub fn request_id_of(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<custodian_telemetry::http::RequestId>()
        .map(|r| r.0.clone())
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let auth = Authenticated::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let Authenticated(claims) = auth.await?;
            let settings = req
                .app_data::<web::Data<AccessSettings>>()
                .map(|s| s.get_ref().clone())
                .unwrap_or_default();
            Caller::from_request(&req, claims, &settings).map_err(actix_web::Error::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_and_reasons() {
        assert!(Purpose::parse("HRESCH").is_ok());
        assert!(Purpose::parse("a b").is_err());
        assert!(Purpose::parse("").is_err());
        assert!(Purpose::treatment().is_treatment_or_operations());
        assert!(!Purpose::parse("HMARKT")
            .unwrap()
            .is_treatment_or_operations());
        assert!(BreakGlassReason::parse("  ").is_none());
        assert_eq!(
            BreakGlassReason::parse("unconscious\n in ER")
                .unwrap()
                .as_str(),
            "unconscious in ER"
        );
    }
}
