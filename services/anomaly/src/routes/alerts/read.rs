use actix_web::{web, HttpResponse};
use custodian_access::Caller;
use custodian_database::Pool;
use uuid::Uuid;

use super::require_reader;
use crate::{
    domain::alerts::{self, AlertRecord},
    error::ApiError,
};

/// One alert.
#[utoipa::path(
    get,
    path = "/anomaly/alerts/{id}",
    tag = "alerts",
    params(("id" = Uuid, Path, description = "The alert's id")),
    responses(
        (status = 200, description = "The alert", body = AlertRecord),
        (status = 401, description = "No valid token"),
        (status = 403, description = "Not an auditor or administrator"),
        (status = 404, description = "No such alert"),
    ),
    security(("smart" = []))
)]
pub async fn read_alert(
    caller: Caller,
    id: web::Path<String>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, actix_web::Error> {
    require_reader(&caller)?;
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(ApiError::not_found("no such alert").into());
    };
    let mut conn = pool.get().await.map_err(ApiError::from)?;
    match alerts::find(&mut conn, id).await.map_err(ApiError::from)? {
        Some(alert) => Ok(HttpResponse::Ok().json(alert)),
        None => Err(ApiError::not_found("no such alert").into()),
    }
}
