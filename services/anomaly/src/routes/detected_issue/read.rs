use actix_web::{web, HttpResponse};
use custodian_access::Caller;
use custodian_database::Pool;
use uuid::Uuid;

use super::{fhir, render_all};
use crate::{domain::alerts, error::ApiError, routes::alerts::require_reader};

/// One alert as a FHIR `DetectedIssue`.
#[utoipa::path(
    get,
    path = "/anomaly/DetectedIssue/{id}",
    tag = "DetectedIssue",
    params(("id" = Uuid, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The DetectedIssue (application/fhir+json)", body = Object),
        (status = 401, description = "No valid token"),
        (status = 403, description = "Not security staff, or no scope for it"),
        (status = 404, description = "No such alert"),
    ),
    security(("smart" = []))
)]
pub async fn read_issue(
    caller: Caller,
    id: web::Path<String>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(ApiError::not_found("no such DetectedIssue"));
    };
    let mut conn = pool.get().await?;
    let Some(alert) = alerts::find(&mut conn, id).await? else {
        return Err(ApiError::not_found("no such DetectedIssue"));
    };
    let issue = render_all(&mut conn, std::slice::from_ref(&alert))
        .await?
        .pop()
        .ok_or_else(|| ApiError::Unexpected("an alert rendered to nothing".into()))?;
    Ok(fhir(&issue))
}
