//! The administrator from `ADMIN_USERNAME`/`ADMIN_PASSWORD`: created at start when missing, its
//! password hash replaced when the configured password changed. The password is never logged.

use custodian_auth::Role;
use custodian_database::Pool;
use uuid::Uuid;

use crate::{
    configuration::AdminSettings,
    domain::{Password, Username},
    error::Unexpected,
    hashing,
    models::{is_unique_violation, user, NewUser},
};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("ADMIN_USERNAME or ADMIN_PASSWORD is not acceptable: {0}")]
    Invalid(String),
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

pub async fn ensure_admin(pool: &Pool, admin: &AdminSettings) -> Result<(), BootstrapError> {
    let username = Username::parse(&admin.username).map_err(|e| BootstrapError::Invalid(e.0))?;
    let password = Password::parse(admin.password.expose().to_string())
        .map_err(|e| BootstrapError::Invalid(e.0))?;
    let mut conn = pool.get().await.map_err(Unexpected::from)?;
    match user::find_by_username(&mut conn, username.as_str())
        .await
        .map_err(Unexpected::from)?
    {
        Some(existing) => {
            let same_password = hashing::verify(
                password.expose().to_string(),
                existing.password_hash.clone(),
            )
            .await
            .map_err(Unexpected::from)?;
            if same_password && existing.role == Role::Admin.as_str() {
                return Ok(());
            }
            let hash = if same_password {
                existing.password_hash.clone()
            } else {
                hashing::hash(password.expose().to_string())
                    .await
                    .map_err(Unexpected::from)?
            };
            user::set_password_and_role(&mut conn, existing.id, &hash, Role::Admin)
                .await
                .map_err(Unexpected::from)?;
            tracing::info!(username = %username.as_str(), "administrator updated from the environment");
        }
        None => {
            let hash = hashing::hash(password.expose().to_string())
                .await
                .map_err(Unexpected::from)?;
            let created = user::insert(
                &mut conn,
                NewUser {
                    id: Uuid::now_v7(),
                    username: username.as_str(),
                    password_hash: &hash,
                    role: Role::Admin.as_str(),
                    organization_id: None,
                    department: None,
                    practitioner_ref: None,
                    patient_ref: None,
                },
            )
            .await;
            match created {
                Ok(user) => {
                    tracing::info!(username = %username.as_str(), user_id = %user.id, "administrator created")
                }
                // Another replica created it at the same moment.
                Err(e) if is_unique_violation(&e) => {}
                Err(e) => return Err(Unexpected::from(e).into()),
            }
        }
    }
    Ok(())
}
