//! `POST /auth/admin/organizations`, `GET /auth/admin/organizations`

use actix_web::{web, HttpResponse};
use custodian_auth::Authenticated;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{require_admin, ApiErrorBody};
use crate::{
    domain::{Label, OrganizationId},
    error::ApiError,
    models::{is_unique_violation, organization, Organization},
    state::AppState,
};

#[derive(Deserialize, ToSchema)]
pub struct CreateOrganization {
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationResponse {
    pub id: Uuid,
    pub name: String,
    /// `Organization/<id>`, as tokens carry it.
    pub reference: String,
}

impl From<Organization> for OrganizationResponse {
    fn from(o: Organization) -> Self {
        Self {
            id: o.id,
            reference: OrganizationId::reference(o.id),
            name: o.name,
        }
    }
}

/// Registers an organisation.
#[utoipa::path(
    post,
    path = "/auth/admin/organizations", operation_id = "create_organization",
    tag = "admin",
    request_body = CreateOrganization,
    security(("smart" = [])),
    responses(
        (status = 201, description = "Created", body = OrganizationResponse),
        (status = 400, description = "Malformed body", body = ApiErrorBody),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 409, description = "An organisation of that name exists", body = ApiErrorBody),
        (status = 422, description = "Invalid name", body = ApiErrorBody),
    )
)]
pub async fn create(
    auth: Authenticated,
    body: web::Json<CreateOrganization>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let name = Label::parse(&body.name, "name")?;
    let mut conn = state.pool.get().await?;
    let created = organization::insert(&mut conn, name.as_str())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                ApiError::Conflict(format!(
                    "an organization named {:?} already exists",
                    name.as_str()
                ))
            } else {
                e.into()
            }
        })?;
    tracing::info!(organization_id = %created.id, "organization created");
    Ok(HttpResponse::Created().json(OrganizationResponse::from(created)))
}

/// Lists the organisations.
#[utoipa::path(
    get,
    path = "/auth/admin/organizations", operation_id = "list_organizations",
    tag = "admin",
    security(("smart" = [])),
    responses(
        (status = 200, description = "Every organisation, by name", body = Vec<OrganizationResponse>),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
    )
)]
pub async fn list(
    auth: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let mut conn = state.pool.get().await?;
    let all: Vec<OrganizationResponse> = organization::list(&mut conn)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(all))
}
