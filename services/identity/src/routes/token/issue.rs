//! `POST /auth/token`

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use custodian_auth::Role;
use custodian_events::AccessOutcome;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::client_auth::client_credentials;
use crate::{
    domain::{OrganizationId, Username},
    error::{OAuthError, Unexpected},
    login::{basis, unknown_key, Attempt, LoginFailure, Principal},
    models::{client, login_lockout::PrincipalKind, user, User},
    state::AppState,
    tokens::{grant, sign, Subject},
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
    /// Space-separated SMART scopes (v2 `user/Observation.rs`, v1 `user/*.read`, `openid`,
    /// `fhirUser`, `launch/patient`, `offline_access`); each must be within the role's scopes.
    /// Omitted: all of the role's scopes.
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
    /// The granted scopes, in the SMART v2 spelling (also the token's `scope` claim).
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

impl From<Unexpected> for Refusal {
    fn from(e: Unexpected) -> Self {
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
        (status = 400, description = "invalid_request, invalid_grant (wrong credentials, or an account locked out after repeated failures), invalid_scope, unsupported_grant_type", body = super::OAuthErrorBody),
        (status = 401, description = "invalid_client (wrong credentials, or a client locked out)", body = super::OAuthErrorBody),
        (status = 429, description = "temporarily_unavailable: too many failed logins from this address; see Retry-After", body = super::OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: too many logins at once; see Retry-After", body = super::OAuthErrorBody),
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

/// The refusal of a login that [`Logins::authenticate`] turned down (its event is recorded).
fn refused_login(failure: LoginFailure, client: Option<bool>) -> Refusal {
    match failure {
        LoginFailure::Throttled { retry_after } => OAuthError::Throttled { retry_after }.into(),
        LoginFailure::Busy { retry_after } => OAuthError::Busy { retry_after }.into(),
        LoginFailure::LockedOut => match client {
            Some(basic) => OAuthError::ClientLocked { basic }.into(),
            None => Refusal {
                error: OAuthError::InvalidGrant(
                    "too many failed logins: this account is locked; try again later or ask \
                     an administrator to unlock it"
                        .into(),
                ),
                reason: "locked_out",
            },
        },
        LoginFailure::BadCredentials => match client {
            Some(basic) => OAuthError::InvalidClient { basic }.into(),
            None => Refusal {
                error: invalid_credentials(),
                reason: "invalid_credentials",
            },
        },
        LoginFailure::Unexpected(e) => e.into(),
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
    let attempt = Attempt::of(req, &state.access.trusted_proxies);
    let found: Option<User> = match Username::parse(username) {
        Ok(name) => {
            let mut conn = state.pool.get().await.map_err(Unexpected::from)?;
            user::find_by_username(&mut conn, name.as_str())
                .await
                .map_err(Unexpected::from)?
        }
        Err(_) => None,
    };
    let key = unknown_key(PrincipalKind::User, username);
    let principal = match &found {
        Some(user) => Principal::User(user),
        None => Principal::Unknown { key: &key },
    };
    state
        .logins
        .authenticate(
            &attempt,
            principal,
            password.to_string(),
            found.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await
        .map_err(|f| refused_login(f, None))?;
    let Some(user) = found.as_ref() else {
        return Err(Unexpected("an unknown user authenticated".into()).into());
    };
    // Checked after the password, so only the user learns they are suspended.
    if user.suspended {
        state
            .logins
            .record(&[attempt.event(&principal, AccessOutcome::Deny, basis::SUSPENDED)])
            .await?;
        return Err(Refusal {
            error: OAuthError::InvalidGrant("user is suspended".into()),
            reason: "suspended",
        });
    }
    let role = user
        .role()
        .ok_or_else(|| Unexpected(format!("user {} has an unknown role", user.id)))?;
    let scope = match grant(role, form.scope.as_deref()) {
        Ok(granted) => granted.to_scope_string(),
        Err(message) => {
            state
                .logins
                .record(&[attempt.event(&principal, AccessOutcome::Deny, basis::SCOPE)])
                .await?;
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
    state
        .logins
        .record(&[attempt.event(&principal, AccessOutcome::Permit, basis::PASSWORD)])
        .await?;
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
    let attempt = Attempt::of(req, &state.access.trusted_proxies);
    let found = {
        let mut conn = state.pool.get().await.map_err(Unexpected::from)?;
        client::find(&mut conn, &creds.client_id)
            .await
            .map_err(Unexpected::from)?
    };
    let key = unknown_key(PrincipalKind::Client, &creds.client_id);
    let principal = match &found {
        Some(client) => Principal::Client(client),
        None => Principal::Unknown { key: &key },
    };
    state
        .logins
        .authenticate(
            &attempt,
            principal,
            creds.client_secret,
            found.as_ref().map(|c| c.secret_hash.as_str()),
        )
        .await
        .map_err(|f| refused_login(f, Some(creds.basic)))?;
    let Some(client) = found.as_ref() else {
        return Err(Unexpected("an unknown client authenticated".into()).into());
    };
    let role = client
        .role()
        .ok_or_else(|| Unexpected(format!("client {} has an unknown role", client.client_id)))?;
    let scope = match grant(role, form.scope.as_deref()) {
        Ok(granted) => granted.to_scope_string(),
        Err(message) => {
            state
                .logins
                .record(&[attempt.event(&principal, AccessOutcome::Deny, basis::SCOPE)])
                .await?;
            return Err(OAuthError::InvalidScope(message).into());
        }
    };
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
    state
        .logins
        .record(&[attempt.event(&principal, AccessOutcome::Permit, basis::CLIENT_CREDENTIALS)])
        .await?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.tokens.ttl_seconds,
        scope: claims.scope,
        patient: None,
    })
}
