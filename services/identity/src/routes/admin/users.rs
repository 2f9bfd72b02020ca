//! `POST /auth/admin/users`, `GET /auth/admin/users/{id}`,
//! `POST /auth/admin/users/{id}/suspend`, `POST /auth/admin/users/{id}/reinstate`,
//! `POST /auth/admin/users/{id}/unlock`

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use custodian_auth::{Authenticated, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{admin_actor, require_admin, ApiErrorBody, Unlocked};
use crate::{
    domain::{Invalid, Label, OrganizationId, Password, ResourceReference, Username},
    error::ApiError,
    login::{patient_of, Attempt},
    models::{
        is_unique_violation,
        login_lockout::{self, PrincipalKind},
        organization, user, NewUser, User,
    },
    state::AppState,
    suspension::{Administrator, Cause},
};

/// A new user. No `Debug`: it carries a password.
#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    pub username: String,
    pub password: String,
    /// `admin`, `practitioner`, `patient` or `auditor` (`service` is for OAuth2 clients).
    pub role: String,
    /// An organisation id or `Organization/<id>`; required for practitioners.
    pub organization: Option<String>,
    pub department: Option<String>,
    /// `Practitioner/<id>` (or the bare id); generated for practitioners when absent.
    pub practitioner: Option<String>,
    /// `Patient/<id>` (or the bare id); generated for patients when absent.
    pub patient: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub username: String,
    pub role: String,
    /// `Organization/<id>`.
    pub organization: Option<String>,
    pub department: Option<String>,
    /// `Practitioner/<id>`.
    pub practitioner: Option<String>,
    /// `Patient/<id>`.
    pub patient: Option<String>,
    pub suspended: bool,
    pub suspended_reason: Option<String>,
    /// Until when the user is locked out after repeated failed logins (absent when not, and
    /// in answers other than `GET /auth/admin/users/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<DateTime<Utc>>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            organization: u.organization_ref(),
            username: u.username,
            role: u.role,
            department: u.department,
            practitioner: u.practitioner_ref,
            patient: u.patient_ref,
            suspended: u.suspended,
            suspended_reason: u.suspended_reason,
            locked_until: None,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SuspendUser {
    pub reason: String,
}

/// A `CreateUser` whose every field has been checked.
struct ValidUser {
    username: Username,
    password: Password,
    role: Role,
    organization: Option<OrganizationId>,
    department: Option<Label>,
    practitioner: Option<ResourceReference>,
    patient: Option<ResourceReference>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

impl TryFrom<CreateUser> for ValidUser {
    type Error = Invalid;

    fn try_from(body: CreateUser) -> Result<Self, Invalid> {
        let username = Username::parse(&body.username)?;
        let password = Password::parse(body.password)?;
        let role: Role = body.role.trim().parse().map_err(|_| {
            Invalid("role must be one of admin, practitioner, patient, auditor".into())
        })?;
        if role == Role::Service {
            return Err(Invalid(
                "role service is for OAuth2 clients: register one at /auth/admin/clients".into(),
            ));
        }
        let organization = present(&body.organization)
            .map(OrganizationId::parse)
            .transpose()?;
        let department = present(&body.department)
            .map(|d| Label::parse(d, "department"))
            .transpose()?;
        let practitioner = match (role, present(&body.practitioner)) {
            (Role::Practitioner, Some(raw)) => Some(ResourceReference::parse("Practitioner", raw)?),
            (Role::Practitioner, None) => Some(ResourceReference::generate("Practitioner")),
            (_, Some(_)) => {
                return Err(Invalid(
                    "practitioner applies only to users with role practitioner".into(),
                ))
            }
            (_, None) => None,
        };
        let patient = match (role, present(&body.patient)) {
            (Role::Patient, Some(raw)) => Some(ResourceReference::parse("Patient", raw)?),
            (Role::Patient, None) => Some(ResourceReference::generate("Patient")),
            (_, Some(_)) => {
                return Err(Invalid(
                    "patient applies only to users with role patient".into(),
                ))
            }
            (_, None) => None,
        };
        if role == Role::Practitioner && organization.is_none() {
            return Err(Invalid("organization is required for practitioners".into()));
        }
        Ok(Self {
            username,
            password,
            role,
            organization,
            department,
            practitioner,
            patient,
        })
    }
}

/// Creates a user.
#[utoipa::path(
    post,
    path = "/auth/admin/users", operation_id = "create_user",
    tag = "admin",
    request_body = CreateUser,
    security(("smart" = [])),
    responses(
        (status = 201, description = "Created", body = UserResponse),
        (status = 400, description = "Malformed body", body = ApiErrorBody),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 409, description = "The username is taken", body = ApiErrorBody),
        (status = 422, description = "A field is invalid (the message says which)", body = ApiErrorBody),
    )
)]
pub async fn create(
    auth: Authenticated,
    body: web::Json<CreateUser>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let valid = ValidUser::try_from(body.into_inner())?;
    let organization_id = valid.organization.map(|o| o.uuid());
    if let Some(id) = organization_id {
        let mut conn = state.pool.get().await?;
        if !organization::exists(&mut conn, id).await? {
            return Err(ApiError::Validation(format!(
                "organization {} does not exist",
                OrganizationId::reference(id)
            )));
        }
    }
    let password_hash = state
        .logins
        .hasher()
        .hash(valid.password.expose().to_string())
        .await?;
    let practitioner = valid
        .practitioner
        .as_ref()
        .map(ResourceReference::reference);
    let patient = valid.patient.as_ref().map(ResourceReference::reference);
    let new_user = NewUser {
        id: Uuid::now_v7(),
        username: valid.username.as_str(),
        password_hash: &password_hash,
        role: valid.role.as_str(),
        organization_id,
        department: valid.department.as_ref().map(Label::as_str),
        practitioner_ref: practitioner.as_deref(),
        patient_ref: patient.as_deref(),
    };
    let mut conn = state.pool.get().await?;
    let created = user::insert(&mut conn, new_user)
        .await
        .map_err(|e| match &e {
            e if is_unique_violation(e) => ApiError::Conflict(format!(
                "username {:?} is already taken",
                valid.username.as_str()
            )),
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => ApiError::Validation("the organization does not exist".into()),
            _ => e.into(),
        })?;
    tracing::info!(user_id = %created.id, role = %created.role, "user created");
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/auth/admin/users/{}", created.id),
        ))
        .json(UserResponse::from(created)))
}

/// Reads a user.
#[utoipa::path(
    get,
    path = "/auth/admin/users/{id}", operation_id = "read_user",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("smart" = [])),
    responses(
        (status = 200, description = "The user", body = UserResponse),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 404, description = "No such user", body = ApiErrorBody),
    )
)]
pub async fn read(
    auth: Authenticated,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let mut conn = state.pool.get().await?;
    let found = user::find(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    let locked_until =
        login_lockout::locked_until(&mut conn, PrincipalKind::User, &found.id.to_string()).await?;
    let mut answer = UserResponse::from(found);
    answer.locked_until = locked_until;
    Ok(HttpResponse::Ok().json(answer))
}

/// Lifts a user's lockout after repeated failed logins (and forgives the failures). Audited:
/// an access event with basis `unlocked` and the administrator as actor.
#[utoipa::path(
    post,
    path = "/auth/admin/users/{id}/unlock", operation_id = "unlock_user",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("smart" = [])),
    responses(
        (status = 200, description = "Unlocked (or was not locked)", body = Unlocked),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 404, description = "No such user", body = ApiErrorBody),
    )
)]
pub async fn unlock(
    req: HttpRequest,
    auth: Authenticated,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let found = {
        let mut conn = state.pool.get().await?;
        user::find(&mut conn, path.into_inner())
            .await?
            .ok_or_else(|| ApiError::NotFound("no such user".into()))?
    };
    let attempt = Attempt::of(&req, &state.access.trusted_proxies);
    let was_locked = state
        .logins
        .unlock(
            &attempt,
            admin_actor(&auth),
            PrincipalKind::User,
            &found.id.to_string(),
            patient_of(&found),
        )
        .await?;
    Ok(HttpResponse::Ok().json(Unlocked { was_locked }))
}

/// Suspends a user: no new tokens, and every service refuses their current ones. Audited: an
/// access event with basis `suspended-by-admin` and the administrator as actor.
#[utoipa::path(
    post,
    path = "/auth/admin/users/{id}/suspend", operation_id = "suspend_user",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = SuspendUser,
    security(("smart" = [])),
    responses(
        (status = 200, description = "Suspended (or already was)", body = UserResponse),
        (status = 400, description = "Malformed body (not JSON)", body = ApiErrorBody),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 404, description = "No such user", body = ApiErrorBody),
        (status = 422, description = "Missing reason, or an administrator suspending themselves", body = ApiErrorBody),
    )
)]
pub async fn suspend(
    req: HttpRequest,
    auth: Authenticated,
    path: web::Path<Uuid>,
    body: web::Json<SuspendUser>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let admin = require_admin(&auth)?;
    let user_id = path.into_inner();
    let reason = Label::parse(&body.reason, "reason")?;
    if admin == user_id.to_string() {
        return Err(ApiError::Validation(
            "administrators cannot suspend themselves".into(),
        ));
    }
    let administrator = Administrator {
        actor: admin_actor(&auth),
        attempt: Attempt::of(&req, &state.access.trusted_proxies),
    };
    let change = state
        .suspensions
        .suspend(
            user_id,
            reason.as_str(),
            Cause::Administrator(Box::new(administrator)),
        )
        .await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(change.user)))
}

/// Reinstates a suspended user: the only way a suspension (an anomaly alert's too) ends.
/// Audited: an access event with basis `reinstated` and the administrator as actor.
#[utoipa::path(
    post,
    path = "/auth/admin/users/{id}/reinstate", operation_id = "reinstate_user",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The user's id")),
    security(("smart" = [])),
    responses(
        (status = 200, description = "Reinstated (or was not suspended)", body = UserResponse),
        (status = 403, description = "Not an administrator", body = ApiErrorBody),
        (status = 404, description = "No such user", body = ApiErrorBody),
    )
)]
pub async fn reinstate(
    req: HttpRequest,
    auth: Authenticated,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&auth)?;
    let administrator = Administrator {
        actor: admin_actor(&auth),
        attempt: Attempt::of(&req, &state.access.trusted_proxies),
    };
    let change = state
        .suspensions
        .reinstate(path.into_inner(), administrator)
        .await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(change.user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(role: &str) -> CreateUser {
        CreateUser {
            username: "alice".into(),
            password: "correct horse".into(),
            role: role.into(),
            organization: None,
            department: None,
            practitioner: None,
            patient: None,
        }
    }

    #[test]
    fn practitioners_need_an_organization_and_get_a_reference() {
        let err = ValidUser::try_from(body("practitioner")).err().unwrap();
        assert!(err.0.contains("organization"));
        let mut b = body("practitioner");
        b.organization = Some(format!("Organization/{}", Uuid::new_v4()));
        let valid = ValidUser::try_from(b).unwrap();
        assert!(valid
            .practitioner
            .unwrap()
            .reference()
            .starts_with("Practitioner/"));
        assert!(valid.patient.is_none());
    }

    #[test]
    fn patients_keep_a_given_reference() {
        let mut b = body("patient");
        b.patient = Some("alice-1".into());
        assert_eq!(
            ValidUser::try_from(b).unwrap().patient.unwrap().reference(),
            "Patient/alice-1"
        );
    }

    #[test]
    fn refuses_mismatched_fields_and_roles() {
        let mut b = body("auditor");
        b.patient = Some("Patient/x".into());
        assert!(ValidUser::try_from(b).is_err());
        assert!(ValidUser::try_from(body("service"))
            .err()
            .unwrap()
            .0
            .contains("clients"));
        assert!(ValidUser::try_from(body("root")).is_err());
        let mut b = body("admin");
        b.password = "short".into();
        assert!(ValidUser::try_from(b).is_err());
    }
}
