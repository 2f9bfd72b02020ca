//! `POST /auth/token`

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use custodian_auth::Role;
use custodian_events::AccessOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{client_auth::client_credentials, login_event};
use crate::{
    domain::{OrganizationId, Username},
    error::OAuthError,
    hashing,
    models::{client, user, User},
    state::AppState,
    tokens::{granted_scope, sign, Subject},
};

/// A token request (`application/x-www-form-urlencoded`). No `Debug`: it carries secrets.
#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    /// `password` or `client_credentials`.
    pub grant_type: Option<String>,
    /// Password grant.
    pub username: Option<String>,
    /// Password grant.
    pub password: Option<String>,
    /// Client credentials grant, unless sent with HTTP Basic.
    pub client_id: Option<String>,
    /// Client credentials grant, unless sent with HTTP Basic.
    pub client_secret: Option<String>,
    /// Space-separated scopes; a subset of the role's scopes. Omitted: all of them.
    pub scope: Option<String>,
}

/// A token answer (RFC 6749 §5.1, with SMART's `patient` launch context).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// An ES256 JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
    pub scope: String,
    /// The patient's bare FHIR id, for patient users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

/// A refused token request and the `reason` label it counts under.
struct Refusal {
    error: OAuthError,
    reason: &'static str,
}

impl From<OAuthError> for Refusal {
    fn from(error: OAuthError) -> Self {
        let reason = error.metric_reason();
        Refusal { error, reason }
    }
}

impl From<crate::error::Unexpected> for Refusal {
    fn from(e: crate::error::Unexpected) -> Self {
        OAuthError::Unexpected(e).into()
    }
}

fn invalid_credentials() -> OAuthError {
    OAuthError::InvalidGrant("invalid username or password".into())
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Issues an access token.
#[utoipa::path(
    post,
    path = "/auth/token",
    tag = "tokens",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Token issued", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, invalid_scope, unsupported_grant_type", body = super::OAuthErrorBody),
        (status = 401, description = "invalid_client", body = super::OAuthErrorBody),
    )
)]
pub async fn token(
    req: HttpRequest,
    form: web::Form<TokenRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let form = form.into_inner();
    let (grant, outcome) = match non_empty(&form.grant_type) {
        Some("password") => ("password", password_grant(&req, &form, &state).await),
        Some("client_credentials") => (
            "client_credentials",
            client_credentials_grant(&req, &form, &state).await,
        ),
        Some(_) => ("other", Err(OAuthError::UnsupportedGrantType.into())),
        None => (
            "other",
            Err(OAuthError::InvalidRequest("grant_type is required".into()).into()),
        ),
    };
    match outcome {
        Ok(body) => {
            state
                .metrics
                .tokens_issued
                .with_label_values(&[grant])
                .inc();
            Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::PRAGMA, "no-cache"))
                .json(body))
        }
        Err(refusal) => {
            state
                .metrics
                .token_failures
                .with_label_values(&[refusal.reason])
                .inc();
            Err(refusal.error)
        }
    }
}

async fn password_grant(
    req: &HttpRequest,
    form: &TokenRequest,
    state: &AppState,
) -> Result<TokenResponse, Refusal> {
    let (Some(username), Some(password)) = (non_empty(&form.username), non_empty(&form.password))
    else {
        return Err(OAuthError::InvalidRequest("username and password are required".into()).into());
    };
    let source = login_event::source_of(req);
    let found: Option<User> = match Username::parse(username) {
        Ok(name) => {
            let mut conn = state
                .pool
                .get()
                .await
                .map_err(crate::error::Unexpected::from)?;
            user::find_by_username(&mut conn, name.as_str())
                .await
                .map_err(crate::error::Unexpected::from)?
        }
        Err(_) => None,
    };
    let Some(user) = found else {
        // Same work as a wrong password, so response times reveal no usernames.
        let _ = hashing::verify(password.to_string(), state.dummy_hash.clone()).await;
        login_event::record(state, source, None, AccessOutcome::Deny).await?;
        return Err(Refusal {
            error: invalid_credentials(),
            reason: "invalid_credentials",
        });
    };
    let matches = hashing::verify(password.to_string(), user.password_hash.clone())
        .await
        .map_err(crate::error::Unexpected::from)?;
    if !matches {
        login_event::record(state, source, Some(&user), AccessOutcome::Deny).await?;
        return Err(Refusal {
            error: invalid_credentials(),
            reason: "invalid_credentials",
        });
    }
    // Checked after the password, so only the user learns they are suspended.
    if user.suspended {
        login_event::record(state, source, Some(&user), AccessOutcome::Deny).await?;
        return Err(Refusal {
            error: OAuthError::InvalidGrant("user is suspended".into()),
            reason: "suspended",
        });
    }
    let role = user
        .role()
        .ok_or_else(|| crate::error::Unexpected(format!("user {} has an unknown role", user.id)))?;
    let scope = match granted_scope(role, form.scope.as_deref()) {
        Ok(scope) => scope,
        Err(message) => {
            login_event::record(state, source, Some(&user), AccessOutcome::Deny).await?;
            return Err(OAuthError::InvalidScope(message).into());
        }
    };
    let subject = Subject {
        sub: user.id.to_string(),
        role,
        organization: user.organization_ref(),
        department: user.department.clone(),
        practitioner: user
            .practitioner_ref
            .clone()
            .filter(|_| role == Role::Practitioner),
        patient: user.patient_ref.clone().filter(|_| role == Role::Patient),
        client_id: None,
    };
    let (access_token, claims) = sign(
        &state.keys,
        &state.tokens.issuer,
        state.tokens.ttl_seconds,
        subject,
        scope,
    )?;
    login_event::record(state, source, Some(&user), AccessOutcome::Permit).await?;
    let patient = claims
        .patient
        .as_deref()
        .map(|p| p.strip_prefix("Patient/").unwrap_or(p).to_string());
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.ttl_seconds,
        scope: claims.scope,
        patient,
    })
}

async fn client_credentials_grant(
    req: &HttpRequest,
    form: &TokenRequest,
    state: &AppState,
) -> Result<TokenResponse, Refusal> {
    let creds = client_credentials(
        req,
        non_empty(&form.client_id),
        non_empty(&form.client_secret),
    )?;
    let found = {
        let mut conn = state
            .pool
            .get()
            .await
            .map_err(crate::error::Unexpected::from)?;
        client::find(&mut conn, &creds.client_id)
            .await
            .map_err(crate::error::Unexpected::from)?
    };
    let refused = OAuthError::InvalidClient { basic: creds.basic };
    let Some(client) = found else {
        let _ = hashing::verify(creds.client_secret, state.dummy_hash.clone()).await;
        return Err(refused.into());
    };
    let matches = hashing::verify(creds.client_secret, client.secret_hash.clone())
        .await
        .map_err(crate::error::Unexpected::from)?;
    if !matches {
        return Err(refused.into());
    }
    let role = client.role().ok_or_else(|| {
        crate::error::Unexpected(format!("client {} has an unknown role", client.client_id))
    })?;
    let scope = granted_scope(role, form.scope.as_deref()).map_err(OAuthError::InvalidScope)?;
    let subject = Subject {
        sub: client.client_id.clone(),
        role,
        organization: client.organization_id.map(OrganizationId::reference),
        department: None,
        practitioner: None,
        patient: None,
        client_id: Some(client.client_id.clone()),
    };
    let (access_token, claims) = sign(
        &state.keys,
        &state.tokens.issuer,
        state.tokens.ttl_seconds,
        subject,
        scope,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.ttl_seconds,
        scope: claims.scope,
        patient: None,
    })
}
