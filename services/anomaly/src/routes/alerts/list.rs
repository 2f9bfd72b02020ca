use actix_web::{web, HttpResponse};
use custodian_access::Caller;
use custodian_database::Pool;
use serde::Deserialize;
use utoipa::IntoParams;

use super::require_reader;
use crate::{
    domain::alerts::{self, AlertRecord},
    error::ApiError,
};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only alerts about this user (token `sub`).
    pub user: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Alerts, newest first.
#[utoipa::path(
    get,
    path = "/anomaly/alerts",
    tag = "alerts",
    params(ListQuery),
    responses(
        (status = 200, description = "Alerts, newest first", body = Vec<AlertRecord>),
        (status = 400, description = "Bad query"),
        (status = 401, description = "No valid token"),
        (status = 403, description = "Not an auditor or administrator"),
    ),
    security(("smart" = []))
)]
pub async fn list_alerts(
    caller: Caller,
    query: web::Query<ListQuery>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, actix_web::Error> {
    require_reader(&caller)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be within 1..={MAX_LIMIT}")).into());
    }
    let mut conn = pool.get().await.map_err(ApiError::from)?;
    let found = alerts::list(&mut conn, query.user.as_deref(), limit)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(found))
}
