//! `POST /auth/revoke` (RFC 7009)

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_auth::AuthError;
use custodian_events::{outbox, IdentityEvent};
use diesel_async::AsyncConnection;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    error::{OAuthError, Unexpected},
    models::revoked_token,
    state::AppState,
};

/// A revocation request (`application/x-www-form-urlencoded`). No `Debug`: it carries a token.
#[derive(Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// The access token to revoke.
    #[schema(value_type = String, required = true, min_length = 1)]
    pub token: Option<String>,
    /// Ignored: identity only issues access tokens.
    #[schema(value_type = String, required = false)]
    pub token_type_hint: Option<String>,
}

fn done() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .finish()
}

/// Revokes an access token: every service refuses it from then on. Holding the token is the
/// right to revoke it. Unknown, invalid or expired tokens answer 200 too, as RFC 7009 says.
#[utoipa::path(
    post,
    path = "/auth/revoke",
    tag = "tokens",
    request_body(content = RevokeRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token is revoked (or was never valid)"),
        (status = 400, description = "No token was given", body = super::OAuthErrorBody),
    )
)]
pub async fn revoke(
    form: web::Form<RevokeRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let Some(token) = form
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(OAuthError::InvalidRequest("token is required".into()));
    };
    let claims = match state.verifier.verify(token).await {
        Ok(claims) => claims,
        Err(AuthError::Revoked) => return Ok(done()),
        Err(e) => {
            tracing::debug!(reason = %e, "revocation of a token that does not verify; nothing to do");
            return Ok(done());
        }
    };
    let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0)
        .ok_or_else(|| Unexpected(format!("token expiry {} out of range", claims.exp)))?;
    let event = IdentityEvent::TokenRevoked {
        jti: claims.jti.clone(),
        expires_at,
    };
    let payload =
        serde_json::to_value(&event).map_err(|e| Unexpected(format!("event encoding: {e}")))?;
    let stream = state.streams.identity();
    let jti = claims.jti.clone();
    let mut conn = state.pool.get().await.map_err(Unexpected::from)?;
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        if revoked_token::insert(conn, &jti, expires_at).await? {
            outbox::enqueue(conn, &stream, Uuid::new_v4(), &payload).await?;
            revoked_token::purge_expired(conn).await?;
        }
        Ok(())
    })
    .await
    .map_err(Unexpected::from)?;
    state.relay.wake();
    state.verifier.deny_list().apply(&event);
    tracing::info!(jti = %claims.jti, "token revoked");
    Ok(done())
}
