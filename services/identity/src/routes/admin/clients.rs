//! `POST /auth/admin/clients`, `POST /auth/admin/clients/{id}/unlock`

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use custodian_auth::{Authenticated, Role};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{admin_actor, require_admin, ApiErrorBody, Unlocked};
use crate::{
    domain::{Label, OrganizationId},
    error::ApiError,
    login::Attempt,
    models::{client, login_lockout::PrincipalKind, organization, NewClient},
    state::AppState,
};

#[derive(Deserialize, ToSchema)]
pub struct CreateClient {
    pub name: String,
    /// `service` (default use), `auditor` or `practitioner`.
    pub role: String,
    /// An organisation id or `Organization/<id>`; required for practitioner clients.
    pub organization: Option<String>,
}

/// The registered client. The secret is shown here once and stored only as a hash.
#[derive(Serialize, ToSchema)]
pub struct ClientResponse {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub role: String,
    pub organization: Option<String>,
}

/// Registers an OAuth2 client for the client_credentials grant.
#[utoipa::path(
    post,
    path = "/auth/admin/clients", operation_id = "create_client",
    tag = "admin",
    request_body = CreateClient,
    security(("smart" = [])),
    responses(
        (status = 201, description = "Registered; the secret is not shown again", body = ClientResponse),
        (status = 400, description = "Malformed body", body = ApiErrorBody),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 422, description = "A field is invalid", body = ApiErrorBody),
    )
)]
pub async fn create(
    auth: Authenticated,
    body: web::Json<CreateClient>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let name = Label::parse(&body.name, "name")?;
    let role: Role = body.role.trim().parse().map_err(|_| {
        ApiError::Validation("role must be one of service, auditor, practitioner".into())
    })?;
    if !matches!(role, Role::Service | Role::Auditor | Role::Practitioner) {
        return Err(ApiError::Validation(
            "role must be one of service, auditor, practitioner".into(),
        ));
    }
    let organization_id = body
        .organization
        .as_deref()
        .filter(|o| !o.trim().is_empty())
        .map(OrganizationId::parse)
        .transpose()?
        .map(|o| o.uuid());
    if role == Role::Practitioner && organization_id.is_none() {
        return Err(ApiError::Validation(
            "organization is required for practitioner clients".into(),
        ));
    }
    if let Some(id) = organization_id {
        let mut conn = state.pool.get().await?;
        if !organization::exists(&mut conn, id).await? {
            return Err(ApiError::Validation(format!(
                "organization {} does not exist",
                OrganizationId::reference(id)
            )));
        }
    }
    let client_id = format!("client-{}", uuid::Uuid::new_v4().simple());
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let client_secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let secret_hash = state.logins.hasher().hash(client_secret.clone()).await?;
    let mut conn = state.pool.get().await?;
    let created = client::insert(
        &mut conn,
        NewClient {
            client_id: &client_id,
            secret_hash: &secret_hash,
            name: name.as_str(),
            role: role.as_str(),
            organization_id,
        },
    )
    .await?;
    tracing::info!(client_id = %created.client_id, role = %created.role, "client registered");
    Ok(HttpResponse::Created().json(ClientResponse {
        client_id: created.client_id,
        client_secret,
        name: created.name,
        role: created.role,
        organization: created.organization_id.map(OrganizationId::reference),
    }))
}

/// Lifts a client's lockout after repeated failed authentications. Audited like a user's.
#[utoipa::path(
    post,
    path = "/auth/admin/clients/{id}/unlock", operation_id = "unlock_client",
    tag = "admin",
    params(("id" = String, Path, description = "The client_id")),
    security(("smart" = [])),
    responses(
        (status = 200, description = "Unlocked (or was not locked)", body = Unlocked),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 404, description = "No such client", body = ApiErrorBody),
    )
)]
pub async fn unlock(
    req: HttpRequest,
    auth: Authenticated,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let found = {
        let mut conn = state.pool.get().await?;
        client::find(&mut conn, &path.into_inner())
            .await?
            .ok_or_else(|| ApiError::NotFound("no such client".into()))?
    };
    let attempt = Attempt::of(&req, &state.access.trusted_proxies);
    let was_locked = state
        .logins
        .unlock(
            &attempt,
            admin_actor(&auth),
            PrincipalKind::Client,
            &found.client_id,
            None,
        )
        .await?;
    Ok(HttpResponse::Ok().json(Unlocked { was_locked }))
}
